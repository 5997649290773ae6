"""PPO learning-curve plot: stages drawn end to end; empty logs are refused."""

from __future__ import annotations

import csv

import pytest

FIELDS = ["iteration", "env_steps", "wall_s", "mean_distance", "mean_length"]


def _write(path, rows):
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_ppo_curve_plots_stages_and_refuses_empty(tmp_path):
    from PIL import Image

    from l2run.train.curves import plot_ppo_curve

    rows = [
        {"iteration": i, "env_steps": 1000 * (i + 1), "wall_s": i, "mean_distance": 0.5 * i,
         "mean_length": 50 + i}
        for i in range(5)
    ]  # fmt: skip
    a = _write(tmp_path / "a.csv", rows)
    b = _write(tmp_path / "b.csv", rows)
    png = plot_ppo_curve([a, b], tmp_path / "c.png")
    with Image.open(png) as image:
        assert image.size[0] > 100 and image.size[1] > 100
        assert len(set(image.convert("L").getdata())) > 10  # something was drawn
    empty = _write(tmp_path / "e.csv", [{**rows[0], "mean_distance": "", "mean_length": ""}])
    with pytest.raises(ValueError, match="no finished episodes"):
        plot_ppo_curve(empty, tmp_path / "e.png")
