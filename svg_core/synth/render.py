"""Pixel renderer of synthetic scenes: numpy frames, PIL-drawn anti-aliased sprites.

``render_frames(scene, frame_size, fps, first, count)`` returns uint8 [count, H, W, 3]. Frame i
shows the world at t = i / fps seconds. Objects are drawn at quarter-pixel positions (sprites are
rasterised at 4x and box-filtered), so slow motions still change pixels from frame to frame; an
object with no running event is drawn identically in every frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from svg_core.synth.scene import (
    BOUNCE_HEIGHT,
    CIRCLE_RADIUS,
    COLOURS,
    JUMP_HEIGHT,
    SHAKE_AMPLITUDE,
    EventSpec,
    SceneSpec,
)

SUPERSAMPLE = 4
ANGLE_STEP_DEG = 3.0


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """Vertices of a shape of radius 1 centred on 0 (y down), at angle 0."""
    if shape == "box":
        return [(-0.82, -0.82), (0.82, -0.82), (0.82, 0.82), (-0.82, 0.82)]
    if shape == "diamond":
        return [(0.0, -1.0), (0.68, 0.0), (0.0, 1.0), (-0.68, 0.0)]
    if shape == "triangle":
        return [(np.cos(a), np.sin(a)) for a in np.radians([-90, 30, 150])]
    if shape == "star":
        return [
            ((1.0 if i % 2 == 0 else 0.45) * np.cos(a), (1.0 if i % 2 == 0 else 0.45) * np.sin(a))
            for i, a in enumerate(np.radians(np.arange(10) * 36 - 90))
        ]
    if shape == "cross":
        w = 0.34
        return [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
    raise ValueError(f"no polygon for shape {shape!r}")


def _draw_mask(shape: str, radius_px: float, angle_deg: float, off_x: float, off_y: float, size: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape centred at (size/2 + off) in a size x size box."""
    ss = SUPERSAMPLE
    img = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(img)
    cx, cy = (size / 2 + off_x) * ss, (size / 2 + off_y) * ss
    r = radius_px * ss
    if shape in ("ball", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if shape == "ring":
            ri = 0.55 * r
            draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    else:
        a = np.radians(angle_deg)
        ca, sa = np.cos(a), np.sin(a)
        pts = [(cx + r * (ca * x - sa * y), cy + r * (sa * x + ca * y)) for x, y in _unit_polygon(shape)]
        draw.polygon(pts, fill=255)
    small = img.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=6000)
def sprite(shape: str, radius_q: int, angle_q: int, off_qx: int, off_qy: int) -> tuple[np.ndarray, np.ndarray]:
    """Cached blending weights of one sprite for quantised parameters.

    Args:
        radius_q: radius in quarter pixels; angle_q: angle in ANGLE_STEP_DEG steps;
        off_qx, off_qy: sub-pixel offset of the centre in quarter pixels (0..3).

    Returns:
        coverage: float32 [S, S, 1] in [0, 1], the anti-aliased shape;
        shade: float32 [S, S, 1], coverage times the brightness of the object's colour (1 in the
        fill, 0.55 on a 1.3 px outline). A pixel becomes ``bg * (1 - a*coverage) + a*shade*colour``
        for opacity a. S = 2 * ceil(radius) + 4.
    """
    radius_px = radius_q / 4.0
    size = 2 * int(np.ceil(radius_px)) + 4
    angle = angle_q * ANGLE_STEP_DEG
    ox, oy = off_qx / 4.0, off_qy / 4.0
    full = _draw_mask(shape, radius_px, angle, ox, oy, size)
    inner = np.minimum(_draw_mask(shape, max(radius_px - 1.3, 0.5), angle, ox, oy, size), full)
    shade = inner + 0.55 * (full - inner)
    return full[..., None], shade[..., None]


@functools.lru_cache(maxsize=64)
def background(kind: str, seed: int, tint: tuple[float, float, float], size: int) -> np.ndarray:
    """Static background, float32 [size, size, 3] in 0-255."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3), np.float32)
    if kind == "grey room":
        img[:] = 118
        img[yy >= 0.72] = 82  # floor
        img[(yy >= 0.715) & (yy < 0.73)] = 60
    elif kind == "grass field":
        img[:] = (150, 195, 235)
        grass = yy >= 0.3
        stripe = ((xx * 8 + yy * 3) % 1.0) < 0.5
        img[grass] = (38, 96, 44)
        img[grass & stripe] = (46, 110, 50)
    elif kind == "night sky":
        img[:] = (14, 18, 48)
        stars = rng.random((size, size)) < 0.008
        img[stars] = (235, 235, 210)
    elif kind == "sandy beach":
        img[:] = (196, 178, 128)
        img[yy < 0.25] = (60, 140, 180)
        img[(yy >= 0.25) & (yy < 0.28)] = (235, 235, 225)
    elif kind == "checkered floor":
        tile = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2).astype(bool)
        img[:] = 78
        img[tile] = 132
    elif kind == "blue sky":
        top, bottom = np.array([95, 145, 215], np.float32), np.array([200, 225, 245], np.float32)
        img[:] = top + (bottom - top) * yy[..., None]
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.clip(img * np.asarray(tint, np.float32), 0, 255)


@dataclass
class Track:
    """Per-frame state of one object. All arrays are [n_frames]; positions normalised."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    angle_deg: np.ndarray
    alpha: np.ndarray
    hue_turns: np.ndarray  # colour rotation in turns (0 = own colour)


def _progress(ev: EventSpec, t: np.ndarray) -> np.ndarray:
    return np.clip((t - ev.start_sec) / max(ev.end_sec - ev.start_sec, 1e-6), 0.0, 1.0)


def object_tracks(scene: SceneSpec, times_sec: np.ndarray) -> list[Track]:
    """Evaluate every object's state at the given times (seconds), from its events."""
    tracks = []
    for idx, obj in enumerate(scene.objects):
        n = len(times_sec)
        tr = Track(np.full(n, obj.x), np.full(n, obj.y), np.ones(n), np.zeros(n), np.ones(n), np.zeros(n))
        for ev in (e for e in scene.events if e.obj == idx):
            u = _progress(ev, times_sec)
            inside = (times_sec >= ev.start_sec) & (times_sec <= ev.end_sec)
            phase = ev.cycles * u  # whole cycles over the event: state is unchanged at its end
            a = ev.action
            if a in ("slide_left", "slide_right"):
                tr.x += ev.amount * u
            elif a in ("fall", "rise"):
                tr.y += ev.amount * (u**2 if a == "fall" else u)
            elif a in ("grow", "shrink"):
                tr.scale *= ev.amount**u
            elif a == "appear":
                tr.alpha *= np.where(times_sec < ev.start_sec, 0.0, u)
            elif a == "disappear":
                tr.alpha *= 1.0 - u
            elif a == "bounce":
                tr.y -= BOUNCE_HEIGHT * np.abs(np.sin(np.pi * phase)) * inside
            elif a == "jump":
                hop = np.clip((phase % 1.0) / 0.45, 0.0, 1.0)  # airborne in the first 45% of a cycle
                tr.y -= JUMP_HEIGHT * np.sin(np.pi * hop) * inside
            elif a == "spin":
                tr.angle_deg += 360.0 * ev.direction * phase
            elif a == "shake":
                tr.x += SHAKE_AMPLITUDE * np.sin(2 * np.pi * phase) * inside
            elif a == "circle":
                theta = 2 * np.pi * phase
                tr.x += CIRCLE_RADIUS * (np.cos(theta) - 1.0) * inside
                tr.y += CIRCLE_RADIUS * ev.direction * np.sin(theta) * inside
            elif a == "blink":
                tr.alpha *= np.where(inside & ((phase % 1.0) >= 0.5), 0.0, 1.0)
            elif a == "flash":
                tr.hue_turns += phase * inside
            else:
                raise ValueError(f"unknown action {a!r}")
        tracks.append(tr)
    return tracks


def _rotate_hue(rgb: np.ndarray, turns: float) -> np.ndarray:
    """Rotate a colour around the grey axis (Rodrigues rotation in RGB space)."""
    if turns % 1.0 == 0.0:
        return rgb
    a = 2 * np.pi * turns
    k = np.ones(3) / np.sqrt(3.0)
    v = rgb.astype(np.float64)
    out = v * np.cos(a) + np.cross(k, v) * np.sin(a) + k * np.dot(k, v) * (1 - np.cos(a))
    return np.clip(out, 0, 255)


def _paste(frame: np.ndarray, obj_shape: str, colour: np.ndarray, cx: float, cy: float, radius_px: float, angle: float, alpha: float) -> None:
    """Blend one sprite into a uint8 [H, W, 3] frame in place (centre cx, cy in pixels)."""
    # quantise to quarter pixels so that sprites come from the cache
    qx, qy = int(np.floor(cx * 4)), int(np.floor(cy * 4))
    ix, iy = qx // 4, qy // 4
    n_angles = int(360 / ANGLE_STEP_DEG)
    cov, shade = sprite(obj_shape, max(int(round(radius_px * 4)), 4), int(round(angle / ANGLE_STEP_DEG)) % n_angles, qx % 4, qy % 4)
    size = cov.shape[0]
    x0, y0 = ix - size // 2, iy - size // 2
    h, w = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    sy, sx = slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)
    region = frame[fy0:fy1, fx0:fx1]
    blended = region * (1.0 - alpha * cov[sy, sx]) + (alpha * shade[sy, sx]) * colour
    region[:] = (blended + 0.5).astype(np.uint8)


def render_frames(
    scene: SceneSpec,
    frame_size: int,
    fps: float,
    first: int,
    count: int,
    only_objects: list[int] | None = None,
) -> np.ndarray:
    """Render frames ``first .. first + count - 1``.

    Args:
        scene: the scene.
        frame_size: frame height = width in pixels.
        fps: frames per second (frame i shows t = i / fps).
        first, count: frame range.
        only_objects: draw only these object indices (None: all), used by tests.

    Returns:
        uint8 [count, frame_size, frame_size, 3].
    """
    if count < 0 or first < 0:
        raise ValueError(f"frame range must be non-negative, found first={first}, count={count}")
    times = (first + np.arange(count)) / fps
    tracks = object_tracks(scene, times)
    bg = background(scene.background, scene.background_seed, tuple(scene.tint), frame_size)
    out = np.empty((count, frame_size, frame_size, 3), np.uint8)
    out[:] = (bg + 0.5).astype(np.uint8)
    draw = [i for i in range(len(scene.objects)) if only_objects is None or i in only_objects]
    base_colours = [np.asarray(COLOURS[o.colour], np.float64) for o in scene.objects]
    # frames where no drawn object changes are copies of the previous one
    state = np.stack([np.stack([t.x, t.y, t.scale, t.angle_deg, t.alpha, t.hue_turns]) for t in (tracks[i] for i in draw)]) if draw else np.zeros((0, 6, count))
    still = np.zeros(count, bool)
    still[1:] = np.all(state[:, :, 1:] == state[:, :, :-1], axis=(0, 1))
    for f in range(count):
        if still[f]:
            out[f] = out[f - 1]
            continue
        frame = out[f]
        for i in draw:
            tr, obj = tracks[i], scene.objects[i]
            if tr.alpha[f] <= 0.0:
                continue
            colour = _rotate_hue(base_colours[i], round(float(tr.hue_turns[f]) * 64) / 64).astype(np.float32)
            _paste(frame, obj.shape, colour, tr.x[f] * frame_size, tr.y[f] * frame_size,
                   obj.radius * tr.scale[f] * frame_size, float(tr.angle_deg[f]), float(tr.alpha[f]))
    return out
