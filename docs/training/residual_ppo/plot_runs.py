"""The figure curve.png: each run's distance of the episodes ending per iteration, smoothed.

python docs/training/residual_ppo/plot_runs.py OUT.png CSV=LABEL [CSV=LABEL ...]
The environment variable TITLE replaces the figure's title.
"""

import csv
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

N_POINTS = 30  # the moving average spans 1/N_POINTS of a run's iterations


def main(out: str, specs: list[str]) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for spec in specs:
        path, label = spec.split("=", 1)
        rows = [r for r in csv.DictReader(open(path)) if r["mean_distance"] != ""]
        steps = np.array([float(r["env_steps"]) for r in rows]) / 1e6
        distance = np.array([float(r["mean_distance"]) for r in rows])
        w = max(1, len(distance) // N_POINTS)
        ax.plot(steps[w - 1 :], np.convolve(distance, np.ones(w) / w, mode="valid"), label=label)
    ax.set_xlabel("environment steps (millions)")
    ax.set_ylabel("distance of the episodes ending (m)")
    title = "Residual PPO on the shipped walker (JAX engine, training courses, stochastic)"
    ax.set_title(os.environ.get("TITLE", title))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
