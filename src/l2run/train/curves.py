"""Learning-curve plots (PNG) of training runs: the controller search's `curve.csv` and PPO's
`progress.csv` files, successive stages drawn end to end."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class _Series:
    column: str  # CSV column plotted against env_steps
    label: str
    color: str
    alpha: float = 1.0
    right_axis: bool = False  # drawn on a second y axis (other unit)


def _plot_stages(
    csv_paths: str | Path | list[str | Path],
    png_path: str | Path,
    series: tuple[_Series, ...],
    xlabel: str,
    labels: tuple[str, str | None],
    title: str,
    rows_name: str,
) -> Path:
    """Each series against cumulated environment steps, one stage after another, a dashed line
    where each later stage starts. Rows whose plotted columns are empty are skipped, but a
    stage always ends at its very last row's step count. `labels`: y-axis labels (left, right);
    `title` may hold "{wall}", the stages' summed wall time (s); `rows_name` names the rows in
    the error for a stage with none to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [csv_paths] if isinstance(csv_paths, str | Path) else list(csv_paths)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    right = ax.twinx() if labels[1] else None
    offset, wall = 0, 0.0
    for k, path in enumerate(paths):
        all_rows = list(csv.DictReader(Path(path).open()))
        rows = [r for r in all_rows if all(r[s.column] for s in series)]
        if not rows:
            raise ValueError(f"{path} has no {rows_name} to plot")
        steps = [(offset + int(r["env_steps"])) / 1e6 for r in rows]
        if k:
            ax.axvline(offset / 1e6, color="grey", linestyle="--", alpha=0.6)
        for s in series:
            target = right if s.right_axis else ax
            values = [float(r[s.column]) for r in rows]
            target.plot(
                steps, values, color=s.color, alpha=s.alpha, label=s.label if k == 0 else None
            )
        offset += int(all_rows[-1]["env_steps"])
        wall += float(all_rows[-1]["wall_s"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(labels[0])
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    if right is not None:
        right.set_ylabel(labels[1])
        more_handles, more_names = right.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    ax.legend(handles, names, loc="upper left", fontsize=8)
    ax.set_title(title.format(wall=f"{wall:.0f}"))
    fig.tight_layout()
    out = Path(png_path)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_search_curve(
    csv_paths: str | Path | list[str | Path], png_path: str | Path, title: str = ""
) -> Path:
    """Generation-best distance and generation-mean fitness of a CMA-ES controller search
    (`l2run.train.gait_search`) against environment steps; several stages (each started
    from the previous one's best) end to end."""
    series = (
        _Series("gen_best_distance", "generation best: distance (m)", "C0"),
        _Series("gen_mean_fitness", "generation mean: fitness", "C1", alpha=0.7),
    )
    return _plot_stages(
        csv_paths,
        png_path,
        series,
        "environment steps (millions, all candidates)",
        ("m", None),
        title or "CMA-ES controller search ({wall} s wall)",
        "generations",
    )


def plot_ppo_curve(
    csv_paths: str | Path | list[str | Path], png_path: str | Path, title: str = ""
) -> Path:
    """Mean distance and length of the episodes ending in each PPO iteration (`progress.csv`
    of `l2run.train.ppo_jax`) against environment steps; successive stages (each started with
    `init_from` the previous one) end to end."""
    series = (
        _Series("mean_distance", "mean distance (m)", "C0"),
        _Series("mean_length", "mean length (steps)", "C1", alpha=0.5, right_axis=True),
    )
    return _plot_stages(
        csv_paths,
        png_path,
        series,
        "environment steps (millions)",
        ("m", "steps"),
        title or "PPO on the JAX engine ({wall} s wall)",
        "finished episodes",
    )
