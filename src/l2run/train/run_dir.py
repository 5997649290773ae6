"""The output folder of `l2run train`: refuse one that holds files unless told to overwrite,
and then remove only what a training run writes there (never anything else)."""

from __future__ import annotations

import shutil
from pathlib import Path

from l2run.train.json_files import read_json_object

# Files and folders the trainers write into their output folder: sb3.train, ppo_jax.train
# and gait_search.search (with the temporary files of their atomic writes).
RUN_FILES = (
    "config.json",  # sb3, ppo
    "monitor.csv",  # sb3
    "model.zip",  # sb3
    "train_meta.json",  # sb3
    "progress.csv",  # ppo
    "ppo_params.npz",  # ppo
    "ppo_resume.npz",  # ppo: everything `--resume` continues from, written at each checkpoint
    "base_policy.json",  # ppo (residual / modulation runs)
    "best.json",  # controller searches
    "mean.json",
    "curve.csv",
    "curve.png",
    "search_config.json",
    "search_state.pkl",  # controller searches: what `--resume` continues from, per generation
    "resume.json",  # sb3: the checkpoint `--resume` continues from
)
RUN_FOLDERS = ("checkpoints", "tb")  # sb3 (checkpoints/ also holds the latest replay buffer)
# An atomic write killed half-way (`atomic_files.replacing`'s temporary files).
RUN_PATTERNS = tuple(
    f".{Path(name).stem}-*.part{Path(name).suffix}" for name in RUN_FILES if "." in name
)


def check_out_dir(out: Path, overwrite: bool) -> None:
    """ValueError when `out` is not a folder, or holds anything and `overwrite` is off.
    Touches nothing."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise ValueError(
            f"--out {out} is not empty; choose another folder, or pass --overwrite to replace "
            "the files of a previous run there (other files are left alone)"
        )


def run_files(out: Path) -> list[Path]:
    """The paths in `out` that a training run writes and that exist now."""
    found = [out / name for name in (*RUN_FILES, *RUN_FOLDERS) if (out / name).exists()]
    for pattern in RUN_PATTERNS:
        found += sorted(out.glob(pattern))
    return found


def remove_leftovers(out: Path) -> list[Path]:
    """Remove the temporary files of atomic writes that a killed run left in `out` and its
    checkpoints folder (`.NAME-*.part.EXT`); returns them. For a run about to be resumed:
    nothing else writes there then."""
    found = [p for pattern in RUN_PATTERNS for p in out.glob(pattern)]
    found += (out / "checkpoints").glob(".*.part.*")
    for path in found:
        path.unlink()
    return found


def prepare_out_dir(out: str | Path, overwrite: bool) -> Path:
    """Check `out` (`check_out_dir`), remove a previous run's files from it when `overwrite`,
    and create it. Call after every option is checked, just before the first write."""
    out = Path(out)
    check_out_dir(out, overwrite)
    if overwrite and out.is_dir():
        for path in run_files(out):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def read_run_config(run_dir: str | Path) -> dict:
    """The JSON object in a run folder's config.json; ValueError naming the file when it cannot
    be read, is not JSON or is not an object."""
    return read_json_object(Path(run_dir) / "config.json")
