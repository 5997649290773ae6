"""HTTP client for the l2run grader, speaking the gym-http-api routes of the 2017 challenge.

    from osim.http.client import Client
    client = Client("http://127.0.0.1:8000")
    observation = client.env_create(token)          # creates the instance and starts trial 1
    observation, reward, done, info = client.env_step(action, True)
    observation = client.env_reset()                # next trial; None once all are finished
    client.submit()                                 # scores the submission and closes it

Every refusal comes back as `ServerError` carrying the server's message and HTTP status.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

log = logging.getLogger(__name__)
DEFAULT_ENV_ID = "RunEnv"
# No read timeout by default: a slow simulation step must not turn into a client-side error.
DEFAULT_TIMEOUT_S: float | None = None
CONNECT_TIMEOUT_S = 30.0


class ServerError(Exception):
    """The grader refused a request; `message` says why, `status_code` is the HTTP status."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message if status_code is None else f"{message} (HTTP {status_code})")
        self.message = message
        self.status_code = status_code


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("l2run")
    except Exception:
        return "unknown"


def _jsonable_action(action: Any) -> Any:
    """numpy arrays (and other sequences with tolist) become lists, and numpy scalars in a list
    or tuple become numbers; anything else is sent as is and the server says what is wrong
    with it."""
    tolist = getattr(action, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(action, list | tuple):
        return [_jsonable_number(v) for v in action]
    return action


def _jsonable_number(value: Any) -> Any:
    """A numpy scalar's Python number (`item`); anything else as it is."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "shape", None) == () else value


class Client:
    """One remote environment instance at a time (`instance_id`)."""

    def __init__(self, remote_base: str, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> None:
        self.remote_base = remote_base
        self.session = requests.Session()
        self.session.headers.update({"Content-Type": "application/json"})
        self.instance_id: str | None = None
        self.timeout = (CONNECT_TIMEOUT_S, timeout_s)

    # -- transport ----------------------------------------------------------------------------

    def _post(self, route: str, data: Any = None) -> dict[str, Any]:
        # Joined by hand: `urljoin` would drop a path in remote_base ("http://host/grader").
        url = self.remote_base.rstrip("/") + route
        log.debug("POST %s", url)
        response = self.session.post(url, data=json.dumps(data), timeout=self.timeout)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            if isinstance(body, dict) and "message" in body:
                raise ServerError(str(body["message"]), response.status_code)
            raise ServerError(
                f"{response.status_code} {response.reason}: {response.text[:200]}",
                response.status_code,
            )
        if not isinstance(body, dict):
            raise ServerError(f"the server answered with non-JSON: {response.text[:200]}")
        return body

    def _instance_route(self, suffix: str) -> str:
        if self.instance_id is None:
            raise ServerError("no instance: call env_create(token) first")
        return f"/v1/envs/{self.instance_id}/{suffix}"

    # -- the seed's API -----------------------------------------------------------------------

    def env_create(self, token: str, env_id: str = DEFAULT_ENV_ID) -> list[float] | None:
        """Create an instance for `token`'s participant and start its first trial."""
        data = {"env_id": env_id, "token": token, "version": _package_version()}
        reply = self._post("/v1/envs/", data)
        self.instance_id = reply["instance_id"]
        # Later calls prove ownership with the token (the server may require it).
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.env_monitor_start("tmp", force=True)
        return self.env_reset()

    def env_monitor_start(
        self, directory: str, force: bool = False, resume: bool = False, video_callable=False
    ) -> None:
        data = {
            "directory": directory,
            "force": force,
            "resume": resume,
            "video_callable": video_callable,
        }
        self._post(self._instance_route("monitor/start/"), data)

    def env_reset(self) -> list[float] | None:
        """Start the next trial; None once every trial of the submission has been run."""
        return self._post(self._instance_route("reset/"))["observation"]

    def env_step(self, action: Any, render: bool = False) -> list[Any]:
        """[observation, reward, done, info] after holding `action` (18 excitations) 0.01 s."""
        data = {"action": _jsonable_action(action), "render": bool(render)}
        reply = self._post(self._instance_route("step/"), data)
        return [reply["observation"], reply["reward"], reply["done"], reply["info"]]

    def submit(self) -> float:
        """Score the submission (mean total reward of its trials), print it, close the instance."""
        score = self._post(self._instance_route("monitor/close/"))["reward"]
        print(f"Your total reward from this submission: {score:f}")
        self.env_close()
        return score

    def env_close(self) -> None:
        self._post(self._instance_route("close/"))
