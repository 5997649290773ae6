"""Browser replay: one self-contained HTML file (no network) that plays a recording.

``html_replay(recording) -> str`` fills ``viewer.html`` (play/pause, scrubbing, speed, follow
camera) with the recording as JSON; ``write_html_replay(recording, path)`` saves it (replacing any
file there only once complete). The grader serves ``html_replay(...)`` as ``text/html`` for each
graded episode. The page numbers frames from 0, as ``l2run render --frame`` does.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import numpy as np

from l2run.atomic_files import not_a_folder, write_bytes_atomically
from l2run.render import frame as frame_style
from l2run.render.frame import Camera
from l2run.render.recording import Recording
from l2run.render.skeleton import (
    BONES_LEFT,
    BONES_RIGHT,
    BONES_TRUNK,
    HEAD_CENTRE_LOCAL,
    HEAD_RADIUS,
    TOE_TIP_LOCAL,
)

PLACEHOLDER = "/*L2RUN_RECORDING*/"
# The browser canvas: the frame.py camera scaled up to 800×450 (same framing).
BROWSER_CAMERA = Camera(width=800, height=450, pixels_per_metre=187.5)


def _template() -> str:
    return resources.files("l2run.render").joinpath("viewer.html").read_text(encoding="utf-8")


def replay_data(recording: Recording, camera: Camera = BROWSER_CAMERA) -> dict:
    """Everything the page draws: the recording (compact) plus camera, skeleton and colours."""
    data = recording.to_json_dict()
    data["cumulative_reward"] = np.round(np.nancumsum(recording.reward), 4).tolist()
    data["camera"] = asdict(camera)
    data["skeleton"] = {
        "bones_right": BONES_RIGHT,
        "bones_left": BONES_LEFT,
        "bones_trunk": BONES_TRUNK,
        "toe_tip_local": TOE_TIP_LOCAL,
        "head_centre_local": HEAD_CENTRE_LOCAL,
        "head_radius": HEAD_RADIUS,
    }
    data["colours"] = {
        name.lower(): getattr(frame_style, name)
        for name in (
            "SKY",
            "GROUND",
            "GROUND_LINE",
            "MARK",
            "OBSTACLE",
            "BONE_NEAR",
            "BONE_FAR",
            "CONTACT_OUTLINE",
            "CONTACT_IDLE",
            "CONTACT_LOADED",
            "PELVIS_MARKER",
            "MUSCLE_UNKNOWN",
        )
    }
    data["colours"]["grf"] = frame_style.GRF_ARROW
    data["colours"]["hud"] = frame_style.HUD_TEXT
    data["marks"] = {"major": frame_style.MARK_SPACING, "minor": frame_style.MINOR_MARK_SPACING}
    data["body_weight"] = frame_style.BODY_WEIGHT
    data["grf_m_per_n"] = frame_style.GRF_ARROW_M_PER_N
    return data


def html_replay(recording: Recording, camera: Camera = BROWSER_CAMERA) -> str:
    """The replay page as one HTML string."""
    payload = json.dumps(replay_data(recording, camera), separators=(",", ":"), allow_nan=False)
    # Inside <script>, "</" could end the element early and "<!--" changes parsing. "<" can only
    # occur inside JSON strings, where "\u003c" is the same character.
    payload = payload.replace("<", "\\u003c")
    template = _template()
    if PLACEHOLDER not in template:
        raise RuntimeError("viewer.html lost its data placeholder")
    return template.replace(PLACEHOLDER, payload)


def write_html_replay(
    recording: Recording, path: str | Path, camera: Camera = BROWSER_CAMERA
) -> Path:
    """Save the replay page at ``path`` (.html/.htm); an existing file is replaced only once the
    new one is complete. IsADirectoryError when ``path`` is a folder."""
    out = Path(path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"replay file must end in .html, got {out.name!r}")
    not_a_folder(out)
    write_bytes_atomically(out, html_replay(recording, camera).encode("utf-8"))
    return out
