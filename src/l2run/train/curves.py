"""Learning-curve plots (PNG) of training runs: the gait search's `curve.csv` files."""

from __future__ import annotations

import csv
from pathlib import Path


def plot_search_curve(
    csv_paths: str | Path | list[str | Path], png_path: str | Path, title: str = ""
) -> Path:
    """Generation-best distance and generation-mean fitness against environment steps.

    Several `curve.csv` files (successive stages, each started from the previous one's best)
    are drawn end to end, a dashed line marking where each stage starts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [csv_paths] if isinstance(csv_paths, str | Path) else list(csv_paths)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    offset, wall = 0.0, 0.0
    for k, path in enumerate(paths):
        rows = list(csv.DictReader(Path(path).open()))
        if not rows:
            raise ValueError(f"{path} has no rows to plot")
        steps = [(offset + int(r["env_steps"])) / 1e6 for r in rows]
        if k:
            ax.axvline(offset / 1e6, color="grey", linestyle="--", alpha=0.6)
        ax.plot(steps, [float(r["gen_best_distance"]) for r in rows], color="C0",
                label="generation best: distance (m)" if k == 0 else None)  # fmt: skip
        ax.plot(steps, [float(r["gen_mean_fitness"]) for r in rows], color="C1", alpha=0.7,
                label="generation mean: fitness" if k == 0 else None)  # fmt: skip
        offset += int(rows[-1]["env_steps"])
        wall += float(rows[-1]["wall_s"])
    ax.set_xlabel("environment steps (millions, all candidates)")
    ax.set_ylabel("m")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"CMA-ES gait search ({wall:.0f} s wall)")
    fig.tight_layout()
    out = Path(png_path)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_ppo_curve(
    csv_paths: str | Path | list[str | Path], png_path: str | Path, title: str = ""
) -> Path:
    """Mean distance and length of the episodes ending in each PPO iteration (`progress.csv`
    of `l2run.train.ppo_jax`) against environment steps; successive stages (each started with
    `init_from` the previous one) are drawn end to end, a dashed line where each starts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [csv_paths] if isinstance(csv_paths, str | Path) else list(csv_paths)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    length_ax = ax.twinx()
    offset, wall = 0, 0.0
    for k, path in enumerate(paths):
        rows = [r for r in csv.DictReader(Path(path).open()) if r["mean_distance"]]
        if not rows:
            raise ValueError(f"{path} has no finished episodes to plot")
        steps = [(offset + int(r["env_steps"])) / 1e6 for r in rows]
        if k:
            ax.axvline(offset / 1e6, color="grey", linestyle="--", alpha=0.6)
        ax.plot(steps, [float(r["mean_distance"]) for r in rows], color="C0",
                label="mean distance (m)" if k == 0 else None)  # fmt: skip
        length_ax.plot(steps, [float(r["mean_length"]) for r in rows], color="C1", alpha=0.5,
                       label="mean length (steps)" if k == 0 else None)  # fmt: skip
        offset += int(rows[-1]["env_steps"])
        wall += float(rows[-1]["wall_s"])
    ax.set_xlabel("environment steps (millions)")
    ax.set_ylabel("m")
    length_ax.set_ylabel("steps")
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()
    more = length_ax.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
    ax.set_title(title or f"PPO on the JAX engine ({wall:.0f} s wall)")
    fig.tight_layout()
    out = Path(png_path)
    fig.savefig(out)
    plt.close(fig)
    return out
