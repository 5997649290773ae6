"""Episode recordings: one ``.npz`` file per episode, written while the runner runs.

How an environment records (this is what ``RunEnv(record="episode.npz")`` does)::

    from l2run.render.recording import Recorder, episode_path

    # on reset (episode n = 0, 1, 2, ...): close the previous recorder, open a new one
    recorder = Recorder(episode_path("episode.npz", n), {
        "engine": engine.name, "seed": seed, "difficulty": difficulty,
        "obstacles": course.obstacles,          # (n, 3) rows x, y, r (m); may be empty
        "psoas": course.psoas,                  # (left, right); any other JSON-able keys are kept
    })
    recorder.capture(engine)                    # the state right after reset (reward 0)
    # after every step:
    recorder.capture(engine, reward=reward, action=action)
    # when the episode ends (done, or the next reset, or env.close()):
    recorder.close()                            # writes the file; returns its Path

``capture`` reads the engine through the Engine protocol (``l2run.engines.base``): ``time``,
``body_poses()``, ``muscle_paths()``, ``activations()``, ``contact_forces()``,
``ligament_forces()`` and ``observation()``. ``capture_frame(engine, reward, action)`` returns the
same snapshot as a :class:`Frame` without storing it (the renderer uses it for ``rgb_array``).

File layout (``numpy.load(path)`` works without pickle; T frames, B bodies, M muscles, K the
most path points any muscle had)::

    header            0-d str   JSON: format, version, the name orders (bodies, muscles,
                                  contacts, contact_spheres, ligaments, observation_names),
                                  frames, metadata (engine, seed, difficulty, package_version,
                                  created, and whatever the caller passed)
    time              (T,)       s
    body_pose         (T, B, 3)  x, y (m), angle (rad) of every body, ground frame
    muscle_points     (T, M, K, 2)  path points x, y (m), ground frame; padded with NaN
    muscle_counts     (T, M)     how many rows of muscle_points are real (paths are ragged:
                                  conditional path points come and go)
    activation        (T, M)     in [0, 1]
    contact_force     (T, 2, 2)  ground reaction (fx, fy) N on foot_r, foot_l
    contact_spheres   (T, 4, 3)  x, y, radius (m) of r_heel, r_toe, l_heel, l_toe
    ligament_force    (T, 6)     N·m, LIGAMENTS order
    observation       (T, 41)    the observation (NaN where not captured)
    reward            (T,)       reward of the step that led to this frame (0 for the first)
    action            (T, 18)    excitations of that step (NaN for the first frame)
    obstacles         (n, 3)     x, y, r (m)

``load_recording(path)`` gives a :class:`Recording`; ``l2run.render.wrappers.RecordEpisode``
records the episodes of a gymnasium env.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import weakref
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from l2run.atomic_files import check_writable, replacing
from l2run.model.names import LIGAMENTS, MUSCLES
from l2run.observation import OBSERVATION_NAMES
from l2run.render.skeleton import CONTACT_SPHERE_NAMES, contact_sphere_positions

FORMAT_NAME = "l2run-recording"
FORMAT_VERSION = 1
CONTACT_NAMES = ("foot_r", "foot_l")
STEP_SIZE = 0.01  # s, the RunEnv integration step (used only when a recording has one frame)

N_OBSERVATION = len(OBSERVATION_NAMES)
N_ACTION = 18


def package_version() -> str:
    try:
        from l2run import __version__

        return str(__version__)
    except ImportError:
        return "unknown"


@dataclass(frozen=True)
class Frame:
    """One snapshot of the runner (ground frame; m, rad, N, s)."""

    time: float
    body_poses: Mapping[str, tuple[float, float, float]]
    muscle_paths: Sequence[np.ndarray]  # M arrays (k_i, 2)
    activations: np.ndarray  # (M,)
    contact_forces: Mapping[str, np.ndarray]  # "foot_r"/"foot_l" -> (fx, fy)
    reward: float = 0.0
    action: np.ndarray | None = None  # (18,) or None for the state right after reset
    observation: np.ndarray | None = None  # (41,)
    ligament_forces: np.ndarray | None = None  # (6,)
    contact_spheres: np.ndarray | None = field(default=None)  # (4, 3); computed when None

    def spheres(self) -> np.ndarray:
        """(4, 3) foot contact spheres x, y, radius (m)."""
        if self.contact_spheres is not None:
            return np.asarray(self.contact_spheres, dtype=float)
        return contact_sphere_positions(self.body_poses)


def capture_frame(
    engine: Any,
    reward: float = 0.0,
    action: np.ndarray | None = None,
    *,
    observe: bool = True,
) -> Frame:
    """Snapshot an engine (Engine protocol) after reset or after the step that gave ``reward``.

    ``observe=False`` skips the observation and ligament forces (drawing does not need them).
    """
    poses = {
        str(k): (float(v[0]), float(v[1]), float(v[2])) for k, v in engine.body_poses().items()
    }
    paths = [np.asarray(p, dtype=float).reshape(-1, 2) for p in engine.muscle_paths()]
    forces = {str(k): np.asarray(v, dtype=float)[:2] for k, v in engine.contact_forces().items()}
    observation = ligaments = None
    if observe:
        observation = np.asarray(engine.observation(), dtype=float)
        ligaments = np.asarray(engine.ligament_forces(), dtype=float)
    return Frame(
        time=float(engine.time),
        body_poses=poses,
        muscle_paths=paths,
        activations=np.asarray(engine.activations(), dtype=float),
        contact_forces=forces,
        reward=float(reward),
        action=None if action is None else np.asarray(action, dtype=float).reshape(-1),
        observation=observation,
        ligament_forces=ligaments,
        contact_spheres=contact_sphere_positions(poses),
    )


def later_episode_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a run recording to `path` writes after its first episode that are there
    already (``<stem>-NNNN<suffix>``, `episode_path`): an earlier run's, sorted."""
    p = Path(path)
    pattern = f"{p.stem}-[0-9][0-9][0-9][0-9]{p.suffix or '.npz'}"
    return sorted(p.parent.glob(pattern)) if p.parent.is_dir() else []


def check_recording_path(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path once it ends in .npz (any case) and a file can be written there
    (`atomic_files.check_writable`); ValueError otherwise."""
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise ValueError(f"a recording path must end in .npz, got {p.name!r}")
    return check_writable(p)


# Recorders not closed yet: at exit each is written with what it holds, so that a script that
# ends (or is interrupted) mid-episode keeps its recording.
_OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()
UNFINISHED = "unfinished: the program ended mid-episode"


@atexit.register
def _write_open_recorders() -> None:
    for recorder in list(_OPEN):
        recorder.metadata.setdefault("ended_by", UNFINISHED)
        try:
            recorder.close()
        except Exception as exc:  # noqa: BLE001 - at exit: report and go on with the others
            print(f"l2run: could not write the recording {recorder.path}: {exc}", file=sys.stderr)


def episode_path(path: str | os.PathLike[str], index: int) -> Path:
    """File for episode ``index`` of a recording run: the path itself for the first episode,
    then ``<stem>-0001<suffix>``, ``<stem>-0002<suffix>``, ..."""
    p = Path(path)
    if index < 0:
        raise ValueError(f"episode index must be >= 0, got {index}")
    if index == 0:
        return p
    return p.with_name(f"{p.stem}-{index:04d}{p.suffix or '.npz'}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _obstacle_array(obstacles: Any) -> np.ndarray:
    if obstacles is None:
        return np.zeros((0, 3))
    arr = np.asarray(obstacles, dtype=float)
    if arr.size == 0:
        return np.zeros((0, 3))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"obstacles must have shape (n, 3) rows x, y, r; got {arr.shape}")
    return arr


def _fixed(values: np.ndarray | None, n: int, what: str) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape != (n,):
        raise ValueError(f"{what} must have {n} values, got shape {arr.shape}")
    return arr


class Recorder:
    """Collects :class:`Frame` s of one episode and writes them to ``path`` on :meth:`close`.

    ``metadata`` is any JSON-able dict; ``obstacles`` in it (an (n, 3) array) becomes the
    ``obstacles`` array of the file. Package version and creation time are added.
    """

    def __init__(self, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None):
        self.path = check_recording_path(path)
        meta = dict(metadata or {})
        self.obstacles = _obstacle_array(meta.pop("obstacles", None))
        meta.setdefault("package_version", package_version())
        meta.setdefault("created", datetime.now(UTC).isoformat(timespec="seconds"))
        self.metadata: dict[str, Any] = _jsonable(meta)
        json.dumps(self.metadata)  # fail now, not at close, on something JSON cannot hold
        self.frames: list[Frame] = []
        self.closed = False
        self._bodies: tuple[str, ...] | None = None
        _OPEN.add(self)  # written at exit if its owner never closed it

    def __len__(self) -> int:
        return len(self.frames)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_obstacles(self, obstacles: Any) -> None:
        self.obstacles = _obstacle_array(obstacles)

    def add(self, frame: Frame) -> None:
        """Append one frame (checked now so that a bad frame fails at the step that made it)."""
        if self.closed:
            raise ValueError(f"recorder for {self.path} is closed")
        bodies = tuple(frame.body_poses)
        if self._bodies is None:
            self._bodies = bodies
        elif set(bodies) != set(self._bodies):
            raise ValueError(f"frame bodies {bodies} differ from the first frame's {self._bodies}")
        if self.frames:
            n_muscles = len(self.frames[0].muscle_paths)
            if len(frame.muscle_paths) != n_muscles:
                raise ValueError(f"frame has {len(frame.muscle_paths)} muscles, not {n_muscles}")
            if frame.time < self.frames[-1].time:
                raise ValueError(f"time went backwards: {frame.time} < {self.frames[-1].time}")
        if np.asarray(frame.activations).shape != (len(frame.muscle_paths),):
            raise ValueError("activations must have one value per muscle path")
        self.frames.append(frame)

    def capture(self, engine: Any, reward: float = 0.0, action: np.ndarray | None = None) -> Frame:
        """Snapshot ``engine`` (see :func:`capture_frame`), add it and return it."""
        frame = capture_frame(engine, reward=reward, action=action)
        self.add(frame)
        return frame

    def arrays(self) -> dict[str, np.ndarray]:
        """The file's arrays (header included) for the frames so far."""
        if not self.frames:
            raise ValueError("nothing recorded: add at least one frame before closing")
        frames = self.frames
        bodies = self._bodies or ()
        n_t, n_m = len(frames), len(frames[0].muscle_paths)
        k_max = max(max((len(p) for p in f.muscle_paths), default=0) for f in frames)
        points = np.full((n_t, n_m, max(k_max, 1), 2), np.nan)
        counts = np.zeros((n_t, n_m), dtype=np.int32)
        for t, f in enumerate(frames):
            for m, path in enumerate(f.muscle_paths):
                points[t, m, : len(path)] = path
                counts[t, m] = len(path)
        muscles = MUSCLES
        if len(muscles) != n_m:  # an engine with another muscle set still records
            muscles = tuple(f"muscle_{i}" for i in range(n_m))
        zero_force = np.zeros(2)
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "bodies": list(bodies),
            "muscles": list(muscles),
            "contacts": list(CONTACT_NAMES),
            "contact_spheres": list(CONTACT_SPHERE_NAMES),
            "ligaments": list(LIGAMENTS),
            "observation_names": list(OBSERVATION_NAMES),
            "frames": n_t,
            "metadata": self.metadata,
        }
        return {
            "header": np.array(json.dumps(header)),
            "time": np.array([f.time for f in frames]),
            "body_pose": np.array([[f.body_poses[b] for b in bodies] for f in frames]).reshape(
                n_t, len(bodies), 3
            ),
            "muscle_points": points,
            "muscle_counts": counts,
            "activation": np.array([np.asarray(f.activations, dtype=float) for f in frames]),
            "contact_force": np.array(
                [[f.contact_forces.get(c, zero_force) for c in CONTACT_NAMES] for f in frames]
            ),
            "contact_spheres": np.array([f.spheres() for f in frames]),
            "ligament_force": np.array(
                [_fixed(f.ligament_forces, len(header["ligaments"]), "ligaments") for f in frames]
            ),
            "observation": np.array(
                [_fixed(f.observation, N_OBSERVATION, "observation") for f in frames]
            ),
            "reward": np.array([f.reward for f in frames]),
            "action": np.array([_fixed(f.action, N_ACTION, "action") for f in frames]),
            "obstacles": self.obstacles,
        }

    def close(self) -> Path | None:
        """Write the file (atomically) and return its path; None if no frame was added."""
        if self.closed:
            return self.path if self.path.exists() else None
        self.closed = True
        _OPEN.discard(self)
        if not self.frames:
            return None
        _write_atomically(self.path, self.arrays())
        return self.path


def _write_atomically(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save `arrays` as a compressed .npz at `path`, replacing any file there only once the
    new one is complete."""
    # Into an open file: given a name, numpy appends .npz to any other ending (.NPZ included).
    with replacing(path) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays)


def drop_metadata(path: str | os.PathLike[str], keys: Iterable[str]) -> Path:
    """Rewrite the recording at `path` without the metadata `keys` (e.g. a course seed that must
    not leave a grader); the frames stay as they are. Returns the path."""
    p = Path(path)
    # refuses anything that is not a recording before rewriting it
    header, arrays = _read_checked(p)
    dropped = set(keys)
    metadata = header.get("metadata") or {}
    header["metadata"] = {k: v for k, v in metadata.items() if k not in dropped}
    arrays["header"] = np.array(json.dumps(header))
    _write_atomically(p, arrays)
    return p


@dataclass(frozen=True)
class Recording:
    """A loaded episode (arrays as in the module docstring)."""

    header: dict[str, Any]
    time: np.ndarray
    body_pose: np.ndarray
    muscle_points: np.ndarray
    muscle_counts: np.ndarray
    activation: np.ndarray
    contact_force: np.ndarray
    contact_spheres: np.ndarray
    ligament_force: np.ndarray
    observation: np.ndarray
    reward: np.ndarray
    action: np.ndarray
    obstacles: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def metadata(self) -> dict[str, Any]:
        return self.header.get("metadata", {})

    @property
    def bodies(self) -> tuple[str, ...]:
        return tuple(self.header["bodies"])

    @property
    def muscles(self) -> tuple[str, ...]:
        return tuple(self.header["muscles"])

    @property
    def dt(self) -> float:
        """Time between frames (s): the median step, or the RunEnv step for one frame."""
        if len(self) < 2:
            return STEP_SIZE
        return float(np.median(np.diff(self.time)))

    def body_xy(self, body: str) -> np.ndarray:
        """(T, 2) position (m) of a body's origin over time."""
        return self.body_pose[:, self.bodies.index(body), :2]

    def muscle_path(self, t: int, m: int) -> np.ndarray:
        return self.muscle_points[t, m, : self.muscle_counts[t, m]]

    def frame(self, t: int) -> Frame:
        """Frame ``t`` (negative indices count from the end)."""
        n = len(self)
        if not -n <= t < n:
            raise IndexError(f"frame {t} out of range for a recording of {n} frames")
        t %= n
        action = self.action[t]
        return Frame(
            time=float(self.time[t]),
            body_poses={
                b: tuple(float(v) for v in self.body_pose[t, i]) for i, b in enumerate(self.bodies)
            },
            muscle_paths=[self.muscle_path(t, m) for m in range(self.muscle_counts.shape[1])],
            activations=self.activation[t],
            contact_forces={c: self.contact_force[t, i] for i, c in enumerate(CONTACT_NAMES)},
            reward=float(self.reward[t]),
            action=None if np.isnan(action).all() else action,
            observation=self.observation[t],
            ligament_forces=self.ligament_force[t],
            contact_spheres=self.contact_spheres[t],
        )

    def cumulative_reward(self) -> np.ndarray:
        return np.cumsum(self.reward)

    def to_json_dict(self, decimals: int = 4) -> dict[str, Any]:
        """A compact JSON-able form for the browser viewer (floats rounded, ragged paths)."""

        def r(a: np.ndarray) -> Any:
            a = np.round(np.asarray(a, dtype=float), decimals)
            return np.where(np.isfinite(a), a, 0.0).tolist()

        paths = [
            [r(self.muscle_path(t, m)) for m in range(self.muscle_counts.shape[1])]
            for t in range(len(self))
        ]
        return {
            "header": self.header,
            "time": r(self.time),
            "bodies": list(self.bodies),
            "body_pose": r(self.body_pose),
            "muscle_paths": paths,
            "activation": r(self.activation),
            "contact_force": r(self.contact_force),
            "contact_spheres": r(self.contact_spheres),
            "reward": r(self.reward),
            "obstacles": r(self.obstacles),
        }


_ARRAYS = (
    "time",
    "body_pose",
    "muscle_points",
    "muscle_counts",
    "activation",
    "contact_force",
    "contact_spheres",
    "ligament_force",
    "observation",
    "reward",
    "action",
    "obstacles",
)


ZIP_MAGIC = b"PK\x03\x04"  # how an .npz (a zip archive) begins


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Read a recording written by :class:`Recorder`; ValueError if it is not one (or its
    arrays do not fit together: a damaged or hand-edited file fails here, not while drawing)."""
    header, arrays = _read_checked(Path(path))
    return Recording(header=header, **{k: arrays[k] for k in _ARRAYS})


# Header lists the arrays are laid out by (besides format and version).
_HEADER_LISTS = ("bodies", "muscles", "contacts", "contact_spheres", "ligaments")


def _check_shapes(p: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Every per-frame array has the same number of frames (at least one) and the layout the
    header names; ValueError naming the file and the array otherwise."""
    for key in _HEADER_LISTS:
        value = header.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{p}: its header has no list of names {key!r}")
    n_t = arrays["time"].shape[0] if arrays["time"].ndim == 1 else -1
    if n_t < 1:
        raise ValueError(f"{p}: a recording needs a (T,) time array with T >= 1 frames")
    n_b, n_m = len(header["bodies"]), len(header["muscles"])
    n_c, n_s = len(header["contacts"]), len(header["contact_spheres"])
    expected: dict[str, tuple[int | None, ...]] = {
        "body_pose": (n_t, n_b, 3),
        "muscle_points": (n_t, n_m, None, 2),
        "muscle_counts": (n_t, n_m),
        "activation": (n_t, n_m),
        "contact_force": (n_t, n_c, 2),
        "contact_spheres": (n_t, n_s, 3),
        "ligament_force": (n_t, len(header["ligaments"])),
        "observation": (n_t, N_OBSERVATION),
        "reward": (n_t,),
        "action": (n_t, N_ACTION),
        "obstacles": (None, 3),
    }
    for key, shape in expected.items():
        got = arrays[key].shape
        if len(got) != len(shape) or any(
            e is not None and g != e for g, e in zip(got, shape, strict=True)
        ):
            want = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
            raise ValueError(f"{p}: array {key!r} has shape {got}, expected {want}")
    counts = arrays["muscle_counts"]
    if counts.size and (counts.min() < 0 or counts.max() > arrays["muscle_points"].shape[2]):
        raise ValueError(f"{p}: muscle_counts exceed the muscle_points rows")


def _read_checked(p: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every array (extra ones too) of the recording at `p`, once read and
    checked (`_check_shapes` included); ValueError if it is not one."""
    if not p.is_file():
        raise FileNotFoundError(f"no recording at {p}")
    with open(p, "rb") as head:  # (numpy would suggest loading anything else as a pickle)
        if head.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            raise ValueError(f"{p} is not an l2run recording (not an .npz file)")
    try:
        with np.load(p, allow_pickle=False) as data:
            if "header" not in data.files:
                raise ValueError(f"{p} is not an l2run recording (no header)")
            try:
                header = json.loads(str(data["header"]))
            except ValueError as exc:  # not JSON, or an object array numpy will not unpickle
                raise ValueError(f"{p} is not an l2run recording (its header: {exc})") from None
            if not isinstance(header, dict):
                raise ValueError(f"{p} is not an l2run recording (its header is not an object)")
            missing = [k for k in _ARRAYS if k not in data.files]
            if missing:
                raise ValueError(f"{p} is missing arrays {missing}")
            try:
                arrays = {k: np.asarray(data[k]) for k in data.files}
            except ValueError as exc:  # e.g. a pickled (object) array
                raise ValueError(f"{p} is not an l2run recording: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:  # zip / npy corruption
        raise ValueError(f"{p} is not a readable .npz recording: {exc}") from exc
    if header.get("format") != FORMAT_NAME:
        raise ValueError(f"{p} is not an l2run recording (format {header.get('format')!r})")
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{p} has recording format version {header['version']}; "
            f"this l2run reads up to {FORMAT_VERSION}"
        )
    _check_shapes(p, header, arrays)
    return header, arrays


def hud_values(recording: Recording, t: int) -> tuple[float, float, float]:
    """(time s, distance m, total reward) shown at frame t: distance is pelvis x travelled."""
    pelvis = recording.body_xy("pelvis")[:, 0] if "pelvis" in recording.bodies else None
    distance = 0.0 if pelvis is None else float(pelvis[t] - pelvis[0])
    total = float(np.sum(recording.reward[: t + 1]))
    return float(recording.time[t]), distance, total if math.isfinite(total) else 0.0
