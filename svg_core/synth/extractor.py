"""The fixed 500-d video feature extractor of the synthetic benchmark (pixels only).

It stands in for ActivityNet's C3D features (fc7, PCA to 500-d, one vector per 8 frames). It
reads nothing but the rendered RGB frames; it never sees the scene description.

Per clip of ``CLIP_FRAMES = 8`` consecutive frames (frames ``8k .. 8k+7``; a trailing partial clip
is dropped, as C3D does), with pixels scaled to [0, 1], on box-filtered copies of the frames
(``x4``: 4x4 pixel means, 32 x 32 for 128 x 128 video; ``x2``: 2x2 means of the middle frame):

| block | dims | what |
|---|---|---|
| A appearance | 192 | RGB means over an 8 x 8 grid of cells, averaged over the clip |
| B change | 112 | last minus first frame: 8 x 8 grid of grey levels (64) and 4 x 4 grid of RGB (48), x 3 |
| C motion map | 64 | sqrt of the mean absolute frame difference (RGB summed) per 8 x 8 cell, x 2 |
| D moving colour | 27 | 3x3x3 RGB histogram of pixels weighted by how much they changed, normalised, x tanh(motion) |
| E motion profile | 7 | sqrt of the mean absolute difference of each consecutive frame pair, x 4 |
| F colour | 18 | per-channel mean and std at the first, middle and last frame |
| G edges | 64 | middle frame (x2): gradient-magnitude histogram over 4 orientations in a 4 x 4 grid, sqrt |
| H motion field | 16 | position-free motion statistics of the x4 grey frames (version 2, see ``_motion_field``) |

The 500 raw values (``RAW_DIM``) are centred by a fixed constant and mapped to 500 dimensions by the
first 500 columns (all of them) of a fixed random orthogonal 500 x 500 matrix (QR of a Gaussian matrix drawn
with ``MIXING_SEED``). Every output dimension mixes all blocks, so none can be read on its own,
while the map is an isometry: colour, shape (edge orientations and the appearance grid),
position and motion stay linearly recoverable by a learned model. Output: float32 [T, 500],
T = n_frames // 8.
"""

from __future__ import annotations

import functools

import numpy as np

CLIP_FRAMES = 8
GRID = 8
FEATURE_DIM = 500
RAW_DIM = 192 + 112 + 64 + 27 + 7 + 18 + 64 + 16
MIXING_SEED = 20220510
EXTRACTOR_NAME = "synth-pixels-v2"  # v1 (blocks A-G) carried no position-free motion direction
N_ORIENTATIONS = 4


@functools.lru_cache(maxsize=1)
def mixing_matrix() -> np.ndarray:
    """The fixed map [500, RAW_DIM] (float64, orthonormal columns) applied to the raw features."""
    gauss = np.random.default_rng(MIXING_SEED).standard_normal((FEATURE_DIM, FEATURE_DIM))
    q, r = np.linalg.qr(gauss)
    q = q * np.sign(np.diag(r))  # the sign fix makes the factorisation unique
    return q[:, :RAW_DIM]


def describe() -> dict:
    """What the manifest records about the extractor."""
    return {
        "name": EXTRACTOR_NAME,
        "input": "rendered RGB frames only (never the scene description)",
        "clip_frames": CLIP_FRAMES,
        "dim": FEATURE_DIM,
        "blocks": "A 8x8 RGB means (192), B last-minus-first 8x8 grey + 4x4 RGB (112), C 8x8 motion energy (64), "
        "D motion-weighted 3x3x3 colour histogram (27), E per-pair motion profile (7), "
        "F per-channel mean/std at 3 frames (18), G 4x4 grid x 4 edge orientations of the middle frame (64), "
        "H position-free motion field: translation, rotation, scaling, reversals, area, brightness (16)",
        "mixing": f"first {RAW_DIM} columns of a fixed random orthogonal 500x500 matrix, numpy default_rng({MIXING_SEED}) + QR",
    }


def _pool(frames: np.ndarray, k: int) -> np.ndarray:
    """k x k box filter: uint8 [N, H, W, 3] -> float32 [N, H/k, W/k, 3] in [0, 1]."""
    return pool_scale(pool_sums(frames, k), k * k)


def pool_sums(frames: np.ndarray, k: int) -> np.ndarray:
    """k x k block sums, exact in uint16: uint8 or uint16 [N, H, W, 3] -> uint16 [N, H/k, W/k, 3].

    Pooling uint16 sums again (k = 2 twice) gives the sums of k = 4 exactly, so a caller that
    needs both reads the frames once. Inputs must keep the sums below 65536.
    """
    n, h, w, c = frames.shape
    # sums of strided slices: several times faster than a numpy reduction over a middle axis,
    # and integer adds are faster than float ones
    rows = frames.reshape(n, h // k, k, w * c)
    acc = rows[:, :, 0].astype(np.uint16)
    for i in range(1, k):
        acc += rows[:, :, i]
    cols = acc.reshape(n, h // k, w // k, k, c)
    out = cols[:, :, :, 0].copy()
    for i in range(1, k):
        out += cols[:, :, :, i]
    return out


def pool_scale(sums: np.ndarray, n_pixels: int) -> np.ndarray:
    """Block sums of ``n_pixels`` uint8 values -> float32 means in [0, 1] (same shape)."""
    return sums.astype(np.float32) * np.float32(1.0 / (n_pixels * 255.0))


def channel_sum(x: np.ndarray) -> np.ndarray:
    """``x.sum(axis=-1)`` over a last axis of 3, identical to the bit: [..., 3] -> [...].

    Written out as two adds in the order numpy sums a short axis: its reduction over a last axis
    of length 3 is about 20 times slower.
    """
    return x[..., 0] + x[..., 1] + x[..., 2]


def _grid_means(x: np.ndarray, g: int) -> np.ndarray:
    """[..., H, W, C] -> [..., g, g, C] cell means."""
    *lead, h, w, c = x.shape
    rows = x.reshape(*lead, g, h // g, w, c).mean(axis=-3)  # [..., g, W, C]
    return rows.reshape(*lead, g, g, w // g, c).mean(axis=-2)


_BIN_OF_LEVEL = np.minimum(np.arange(256) * 3 // 256, 2).astype(np.int64)  # 3 bins per channel


def _edge_histogram(mid: np.ndarray) -> np.ndarray:
    """float32 [n, H, W, 3] -> [n, 64]: 4 x 4 grid x 4 orientations of gradient magnitude."""
    n, h, w, _ = mid.shape
    grey = channel_sum(mid)
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
    gy[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
    mag = np.hypot(gx, gy)
    orient = np.floor((np.arctan2(gy, gx) % np.pi) / (np.pi / N_ORIENTATIONS) + 0.5).astype(np.int64) % N_ORIENTATIONS
    cell = (np.arange(h)[:, None] * 4 // h) * 4 + (np.arange(w)[None, :] * 4 // w)  # [H, W] in 0..15
    idx = (np.arange(n)[:, None, None] * 16 + cell[None]) * N_ORIENTATIONS + orient
    hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=n * 16 * N_ORIENTATIONS)
    return np.sqrt(hist.reshape(n, -1) / (h * w / 16.0))


def _motion_field(grey: np.ndarray) -> np.ndarray:
    """Position-free motion statistics of clips, the stand-in for C3D's action selectivity.

    For each consecutive frame pair, the brightness-constancy equation d = -(u . grad) is solved
    in the least-squares sense over the pixels that changed, for four global motion fields around
    the centroid of the change: translation along x and along y, rotation and scaling (the
    Lucas-Kanade idea applied to whole-frame parametric models; written here because the whole
    computation is a few weighted sums, not worth an optical-flow dependency). The clip's 16
    values are, for each of the 4 coefficients, its mean, mean absolute value and standard
    deviation over the 7 pairs (12); the share of pairs where the x and the y translation reverse
    sign (2); the share of pixels that changed (1); the mean signed brightness change (1). None
    depends on where the moving object is, so "bounce" (vertical), "shake" (horizontal), "spin"
    (rotation) and "grow" (scaling) differ in these values wherever they happen.

    Args:
        grey: float32 [n, 8, H, W] grey levels in [0, 3] (RGB sums of the x4 frames).

    Returns:
        float32 [n, 16].
    """
    n, t, h, w = grey.shape
    mid = 0.5 * (grey[:, 1:] + grey[:, :-1])  # [n, 7, H, W]
    d = grey[:, 1:] - grey[:, :-1]
    gx = np.zeros_like(mid)
    gy = np.zeros_like(mid)
    gx[..., 1:-1] = 0.5 * (mid[..., 2:] - mid[..., :-2])
    gy[..., 1:-1, :] = 0.5 * (mid[..., 2:, :] - mid[..., :-2, :])
    moving = (np.abs(d) > 0.02).astype(np.float32)
    area = moving.sum(axis=(2, 3))  # [n, 7]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / w  # normalised coordinates
    wsum = np.maximum(area, 1.0)
    cx = (moving * xx).sum(axis=(2, 3)) / wsum
    cy = (moving * yy).sum(axis=(2, 3)) / wsum
    rx = xx - cx[..., None, None]
    ry = yy - cy[..., None, None]
    # basis fields u_k at each pixel; their projection on the gradient: b_k = u_k . grad
    basis = (gx, gy, -ry * gx + rx * gy, rx * gx + ry * gy)
    coefs = []
    for b in basis:
        num = -(moving * b * d).sum(axis=(2, 3))
        den = (moving * b * b).sum(axis=(2, 3)) + 1e-3
        coefs.append(num / den)  # [n, 7]; pixels per frame (translation), radians per frame (rotation)...
    # fixed scales bring the typical magnitudes near those of the other blocks
    scale = (1.0, 1.0, 8.0, 8.0)
    out = []
    for c, k in zip(coefs, scale):
        c = np.tanh(k * c)
        out += [c.mean(axis=1), np.abs(c).mean(axis=1), c.std(axis=1)]
    for c in coefs[:2]:
        flips = (np.sign(c[:, 1:]) * np.sign(c[:, :-1]) < 0) & (np.abs(c[:, 1:]) > 0.05) & (np.abs(c[:, :-1]) > 0.05)
        out.append(flips.mean(axis=1))
    out.append(np.sqrt(area.mean(axis=1) / (h * w)))
    out.append(np.tanh(10.0 * d.mean(axis=(1, 2, 3))))
    return np.stack(out, axis=1).astype(np.float32)


def raw_clip_features(clips: np.ndarray) -> np.ndarray:
    """Unmixed features of clips.

    Args:
        clips: uint8 [n_clips, 8, H, W, 3] with H, W divisible by 32.

    Returns:
        float32 [n_clips, RAW_DIM] (blocks A-H, see module docstring).
    """
    if clips.ndim != 5 or clips.shape[1] != CLIP_FRAMES or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(f"clips must be uint8 [n, {CLIP_FRAMES}, H, W, 3], found {clips.dtype} {clips.shape}")
    n, _, h, w, _ = clips.shape
    if h % 32 or w % 32:
        raise ValueError(f"frame size must be divisible by 32, found {h}x{w}")
    x = _pool(clips.reshape(n * CLIP_FRAMES, h, w, 3), 4).reshape(n, CLIP_FRAMES, h // 4, w // 4, 3)
    grid = _grid_means(x, GRID)  # [n, 8, G, G, 3]
    a = grid.mean(axis=1).reshape(n, -1)
    change = grid[:, -1] - grid[:, 0]  # [n, G, G, 3]
    b_grey = change.mean(axis=-1).reshape(n, -1)
    b_rgb = _grid_means(change, 4).reshape(n, -1)
    b = 3.0 * np.concatenate([b_grey, b_rgb], axis=1)
    diff = channel_sum(np.abs(np.diff(x, axis=1)))  # [n, 7, h/4, w/4]
    c = 2.0 * np.sqrt(_grid_means(diff[..., None], GRID).mean(axis=1)).reshape(n, -1)
    e = 4.0 * np.sqrt(diff.mean(axis=(2, 3)))
    # colour of what moves: histogram of the later frame of each pair, weighted by the change
    bins = _BIN_OF_LEVEL[(x[:, 1:] * 255.0).astype(np.uint8)]  # [n, 7, h/4, w/4, 3]
    idx = bins[..., 0] * 9 + bins[..., 1] * 3 + bins[..., 2] + 27 * np.arange(n)[:, None, None, None]
    hist = np.bincount(idx.ravel(), weights=diff.ravel(), minlength=27 * n).reshape(n, 27)
    total = hist.sum(axis=1, keepdims=True)
    d = hist / np.maximum(total, 1e-6) * np.tanh(total / 10.0)
    picks = x[:, [0, CLIP_FRAMES // 2, CLIP_FRAMES - 1]].reshape(n * 3, -1, 3)
    f = np.concatenate([picks.mean(axis=1), picks.std(axis=1)], axis=-1).reshape(n, -1)
    g = _edge_histogram(_pool(np.ascontiguousarray(clips[:, CLIP_FRAMES // 2]), 2))
    hm = _motion_field(channel_sum(x))
    return np.concatenate([a, b, c, d, e, f, g, hm], axis=1).astype(np.float32)


def clip_features(clips: np.ndarray) -> np.ndarray:
    """The 500-d features of clips: raw blocks, centred, mixed by the fixed orthogonal matrix.

    Args:
        clips: uint8 [n_clips, 8, H, W, 3].

    Returns:
        float32 [n_clips, 500].
    """
    raw = raw_clip_features(clips).astype(np.float64) - 0.25  # fixed centring (pixel means ~0.3-0.5)
    return (raw @ mixing_matrix().T).astype(np.float32)


def video_features(frames: np.ndarray, clips_per_step: int = 16) -> np.ndarray:
    """Features of a whole frame array.

    Args:
        frames: uint8 [n_frames, H, W, 3].
        clips_per_step: clips processed at once (bounds the memory in use).

    Returns:
        float32 [n_frames // 8, 500].
    """
    n_clips = frames.shape[0] // CLIP_FRAMES
    clips = frames[: n_clips * CLIP_FRAMES].reshape(n_clips, CLIP_FRAMES, *frames.shape[1:])
    steps = [clip_features(clips[i : i + clips_per_step]) for i in range(0, n_clips, clips_per_step)]
    return np.concatenate(steps) if steps else np.zeros((0, FEATURE_DIM), np.float32)


# The two-step interface that build.render_features uses (extractor_v4 needs the whole video to
# finish; this one's clips stand alone, so a chunk's features are final).
chunk_features = video_features


def finish(parts: list[np.ndarray]) -> np.ndarray:
    """Join the per-chunk features of one video: list of [t_i, 500] -> [T, 500]."""
    return np.concatenate(parts) if parts else np.zeros((0, FEATURE_DIM), np.float32)
