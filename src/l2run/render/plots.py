"""One PNG summary of an episode: four panels stacked on a shared time axis.

1. joint angles (deg): hip, knee, ankle, right solid and left dashed (from the observation);
2. muscle activations as a heat map (muscles × time, 0 blue → 1 red, like the renderer);
3. ground reaction forces (N): vertical and horizontal, each foot;
4. pelvis x (m) over time.

A one-frame recording draws its single points as markers. The PNG replaces any file at its path
only once complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l2run.atomic_files import not_a_folder, replacing
from l2run.observation import OBSERVATION_NAMES
from l2run.render.recording import CONTACT_NAMES, Recording

# Joint angles come from the observation, found by name (right then left, hip/knee/ankle).
JOINT_COORDINATES = ("hip_flexion", "knee_angle", "ankle_angle")
JOINT_LABELS = ("hip", "knee", "ankle")
PANEL_TITLES = (
    "Joint angles",
    "Muscle activations",
    "Ground reaction forces",
    "Pelvis x",
)
FIGURE_SIZE = (10.0, 11.0)  # inches
DPI = 100


def plot_recording(recording: Recording, path: str | Path) -> Path:
    """Write the four-panel summary of ``recording`` to ``path`` (.png); returns the path."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"plot file must end in .png, got {out.name!r}")
    not_a_folder(out)
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t = recording.time
    # a line through one point draws nothing: mark the points when there is only one
    point = {"marker": "o", "markersize": 4} if len(t) == 1 else {}
    fig, axes = plt.subplots(
        4,
        1,
        figsize=FIGURE_SIZE,
        dpi=DPI,
        sharex=True,
        gridspec_kw={"height_ratios": (1.0, 1.4, 1.0, 0.8)},
        layout="constrained",
    )
    ax_joint, ax_act, ax_grf, ax_pelvis = axes

    names = recording.header.get("observation_names") or list(OBSERVATION_NAMES)
    for j, (coordinate, label) in enumerate(zip(JOINT_COORDINATES, JOINT_LABELS, strict=True)):
        for side, style in (("r", "-"), ("l", "--")):
            column = names.index(f"{coordinate}_{side}")
            angle = np.degrees(recording.observation[:, column])
            ax_joint.plot(
                t, angle, color=f"C{j}", linestyle=style, label=f"{label} {side}", **point
            )
    ax_joint.set_ylabel("angle (deg)")
    ax_joint.legend(ncol=6, fontsize=8, loc="upper right")

    dt = recording.dt
    image = ax_act.imshow(
        recording.activation.T,
        aspect="auto",
        origin="upper",
        cmap="coolwarm",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        extent=(t[0] - dt / 2, t[-1] + dt / 2, len(recording.muscles) - 0.5, -0.5),
    )
    ax_act.set_yticks(range(len(recording.muscles)), recording.muscles, fontsize=7)
    fig.colorbar(image, ax=ax_act, label="activation", pad=0.01, fraction=0.03)

    for i, foot in enumerate(CONTACT_NAMES):
        colour = f"C{i}"
        ax_grf.plot(
            t, recording.contact_force[:, i, 1], color=colour, label=f"{foot} vertical", **point
        )
        ax_grf.plot(
            t,
            recording.contact_force[:, i, 0],
            color=colour,
            linestyle=":",
            label=f"{foot} horizontal",
            **point,
        )
    ax_grf.set_ylabel("force (N)")
    ax_grf.legend(ncol=4, fontsize=8, loc="upper right")

    if "pelvis" in recording.bodies:
        ax_pelvis.plot(t, recording.body_xy("pelvis")[:, 0], color="k", **point)
    ax_pelvis.set_ylabel("x (m)")
    ax_pelvis.set_xlabel("time (s)")

    for ax, title in zip(axes, PANEL_TITLES, strict=True):
        ax.set_title(title, loc="left", fontsize=10)
    meta = recording.metadata
    n = len(recording)
    fig.suptitle(
        f"l2run episode: engine {meta.get('engine', '?')}, seed {meta.get('seed', '?')}, "
        f"difficulty {meta.get('difficulty', '?')}, {n} frame{'' if n == 1 else 's'}",
        fontsize=11,
    )
    try:
        with replacing(out) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png")
    finally:
        plt.close(fig)
    return out
