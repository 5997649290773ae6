"""`l2run train | test | evaluate | demo`: bad arguments, configs and policy files are usage
errors named before anything runs or is written (no tracebacks, no half-made run folders)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from l2run.cli import app

runner = CliRunner()


def refused(args: list[str], *words: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output  # click's usage error
    assert "Traceback" not in result.output
    # rich draws the message in a box, wrapped over lines, and folds a word longer than the
    # box (a temporary path) anywhere: compare without the box and without whitespace
    text = "".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
    for word in words:
        assert "".join(word.split()) in text, result.output


def write(path: Path, data) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    "config, words",
    [
        ({"popsize": 0}, ["popsize must be an int >= 2"]),
        ({"foo": 1}, ["not a SearchConfig field"]),
        ({"seed": 5}, ["seed in the JSON config differ"]),
        ({"controller": "gait"}, ["controller in the JSON config differ"]),
        ({"sigma0": -1.0}, ["sigma0 must be > 0"]),
        ({"integrator": "rk4:20"}, ["integrator can only be set for the jax engine"]),
        ({"action_noise": 0.1}, ["action_noise can only be set for the jax engine"]),
        ("[1, 2]", ["must hold a JSON object"]),
        ("{not json", ["is not JSON"]),
    ],
)
def test_search_configs_are_checked_before_anything_is_written(tmp_path, config, words) -> None:
    out = tmp_path / "run"
    args = ["train", "--algo", "walker", "--steps", "50", "--out", str(out)]
    refused([*args, "--config", write(tmp_path / "c.json", config)], *words)
    assert not out.exists()


def test_search_arguments_and_starting_files_are_checked(tmp_path) -> None:
    out = tmp_path / "run"
    base = ["train", "--algo", "walker", "--steps", "50", "--out", str(out)]
    refused([*base, "--difficulty", "9"], "difficulty must be one of")
    refused([*base, "--engine", "mujoco"], "engine must be one of")
    refused([*base, "--max-obstacles", "-1"], "max_obstacles")
    refused([*base, "--init", str(tmp_path / "none.json")], "cannot read the policy file")
    gait_file = write(tmp_path / "gait.json", {"kind": "gait", "params": [0.1] * 24})
    refused([*base, "--init", gait_file], "holds 24 values; a walker search starts from 35")
    refused([*base, "--config", str(tmp_path / "none.json")], "cannot read")
    assert not out.exists()
    refused(["train", "--algo", "ppo", "--engine", "jax", "--init", gait_file], "--init starts")


def test_sb3_configs_refuse_what_they_would_ignore(tmp_path) -> None:
    base = ["train", "--algo", "ddpg", "--steps", "50", "--out", str(tmp_path / "run")]
    typo = write(tmp_path / "typo.json", {"hyper": {"learnin_rate": 5}})
    refused([*base, "--config", typo], "unknown hyper-parameters ['learnin_rate']")
    top = write(tmp_path / "top.json", {"learning_starts": 1000})
    refused([*base, "--config", top], "unknown keys ['learning_starts']")
    assert not (tmp_path / "run").exists()


def test_a_missing_train_extra_is_named(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cma" else real(name, *a)
    )
    refused(["train", "--algo", "walker", "--steps", "50"], "needs the 'train' extra", "cma")


@pytest.mark.parametrize(
    "policy, words",
    [
        ("[1, 2, 3]", "must hold a JSON object"),
        ({"kind": "walker"}, "has no 'params'"),
        ({"kind": "walker", "params": [float("nan")] * 3}, "finite numbers"),
        ("{broken", "is not JSON"),
    ],
)
def test_malformed_policy_files_are_usage_errors(tmp_path, policy, words) -> None:
    path = write(tmp_path / "policy.json", policy)
    refused(["test", "--model", path], words)
    refused(["evaluate", "--policy", path, "--seeds", "1"], words)


def test_a_ppo_run_stopped_before_its_first_checkpoint_says_so(tmp_path) -> None:
    run = tmp_path / "ppo"
    run.mkdir()
    write(run / "config.json", {"algo": "ppo", "total_steps": 1000})
    refused(["evaluate", "--policy", str(run), "--seeds", "1"], "without ppo_params.npz")


def test_test_and_evaluate_check_their_arguments() -> None:
    refused(["test", "--model", "zero", "--engine", "foo"], "engine must be one of")
    refused(["test", "--model", "zero", "--difficulty", "5"], "difficulty must be one of")
    refused(["evaluate", "--policy", "zero", "--seeds", "1-2,2"], "more than once")
    refused(["evaluate", "--policy", "zero", "--seeds", "0-4294967296"], "at most 4294967295")
    jax_legacy = ["--engine", "jax", "--obstacle-physics", "osim-rl-1.5"]
    refused(["evaluate", "--policy", "zero", *jax_legacy], "OpenSim engine only")


def test_demo_checks_its_video_before_running(tmp_path) -> None:
    refused(["demo", "--seeds", "1", "--video", str(tmp_path / "demo.avi")], "must end in one of")
    missing = tmp_path / "no" / "such" / "folder" / "demo.mp4"
    refused(["demo", "--seeds", "1", "--video", str(missing)], "no folder")


def previous_run(folder: Path) -> dict[str, str]:
    """A folder holding an earlier run's files (and one of the user's); their contents."""
    folder.mkdir()
    files = {
        "config.json": '{"algo": "ppo"}',
        "ppo_params.npz": "old weights",
        "monitor.csv": "old episodes",
        "notes.txt": "not a run file",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


def unchanged(folder: Path, files: dict[str, str]) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (folder / name).read_text() == text, name


def test_a_folder_that_is_not_empty_is_refused_without_overwrite(tmp_path) -> None:
    out = tmp_path / "run"
    files = previous_run(out)
    for algo in ("walker", "ppo", "ddpg"):
        args = ["train", "--algo", algo, "--engine", "jax", "--steps", "50", "--out", str(out)]
        refused(args, "is not empty", "--overwrite")
    unchanged(out, files)
    (tmp_path / "file").write_text("x")
    refused(["train", "--algo", "walker", "--out", str(tmp_path / "file")], "is a file")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--algo", "ppo", "--engine", "jax", "--max-obstacles", "-2"], ["max_obstacles"]),
        (["--algo", "ppo", "--engine", "jax", "--seed", "-1"], ["seed must be an int in [0,"]),
        (["--algo", "ddpg", "--seed", "-1"], ["seed must be an int in [0, 4294967295]"]),
        (["--algo", "ddpg", "--max-obstacles", "-2"], ["max_obstacles"]),
        (["--algo", "walker", "--engine", "jax", "--seed", "-5"], ["seed must be an int in [0,"]),
    ],
)
def test_refused_options_lose_nothing_even_with_overwrite(tmp_path, args, words) -> None:
    out = tmp_path / "run"
    files = previous_run(out)
    refused(["train", *args, "--steps", "100", "--out", str(out), "--overwrite"], *words)
    unchanged(out, files)
    refused(["train", *args, "--steps", "100", "--out", str(tmp_path / "new")], *words)
    assert not (tmp_path / "new").exists()


def test_overwrite_removes_only_the_files_of_a_previous_run(tmp_path) -> None:
    out = tmp_path / "run"
    previous_run(out)
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "ddpg_100_steps.zip").write_text("old")
    (out / "mine").mkdir()
    config = write(tmp_path / "c.json", {"popsize": 2, "horizon0": 3, "generations": 1})
    args = ["train", "--algo", "walker", "--steps", "5", "--out", str(out), "--config", config]
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "best.json", "curve.csv", "curve.png", "mean.json", "mine", "notes.txt",
        "search_config.json", "search_state.pkl",
    ]  # fmt: skip
    assert (out / "notes.txt").read_text() == "not a run file"


@pytest.mark.parametrize(
    "config, words",
    [
        ({"algo": "ddpg", "foo": 1}, ["has unknown keys ['foo']"]),
        ("[1, 2]", ["must hold a JSON object, not list"]),
        ("{broken", ["is not JSON: Expecting"]),
    ],
)
def test_a_broken_run_config_is_named(tmp_path, config, words) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write(run / "config.json", config)
    (run / "model.zip").write_text("not read")
    refused(["evaluate", "--policy", str(run), "--seeds", "1"], *words)
    refused(["test", "--model", str(run)], *words)


def test_a_config_naming_another_algorithm_than_its_model_is_refused(tmp_path) -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    run = tmp_path / "run"
    run.mkdir()
    sb3.DDPG("MlpPolicy", "Pendulum-v1", learning_starts=1).save(run / "model.zip")
    write(run / "config.json", {"algo": "sac"})
    refused(["evaluate", "--policy", str(run), "--seeds", "1"], "model.zip is not a sac model")


def test_an_sb3_checkpoint_can_be_tested_and_evaluated(tmp_path) -> None:
    pytest.importorskip("stable_baselines3")
    out = tmp_path / "run"
    config = write(tmp_path / "c.json", {"checkpoint_every": 2})
    args = ["train", "--algo", "ddpg", "--steps", "4", "--out", str(out), "--config", config]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    checkpoint = out / "checkpoints" / "ddpg_2_steps.zip"
    assert checkpoint.is_file(), sorted(p.name for p in (out / "checkpoints").iterdir())
    common = ["--difficulty", "0", "--max-steps", "3"]
    result = runner.invoke(app, ["test", "--model", str(checkpoint), *common])
    assert result.exit_code == 0, result.output
    assert "episode 1: distance" in result.output
    from l2run.train.evaluate import load_policy

    assert load_policy(str(checkpoint)).model.num_timesteps == 2


def test_a_relative_init_from_is_found_beside_its_config_file(tmp_path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    config = write(folder / "ppo.json", {"init_from": "runs/first"})
    args = ["train", "--algo", "ppo", "--engine", "jax", "--steps", "64", "--config", config]
    refused([*args, "--out", str(tmp_path / "run")], "is not a PPO run directory")
    output = runner.invoke(app, [*args, "--out", str(tmp_path / "run")]).output
    assert str(folder / "runs" / "first") in "".join(re.sub("[│╭╮╰╯─]", "", output).split())


def test_a_relative_base_policy_is_found_beside_its_config_file(tmp_path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    config = write(folder / "ppo.json", {"base_policy": "walkers/missing.json"})
    args = ["train", "--algo", "ppo", "--engine", "jax", "--steps", "64", "--config", config]
    output = runner.invoke(app, [*args, "--out", str(tmp_path / "run")]).output
    flat = "".join(re.sub("[│╭╮╰╯─]", "", output).split())
    assert str(folder / "walkers" / "missing.json") in flat, output


def test_resume_takes_only_a_new_budget_and_a_run_folder(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    refused(["train", "--resume", str(run), "--algo", "sac", "--seed", "3"], "drop --algo, --seed")
    refused(["train", "--resume", str(run), "--overwrite"], "drop --overwrite")
    refused(["train", "--resume", str(tmp_path / "none")], "is not a folder")
    refused(["train", "--resume", str(run)], "holds no training run")
    write(run / "config.json", {"algo": "a2c"})
    refused(["train", "--resume", str(run)], "names no algorithm l2run trains")
    write(run / "config.json", {"algo": "ddpg", "steps": 50})
    refused(["train", "--resume", str(run), "--steps", "90"], "has no resume.json")


def test_a_finished_search_resumes_to_a_larger_budget(tmp_path) -> None:
    out = tmp_path / "run"
    config = write(tmp_path / "c.json", {"popsize": 2, "horizon0": 3})
    args = ["train", "--algo", "walker", "--steps", "5", "--out", str(out), "--config", config]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = (out / "curve.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["0"]  # 2 candidates x 3 steps > 5
    # half-written files of a kill: removed by the resume
    leftovers = [out / ".curve-0123.part.csv", out / "checkpoints" / ".x_8_steps-01.part.zip"]
    (out / "checkpoints").mkdir()
    for path in leftovers:
        path.write_text("partial")
    result = runner.invoke(app, ["train", "--resume", str(out), "--steps", "12"])
    assert not any(path.exists() for path in leftovers)
    assert result.exit_code == 0, result.output
    rows = (out / "curve.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["0", "1"]
    assert json.loads((out / "search_config.json").read_text())["max_env_steps"] == 12
