from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from l2run.render.plots import plot_recording

SPINE_DARKNESS = 110  # an axes frame line is darker than this in every channel
SPINE_MIN_FRACTION = 0.6  # ...and spans at least this share of the image width


def _horizontal_frame_lines(png: Path) -> list[int]:
    """Rows (grouped) that hold a long, dark, unbroken horizontal line: the axes frames."""
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    dark = (img < SPINE_DARKNESS).all(axis=-1)
    rows = []
    for r, line in enumerate(dark):
        # longest run of dark pixels in the row
        padded = np.concatenate([[0], line.astype(int), [0]])
        edges = np.flatnonzero(np.diff(padded))
        longest = (edges[1::2] - edges[::2]).max() if len(edges) else 0
        if longest >= SPINE_MIN_FRACTION * img.shape[1]:
            rows.append(r)
    groups = [rows[0]] if rows else []
    for a, b in zip(rows, rows[1:], strict=False):
        if b - a > 2:
            groups.append(b)
    return groups


def test_plot_has_four_panels(recording, tmp_path: Path) -> None:
    out = plot_recording(recording, tmp_path / "episode.png")
    lines = _horizontal_frame_lines(out)
    # every panel is a box: a top and a bottom frame line, four panels stacked
    assert len(lines) == 8, lines
    with Image.open(out) as img:
        assert img.size[0] > 500 and img.size[1] > 800


def test_plot_rejects_other_suffix(recording, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="png"):
        plot_recording(recording, tmp_path / "episode.jpg")


def test_one_frame_recording_draws_its_points(tmp_path: Path, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    from l2run.render.recording import load_recording

    from .fake_engine import record_fake_episode

    one = load_recording(record_fake_episode(tmp_path / "one.npz", steps=0))
    assert len(one) == 1
    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figures.append(fig), close(fig)))
    plot_recording(one, tmp_path / "one.png")
    (fig,) = figures
    lines = [line for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert len(lines) >= 6 + 4 + 1  # joints, forces, pelvis: each a single point
    assert all(line.get_marker() not in (None, "", "None", " ") for line in lines)
    assert fig.get_suptitle().endswith(", 1 frame")


def test_plot_into_a_folder_is_refused_before_drawing(
    recording, tmp_path: Path, monkeypatch
) -> None:
    import matplotlib.pyplot as plt

    def must_not_draw(*args, **kwargs):
        raise AssertionError("drew a figure for a target that cannot take it")

    monkeypatch.setattr(plt, "subplots", must_not_draw)
    folder = tmp_path / "plot.png"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        plot_recording(recording, folder)
    assert list(folder.iterdir()) == []
