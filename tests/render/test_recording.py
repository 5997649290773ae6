from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from l2run.render.recording import (
    Recorder,
    capture_frame,
    episode_path,
    load_recording,
)
from l2run.render.skeleton import CONTACT_SPHERES, contact_sphere_positions

from .fake_engine import STEP, FakeEngine, record_fake_episode

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"


def test_round_trip_matches_engine(recording_file: Path) -> None:
    rec = load_recording(recording_file)
    assert len(rec) == 41  # reset state + 40 steps
    np.testing.assert_allclose(np.diff(rec.time), STEP)
    # replay the engine independently and compare a few frames
    engine = FakeEngine()
    for _ in range(17):
        engine.step(np.zeros(18))
    t = 17
    poses = engine.body_poses()
    for i, body in enumerate(rec.bodies):
        np.testing.assert_allclose(rec.body_pose[t, i], poses[body])
    for m, path in enumerate(engine.muscle_paths()):
        np.testing.assert_allclose(rec.muscle_path(t, m), path)
    np.testing.assert_allclose(rec.activation[t], engine.activations())
    np.testing.assert_allclose(rec.contact_force[t, 0], engine.contact_forces()["foot_r"])
    np.testing.assert_allclose(rec.observation[t], engine.observation())
    assert np.isnan(rec.action[0]).all() and rec.reward[0] == 0.0
    np.testing.assert_allclose(rec.action[1:], 0.3)
    assert rec.obstacles.shape == (2, 3)


def test_header_metadata(recording_file: Path) -> None:
    with np.load(recording_file, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
    assert header["format"] == "l2run-recording"
    meta = header["metadata"]
    assert meta["engine"] == "fake" and meta["seed"] == 7 and meta["difficulty"] == 2
    assert "package_version" in meta
    assert len(header["muscles"]) == 18 and header["muscles"][0] == "hamstrings_r"


def test_ragged_paths_padded(tmp_path: Path, fake_engine: FakeEngine) -> None:
    frame = capture_frame(fake_engine)
    paths = list(frame.muscle_paths)
    paths[3] = np.vstack([paths[3], paths[3][-1:] + 0.01])  # one muscle gains a point
    rec = Recorder(tmp_path / "r.npz", {})
    rec.add(frame)
    rec.add(type(frame)(**{**frame.__dict__, "muscle_paths": paths, "time": frame.time + STEP}))
    loaded = load_recording(rec.close())
    assert loaded.muscle_counts[0, 3] == 3 and loaded.muscle_counts[1, 3] == 4
    np.testing.assert_allclose(loaded.muscle_path(1, 3), paths[3])
    assert np.isnan(loaded.muscle_points[0, 3, 3]).all()


def test_bad_inputs(tmp_path: Path, fake_engine: FakeEngine) -> None:
    with pytest.raises(ValueError, match=".npz"):
        Recorder(tmp_path / "x.txt", {})
    with pytest.raises(ValueError, match="obstacles"):
        Recorder(tmp_path / "x.npz", {"obstacles": [[1.0, 2.0]]})
    rec = Recorder(tmp_path / "x.npz", {})
    with pytest.raises(ValueError, match="nothing recorded"):
        rec.arrays()
    assert rec.close() is None and not (tmp_path / "x.npz").exists()
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        load_recording(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an l2run recording"):
        load_recording(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        load_recording(tmp_path / "missing.npz")
    rec = Recorder(tmp_path / "y.npz", {})
    fake_engine.step(np.zeros(18))
    rec.capture(fake_engine)
    fake_engine.reset()
    with pytest.raises(ValueError, match="backwards"):
        rec.capture(fake_engine)


def test_episode_path_numbering(tmp_path: Path) -> None:
    assert episode_path(tmp_path / "ep.npz", 0) == tmp_path / "ep.npz"
    assert episode_path(tmp_path / "ep.npz", 3) == tmp_path / "ep-0003.npz"
    record_fake_episode(episode_path(tmp_path / "ep.npz", 1), steps=2)
    assert len(load_recording(tmp_path / "ep-0001.npz")) == 3


def test_contact_spheres_match_reference_model() -> None:
    osim = REFERENCE / "gait9dof18musc.osim"
    if not osim.is_file():
        pytest.skip(f"reference model folder absent: {REFERENCE}")
    # the .osim uses tag names like HuntCrossleyForce::ContactParameters that XML parsers
    # reject, so read the ContactSphere blocks with a regular expression
    text = osim.read_text()
    blocks = dict(re.findall(r'<ContactSphere name="(\w+)">(.*?)</ContactSphere>', text, re.S))
    assert set(blocks) == {name for name, *_ in CONTACT_SPHERES}
    for name, body, local, radius in CONTACT_SPHERES:
        block = blocks[name]

        def field(tag: str, block: str = block) -> str:
            return re.search(rf"<{tag}>(.*?)</{tag}>", block, re.S).group(1).strip()

        assert field("body_name") == body
        loc = [float(v) for v in field("location").split()]
        np.testing.assert_allclose(loc[:2], local)
        assert float(field("radius")) == pytest.approx(radius)


def test_contact_sphere_positions_follow_body_rotation() -> None:
    # calcn_r rotated by 90°: local (0.03, 0.04) lands at (-0.04, 0.03) from the origin
    poses = {"calcn_r": (1.0, 0.5, np.pi / 2)}
    out = contact_sphere_positions(poses)
    np.testing.assert_allclose(out[0], [1.0 - 0.04, 0.5 + 0.03, 0.05], atol=1e-12)
    assert np.isnan(out[1]).all()


def test_record_episode_rejects_other_envs(tmp_path: Path) -> None:
    import gymnasium

    from l2run.render.wrappers import RecordEpisode

    with pytest.raises(ValueError, match="l2run env"):
        RecordEpisode(gymnasium.make("CartPole-v1"), tmp_path)


def test_recordings_are_readable_as_any_file_written_here(tmp_path) -> None:
    """Written through a private temporary file, but given the usual mode (0666 less the
    umask), so that a grader or another user can read it."""
    import os
    import stat

    from .fake_engine import record_fake_episode

    umask = os.umask(0o022)
    try:
        path = record_fake_episode(tmp_path / "episode.npz", steps=3)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_header_that_is_not_an_object_is_refused(tmp_path) -> None:
    import numpy as np

    from .fake_engine import record_fake_episode

    path = record_fake_episode(tmp_path / "episode.npz", steps=3)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["header"] = np.array("[1]")
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="header is not an object"):
        load_recording(path)


def test_drop_metadata_removes_only_those_keys(recording_file: Path) -> None:
    from l2run.render.recording import drop_metadata

    with np.load(recording_file) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["extra"] = np.arange(5)  # an array this version does not read is kept
    np.savez_compressed(recording_file, **arrays)
    before = load_recording(recording_file)
    assert drop_metadata(recording_file, ["seed", "not there"]) == recording_file
    after = load_recording(recording_file)
    assert "seed" not in after.header["metadata"]
    assert after.header["metadata"] == {
        k: v for k, v in before.header["metadata"].items() if k != "seed"
    }
    for name in ("time", "body_pose", "observation", "action"):
        np.testing.assert_array_equal(getattr(after, name), getattr(before, name))
    with np.load(recording_file) as data:
        np.testing.assert_array_equal(data["extra"], np.arange(5))
    # not a recording: refused, and the file left as it was
    other = recording_file.with_name("other.npz")
    np.savez(other, x=np.arange(3))
    content = other.read_bytes()
    with pytest.raises(ValueError, match="not an l2run recording"):
        drop_metadata(other, ["seed"])
    assert other.read_bytes() == content


def _edited(path: Path, **changes) -> Path:
    """A copy of the recording at `path` with arrays replaced (None: removed)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    out = path.with_name(f"edited-{len(list(path.parent.iterdir()))}.npz")
    np.savez(out, **arrays)
    return out


def test_damaged_recordings_are_refused_naming_the_file(recording_file: Path) -> None:
    with np.load(recording_file) as data:
        header = json.loads(str(data["header"]))
        arrays = {k: data[k] for k in data.files}
    no_bodies = json.dumps({k: v for k, v in header.items() if k != "bodies"})
    cases = [
        (
            _edited(
                recording_file,
                **{k: v[:0] for k, v in arrays.items() if k not in ("header", "obstacles")},
            ),
            "T >= 1",
        ),
        (_edited(recording_file, body_pose=arrays["body_pose"][:10]), "'body_pose' has shape"),
        (_edited(recording_file, observation=arrays["observation"][:, :40]), "'observation'"),
        (_edited(recording_file, header=np.array(no_bodies)), "no list of names 'bodies'"),
        (_edited(recording_file, header=np.array("{not json")), "its header"),
        (_edited(recording_file, header=np.array([{"format": 1}], dtype=object)), "header"),
        (_edited(recording_file, muscle_counts=arrays["muscle_counts"] + 99), "muscle_counts"),
    ]
    for path, match in cases:
        with pytest.raises(ValueError, match=match) as caught:
            load_recording(path)
        assert str(path) in str(caught.value)
    load_recording(_edited(recording_file))  # an unchanged copy loads
