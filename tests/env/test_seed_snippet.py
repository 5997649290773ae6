"""The seed's README snippet, run verbatim (osim-rl 1.5's "Basic usage")."""

from __future__ import annotations

import warnings

SEED_SNIPPET = """\
from osim.env import RunEnv

env = RunEnv(visualize=True)
observation = env.reset(difficulty = 0)
for i in range(200):
    observation, reward, done, info = env.step(env.action_space.sample())
"""


def test_seed_snippet_runs_verbatim(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)  # a headless server: warn, do not fail
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(SEED_SNIPPET, "<seed README>", "exec"), namespace)
    assert len(namespace["observation"]) == 41
    assert isinstance(namespace["reward"], float) and isinstance(namespace["done"], bool)
    assert namespace["env"].istep == 200
    namespace["env"].close()


def test_osim_env_is_l2run() -> None:
    from l2run.env.runenv import RunEnv
    from osim.env import RunEnv as Seed

    assert Seed is RunEnv
