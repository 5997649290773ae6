"""Learning-curve plots (PNG) of training runs: the gait search's `curve.csv`."""

from __future__ import annotations

import csv
from pathlib import Path


def plot_search_curve(csv_path: str | Path, png_path: str | Path, title: str = "") -> Path:
    """Best and mean fitness and the generation-best distance against environment steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(Path(csv_path).open()))
    if not rows:
        raise ValueError(f"{csv_path} has no rows to plot")
    steps = [int(r["env_steps"]) / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(
        steps, [float(r["gen_best_distance"]) for r in rows], label="generation best: distance (m)"
    )
    ax.plot(
        steps,
        [float(r["gen_mean_fitness"]) for r in rows],
        label="generation mean: fitness",
        alpha=0.7,
    )
    ax2 = ax.twinx()
    ax2.step(steps, [int(r["horizon"]) for r in rows], color="grey", where="post", alpha=0.5)
    ax2.set_ylabel("episode horizon (steps)", color="grey")
    ax.set_xlabel("environment steps (millions, all candidates)")
    ax.set_ylabel("m")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"CMA-ES gait search ({rows[-1]['wall_s']} s wall)")
    fig.tight_layout()
    out = Path(png_path)
    fig.savefig(out)
    plt.close(fig)
    return out
