"""Draw one pose of the runner as an H×W×3 uint8 image (PIL ImageDraw; ~1 ms a frame).

What is drawn, back to front: sky, obstacles, ground with distance marks, the far (left) leg,
the trunk and head, the near (right) leg, muscles along their paths coloured blue (inactive) →
red (fully active), foot contact spheres (filled by load) with ground-reaction arrows, the pelvis
marker, and a HUD with time, distance and reward.

Pixels: the camera keeps the pelvis at the centre column; ``Camera.to_pixels`` maps ground-frame
metres to (column, row) with rows growing downwards and the ground line at ``ground_row``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from l2run.render.recording import Frame, Recording, capture_frame, hud_values
from l2run.render.skeleton import (
    BONES_LEFT,
    BONES_RIGHT,
    BONES_TRUNK,
    HEAD_CENTRE_LOCAL,
    HEAD_RADIUS,
    TOE_TIP_LOCAL,
    body_point,
)

Colour = tuple[int, int, int]

SKY: Colour = (236, 241, 246)
GROUND: Colour = (201, 189, 164)
GROUND_LINE: Colour = (92, 80, 60)
MARK: Colour = (70, 62, 48)
OBSTACLE: Colour = (150, 92, 45)
BONE_NEAR: Colour = (35, 35, 40)
BONE_FAR: Colour = (125, 125, 132)
CONTACT_OUTLINE: Colour = (55, 55, 55)
CONTACT_IDLE: Colour = (250, 250, 250)
CONTACT_LOADED: Colour = (255, 160, 0)
GRF_ARROW: Colour = (0, 150, 70)
PELVIS_MARKER: Colour = (255, 204, 0)
HUD_TEXT: Colour = (20, 20, 20)
MUSCLE_UNKNOWN: Colour = (128, 128, 128)

BODY_WEIGHT = 79.66 * 9.80665  # N, gait9dof18musc total mass × g: a contact at 1 BW is fully lit
GRF_ARROW_M_PER_N = 0.4 / BODY_WEIGHT  # m of arrow per N: one body weight draws a 0.4 m arrow
MARK_SPACING = 1.0  # m between labelled distance marks on the ground
MINOR_MARK_SPACING = 0.25  # m between small ticks
MIN_MARK_GAP = 2.0  # px: ground marks closer together than this are not drawn
MIN_LABEL_GAP = 40.0  # px: distance labels every 1, 2, 5 or 10 marks, at least this far apart
LABEL_EVERY = (1, 2, 5, 10)  # marks between labels (5 px/m, the least, labels every 10 m)


MAX_IMAGE_SIDE = 8192  # pixels a side: an 8K frame (200 MB as RGB) is the most a render may ask for
# Pixels per metre a camera accepts: from a 16-pixel-high image fitted to the runner (6.7) down to
# 5 (a 640-pixel image spans 128 m), up to 10 000 (an 8K image spans 0.8 m).
PIXELS_PER_METRE_RANGE = (5.0, 10_000.0)


@dataclass(frozen=True)
class Camera:
    """Image size and the metres→pixels map; the view follows the pelvis horizontally."""

    width: int = 640
    height: int = 360
    pixels_per_metre: float = 150.0
    ground_fraction: float = 0.85  # ground line at this fraction of the height, from the top

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"image must be at least 16×16 pixels, got {self.width}×{self.height}")
        if self.width > MAX_IMAGE_SIDE or self.height > MAX_IMAGE_SIDE:
            raise ValueError(
                f"image must be at most {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} pixels, "
                f"got {self.width}×{self.height}"
            )
        low, high = PIXELS_PER_METRE_RANGE
        if not low <= self.pixels_per_metre <= high:  # False for NaN too
            raise ValueError(
                f"pixels per metre must be between {low:g} and {high:g}, "
                f"got {self.pixels_per_metre}"
            )

    @property
    def ground_row(self) -> float:
        return self.height * self.ground_fraction

    def to_pixels(self, xy: np.ndarray | Sequence[float], centre_x: float) -> np.ndarray:
        """(..., 2) ground-frame x, y (m) → (..., 2) column, row (pixels, float)."""
        xy = np.asarray(xy, dtype=float)
        col = self.width / 2 + (xy[..., 0] - centre_x) * self.pixels_per_metre
        row = self.ground_row - xy[..., 1] * self.pixels_per_metre
        return np.stack([col, row], axis=-1)


@dataclass(frozen=True)
class Hud:
    time: float  # s
    distance: float  # m the pelvis travelled since the start
    reward: float  # total so far
    label: str = ""  # e.g. the engine name


def activation_colour(activation: float) -> Colour:
    """Blue at 0, red at 1, linear in between (clipped); grey when unknown (NaN)."""
    if not np.isfinite(activation):
        return MUSCLE_UNKNOWN
    a = float(np.clip(activation, 0.0, 1.0))
    return (round(255 * a), 0, round(255 * (1.0 - a)))


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    t = float(np.clip(t, 0.0, 1.0))
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()


def _pts(px: np.ndarray) -> list[tuple[float, float]]:
    return [(float(c), float(r)) for c, r in px]


def _circle(draw: ImageDraw.ImageDraw, centre: np.ndarray, radius: float, **kw: object) -> None:
    c, r = float(centre[0]), float(centre[1])
    draw.ellipse([c - radius, r - radius, c + radius, r + radius], **kw)


def _draw_ground(draw: ImageDraw.ImageDraw, cam: Camera, centre_x: float) -> None:
    """Ground, ground line and distance marks: small ticks and a mark every metre, labelled when
    there is room; marks that would lie under ``MIN_MARK_GAP`` pixels apart are left out."""
    g = cam.ground_row
    draw.rectangle([0, g, cam.width, cam.height], fill=GROUND)
    draw.line([(0, g), (cam.width, g)], fill=GROUND_LINE, width=2)
    ppm = cam.pixels_per_metre
    spacing = next((s for s in (MINOR_MARK_SPACING, MARK_SPACING) if s * ppm >= MIN_MARK_GAP), None)
    if spacing is None:
        return
    label_every = next(
        (k for k in LABEL_EVERY if k * MARK_SPACING * ppm >= MIN_LABEL_GAP), LABEL_EVERY[-1]
    )
    half_width_m = cam.width / 2 / cam.pixels_per_metre
    font = _font(max(9, cam.height // 30))
    first = np.floor((centre_x - half_width_m) / spacing) * spacing
    for x in np.arange(first, centre_x + half_width_m + spacing, spacing):
        col = float(cam.to_pixels((x, 0.0), centre_x)[0])
        mark = round(x / MARK_SPACING)
        major = abs(x / MARK_SPACING - mark) < 1e-6
        tick = 10 if major else 4
        draw.line([(col, g), (col, g + tick)], fill=MARK, width=2 if major else 1)
        if major and mark % label_every == 0:
            draw.text((col + 3, g + 4), f"{round(x):d} m", fill=MARK, font=font)


def _draw_obstacles(
    draw: ImageDraw.ImageDraw, cam: Camera, centre_x: float, obstacles: np.ndarray
) -> None:
    for x, y, r in np.asarray(obstacles, dtype=float).reshape(-1, 3):
        if not np.isfinite([x, y, r]).all() or r <= 0:
            continue
        px = cam.to_pixels((x, y), centre_x)
        rad = r * cam.pixels_per_metre
        if px[0] + rad < 0 or px[0] - rad > cam.width:
            continue
        _circle(draw, px, rad, fill=OBSTACLE, outline=GROUND_LINE)


def _bone_width(cam: Camera) -> int:
    return max(2, round(0.035 * cam.pixels_per_metre))


def _muscle_width(cam: Camera) -> int:
    return max(1, round(0.016 * cam.pixels_per_metre))


def _draw_bones(
    draw: ImageDraw.ImageDraw,
    cam: Camera,
    centre_x: float,
    poses: Mapping[str, tuple[float, float, float]],
    bones: Sequence[tuple[str, str]],
    colour: Colour,
) -> None:
    width = _bone_width(cam)
    for parent, child in bones:
        if parent in poses and child in poses:
            ends = cam.to_pixels([poses[parent][:2], poses[child][:2]], centre_x)
            draw.line(_pts(ends), fill=colour, width=width)
            for end in ends:  # round joints
                _circle(draw, end, width / 2, fill=colour)
    toes = bones[-1][1] if bones else ""
    if toes.startswith("toes") and toes in poses:
        tip = body_point(poses[toes], TOE_TIP_LOCAL)
        ends = cam.to_pixels([poses[toes][:2], tip], centre_x)
        draw.line(_pts(ends), fill=colour, width=width)


def _draw_muscles(
    draw: ImageDraw.ImageDraw,
    cam: Camera,
    centre_x: float,
    paths: Sequence[np.ndarray],
    activations: np.ndarray,
    indices: Sequence[int],
) -> None:
    width = _muscle_width(cam)
    for m in indices:
        path = np.asarray(paths[m], dtype=float).reshape(-1, 2)
        path = path[np.isfinite(path).all(axis=1)]
        if len(path) < 2:
            continue
        a = float(activations[m]) if m < len(activations) else float("nan")
        draw.line(_pts(cam.to_pixels(path, centre_x)), fill=activation_colour(a), width=width)


def _draw_contacts(
    draw: ImageDraw.ImageDraw,
    cam: Camera,
    centre_x: float,
    spheres: np.ndarray,
    forces: Mapping[str, np.ndarray],
) -> None:
    # spheres rows: r_heel, r_toe, l_heel, l_toe; forces per foot
    for foot, rows in (("foot_r", (0, 1)), ("foot_l", (2, 3))):
        force = np.asarray(forces.get(foot, np.zeros(2)), dtype=float)[:2]
        load = float(np.hypot(*force)) / BODY_WEIGHT if np.isfinite(force).all() else 0.0
        fill = _mix(CONTACT_IDLE, CONTACT_LOADED, load)
        valid = [spheres[i] for i in rows if np.isfinite(spheres[i]).all()]
        for x, y, r in valid:
            _circle(
                draw,
                cam.to_pixels((x, y), centre_x),
                r * cam.pixels_per_metre,
                fill=fill,
                outline=CONTACT_OUTLINE,
            )
        if valid and load > 0.01:
            foot_x = float(np.mean([v[0] for v in valid]))
            start = np.array([foot_x, 0.0])
            end = start + force * GRF_ARROW_M_PER_N
            px = cam.to_pixels([start, end], centre_x)
            draw.line(_pts(px), fill=GRF_ARROW, width=3)
            _circle(draw, px[1], 3, fill=GRF_ARROW)


def _draw_hud(draw: ImageDraw.ImageDraw, cam: Camera, hud: Hud) -> None:
    size = max(10, cam.height // 24)  # px
    text = f"t {hud.time:6.2f} s    distance {hud.distance:6.2f} m    reward {hud.reward:7.3f}"
    draw.text((8, 6), text, fill=HUD_TEXT, font=_font(size))
    if hud.label:
        draw.text((8, 10 + size), hud.label, fill=HUD_TEXT, font=_font(max(9, size * 3 // 4)))


def render_frame(
    frame: Frame,
    obstacles: np.ndarray | Sequence[Sequence[float]] = (),
    camera: Camera | None = None,
    hud: Hud | None = None,
    centre_x: float | None = None,
) -> np.ndarray:
    """Draw ``frame``; returns (camera.height, camera.width, 3) uint8.

    ``centre_x`` (m) is the world x at the image centre; default: the pelvis x (camera follows).
    """
    cam = camera or Camera()
    poses = frame.body_poses
    if centre_x is None:
        centre_x = float(poses["pelvis"][0]) if "pelvis" in poses else 0.0
    img = Image.new("RGB", (cam.width, cam.height), SKY)
    draw = ImageDraw.Draw(img)
    _draw_obstacles(draw, cam, centre_x, np.asarray(obstacles, dtype=float))
    _draw_ground(draw, cam, centre_x)

    n = len(frame.muscle_paths)
    right, left = range(0, n // 2), range(n // 2, n)  # MUSCLES order: right leg, then left
    acts = np.asarray(frame.activations, dtype=float)
    _draw_bones(draw, cam, centre_x, poses, BONES_LEFT, BONE_FAR)
    _draw_muscles(draw, cam, centre_x, frame.muscle_paths, acts, left)
    _draw_bones(draw, cam, centre_x, poses, BONES_TRUNK, BONE_NEAR)
    if "head" in poses:
        head = cam.to_pixels(body_point(poses["head"], HEAD_CENTRE_LOCAL), centre_x)
        _circle(
            draw, head, HEAD_RADIUS * cam.pixels_per_metre, fill=SKY, outline=BONE_NEAR, width=3
        )
    _draw_bones(draw, cam, centre_x, poses, BONES_RIGHT, BONE_NEAR)
    _draw_muscles(draw, cam, centre_x, frame.muscle_paths, acts, right)
    _draw_contacts(draw, cam, centre_x, frame.spheres(), frame.contact_forces)
    if "pelvis" in poses:
        pelvis = cam.to_pixels(poses["pelvis"][:2], centre_x)
        _circle(draw, pelvis, max(3, _bone_width(cam)), fill=PELVIS_MARKER, outline=BONE_NEAR)
    if hud is not None:
        _draw_hud(draw, cam, hud)
    return np.asarray(img, dtype=np.uint8)


def render_engine(
    engine: object,
    obstacles: np.ndarray | Sequence[Sequence[float]] = (),
    camera: Camera | None = None,
    hud: Hud | None = None,
) -> np.ndarray:
    """Draw an engine's current state (Engine protocol): what ``render_mode="rgb_array"`` gives."""
    return render_frame(capture_frame(engine, observe=False), obstacles, camera, hud)


def recording_hud(recording: Recording, t: int) -> Hud:
    time, distance, reward = hud_values(recording, t)
    return Hud(time, distance, reward, str(recording.metadata.get("engine", "")))


def render_recording(
    recording: Recording, camera: Camera | None = None, stride: int = 1
) -> Iterator[np.ndarray]:
    """Frames of a whole recording (every ``stride``-th), with the HUD."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    for t in range(0, len(recording), stride):
        yield render_frame(
            recording.frame(t), recording.obstacles, camera, recording_hud(recording, t)
        )
