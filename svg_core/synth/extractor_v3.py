"""World v3 video features: per-colour object slots that bind what an object is to what it does.

The v2 extractor (``extractor.py``) pooled motion over the whole frame, so "the blue ring bounces
while the red box spins" and its swap gave the same motion values. Here every palette colour owns a
slot, and each slot describes only the pixels of that colour (:func:`slot_labels`): how much of it
is visible, where it is and how it moves, which global motion field it follows (translation,
rotation, scaling), and its outline's shape. Objects of one scene never share a colour
(``scene.py``, generator 2), so a slot is one object, and its action, shape and size are read in
the same rows. Pixels only: never the scene description.

Per clip of 8 frames, on 2 x 2 box-filtered frames (64 x 64 for 128 x 128 video):

| block | dims | what |
|---|---|---|
| S slots | 7 x 40 | per palette colour: visibility (5), centroid path (11), motion field (12), brightness (1), shape (11) |
| A appearance | 192 | RGB means over an 8 x 8 grid, averaged over the clip (as v2) |
| E motion profile | 7 | sqrt of the mean absolute difference of each consecutive frame pair (as v2) |
| F colour | 18 | per-channel mean and std at the first, middle and last frame (as v2) |
| G object pixels | 3 | share of object-coloured pixels: mean, std, last minus first |

The 500 raw values are centred and mixed by the same fixed random orthogonal 500 x 500 matrix as
v2 (``extractor.mixing_matrix``), still 500-d in the C3D layout: float32 [T, 500], T = n_frames // 8.
"""

from __future__ import annotations

import numpy as np

from svg_core.synth import extractor as v2
from svg_core.synth.scene import COLOURS

EXTRACTOR_NAME = "synth-pixels-v3"
CLIP_FRAMES = v2.CLIP_FRAMES
FEATURE_DIM = v2.FEATURE_DIM
SLOT_DIM = 40
N_SLOTS = len(COLOURS)
RAW_DIM = N_SLOTS * SLOT_DIM + 192 + 7 + 18 + 3
MIN_CHROMA = 0.36  # max - min channel (0-1): palette fills 0.49-0.86, tinted grass and sand at most 0.34
COLOUR_TOL = 0.16  # distance in max-normalised RGB to a palette colour (shading-invariant)
N_ANGLE_BINS = 16
# palette colours divided by their largest channel: a shaded pixel (shade x colour) keeps them
PALETTE = np.array([np.asarray(c, np.float32) / max(c) for c in COLOURS.values()], np.float32)  # [K, 3]
assert RAW_DIM == FEATURE_DIM


def describe() -> dict:
    """What the manifest records about the extractor."""
    return {
        "name": EXTRACTOR_NAME,
        "input": "rendered RGB frames only (never the scene description); a pixel's slot is the palette colour "
        f"within {COLOUR_TOL} of its max-normalised RGB when its chroma exceeds {MIN_CHROMA}",
        "clip_frames": CLIP_FRAMES,
        "dim": FEATURE_DIM,
        "blocks": f"S {N_SLOTS} colour slots x {SLOT_DIM} (visibility, centroid path, motion field, brightness, "
        "shape), A 8x8 RGB means (192), E per-pair motion profile (7), F per-channel mean/std at 3 frames (18), "
        "G object-pixel share (3)",
        "slot_colours": list(COLOURS),
        "mixing": f"fixed random orthogonal 500x500 matrix, numpy default_rng({v2.MIXING_SEED}) + QR (as v2)",
    }


def slot_labels(x: np.ndarray) -> np.ndarray:
    """Which slot each pixel belongs to: the palette colour it shows, if any.

    Objects are filled with saturated palette colours (a 0.55-shaded outline), backgrounds are
    dull (grass, sand, night sky) or far from every palette hue (sea, sky). A pixel is given a
    slot when its chroma (max - min channel) exceeds MIN_CHROMA and its max-normalised RGB, which
    shading leaves unchanged, lies within COLOUR_TOL of a palette colour. A background model was
    tried first and dropped: a per-pixel median over the video swallows objects that stay still.

    This float form is the definition; the extractor calls :func:`slot_labels_of_codes`, which
    gives the same labels from integer codes and is tested against it.

    Args:
        x: float32 [..., h, w, 3] in [0, 1].

    Returns:
        int8 [..., h, w]: the slot (palette colour index), or -1.
    """
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    peak = np.maximum(np.maximum(r, g), b)  # elementwise: a reduction over a last axis of 3 is far slower
    where = np.nonzero(peak - np.minimum(np.minimum(r, g), b) > MIN_CHROMA)
    return _nearest_palette(peak.shape, where, x[where] / peak[where][:, None])


def slot_labels_of_codes(codes: np.ndarray, levels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """:func:`slot_labels` of ``levels[codes]``, identical to the bit, without making the float frames.

    The build labels every pixel of every frame, and float max / min / compare over whole frames
    was the largest cost of the extractor; here they run on the integer codes (block sums), and
    the chroma test becomes ``peak >= thresholds[min]`` (:func:`chroma_thresholds`, exact because
    the float difference grows with the peak). Only the candidate pixels are turned into floats.

    Args:
        codes: uint8 or uint16 [..., h, w, 3], indices into ``levels``.
        levels: float32 [L], increasing: the value of each code.
        thresholds: uint16 [L] from ``chroma_thresholds(levels)``.

    Returns:
        int8 [..., h, w], as :func:`slot_labels`.
    """
    r, g, b = codes[..., 0], codes[..., 1], codes[..., 2]
    peak = np.maximum(np.maximum(r, g), b)
    where = np.nonzero(peak >= thresholds[np.minimum(np.minimum(r, g), b)])
    return _nearest_palette(peak.shape, where, levels[codes[where]] / levels[peak[where]][:, None])


def chroma_thresholds(levels: np.ndarray) -> np.ndarray:
    """Per min-channel code m, the smallest peak code p with ``levels[p] - levels[m] > MIN_CHROMA``
    in float32, as :func:`slot_labels` computes it (len(levels) where none): float32 [L] -> uint16 [L]."""
    above = (levels[:, None] - levels[None, :]) > MIN_CHROMA  # [p, m]
    return np.where(above.any(axis=0), above.argmax(axis=0), len(levels)).astype(np.uint16)


def _nearest_palette(shape: tuple, where: tuple, pix: np.ndarray) -> np.ndarray:
    """Labels of shape ``shape``: the palette colour within COLOUR_TOL of each candidate's
    max-normalised RGB ``pix`` float32 [m, 3] at ``where``, -1 elsewhere."""
    labels = np.full(shape, -1, np.int8)
    d2 = ((pix[:, None, :] - PALETTE) ** 2).sum(axis=-1)  # [m, K]
    k = d2.argmin(axis=-1)
    ok = d2[np.arange(len(k)), k] < COLOUR_TOL**2
    labels[tuple(w[ok] for w in where)] = k[ok]
    return labels


# the float value of each code, as the extractor has always made them: a 2 x 2 block sum (v2._pool)
# and a frame's own uint8 levels divided by 255
_LEVELS_2X2 = v2.pool_scale(np.arange(4 * 255 + 1, dtype=np.uint16), 4)
_LEVELS_FRAME = np.arange(256, dtype=np.float32) / 255.0
_THRESHOLDS_2X2 = chroma_thresholds(_LEVELS_2X2)
_THRESHOLDS_FRAME = chroma_thresholds(_LEVELS_FRAME)


def _dilate_labels(labels: np.ndarray) -> np.ndarray:
    """Grow each labelled region by one pixel (3 x 3) into unlabelled pixels over the last two axes.

    Written here: a label-preserving dilation is four shifted assignments, and scipy is not a
    dependency of the benchmark build.
    """
    out = labels.copy()
    for axis in (-1, -2):
        src = out.copy()
        for shift in (1, -1):
            moved = np.roll(src, shift, axis=axis)
            edge = [slice(None)] * moved.ndim
            edge[axis] = 0 if shift == 1 else -1
            moved[tuple(edge)] = -1  # no wrap-around
            fill = (out < 0) & (moved >= 0)
            out[fill] = moved[fill]
    return out


def _sums(keys: np.ndarray, size: int, *weights: np.ndarray) -> list[np.ndarray]:
    """Per-key counts and weighted sums (np.bincount), keys in [0, size)."""
    return [np.bincount(keys, minlength=size).astype(np.float64)] + [
        np.bincount(keys, weights=wt, minlength=size) for wt in weights]


def _visibility_and_path(labels: np.ndarray) -> np.ndarray:
    """Visibility (5) and centroid-path (11) values per slot: labels int8 [n, 8, h, w] -> [n, K, 16]."""
    n, t, h, w = labels.shape
    ci, ti, yi, xi = np.nonzero(labels >= 0)
    keys = (ci * t + ti) * N_SLOTS + labels[ci, ti, yi, xi]
    px, sx, sy = (a.reshape(n, t, N_SLOTS) for a in _sums(keys, n * t * N_SLOTS, (xi + 0.5) / w, (yi + 0.5) / h))
    sa = 4.0 * np.sqrt(px / (h * w))
    present = (px >= 6).astype(np.float64)
    cx, cy = sx / np.maximum(px, 1.0), sy / np.maximum(px, 1.0)
    n_present = present.sum(axis=1)
    any_present = n_present > 0
    both = present[:, 1:] * present[:, :-1]
    vx, vy = np.diff(cx, axis=1) * both, np.diff(cy, axis=1) * both
    n_both = np.maximum(both.sum(axis=1), 1.0)

    def reversals(v):
        big = np.abs(v) > 0.004
        flips = (np.sign(v[:, 1:]) * np.sign(v[:, :-1]) < 0) & big[:, 1:] & big[:, :-1]
        return flips.sum(axis=1) / 6.0

    turn = (vx[:, :-1] * vy[:, 1:] - vy[:, :-1] * vx[:, 1:]).sum(axis=1)  # signed area swept: circling
    mean_pos = lambda c: np.where(any_present, 2.0 * ((c * present).sum(axis=1) / np.maximum(n_present, 1) - 0.5), 0.0)
    cols = [
        sa.mean(axis=1), 4.0 * sa.std(axis=1), 4.0 * (sa[:, -1] - sa[:, 0]),
        np.abs(np.diff(present, axis=1)).mean(axis=1) * 2.0,
        sa.min(axis=1) / (sa.max(axis=1) + 0.05),
        mean_pos(cx), mean_pos(cy),
        4.0 * vx.sum(axis=1), 4.0 * vy.sum(axis=1),
        20.0 * np.abs(vx).sum(axis=1) / n_both, 20.0 * np.abs(vy).sum(axis=1) / n_both,
        20.0 * vx.std(axis=1), 20.0 * vy.std(axis=1),
        reversals(vx), reversals(vy), np.tanh(400.0 * turn),
    ]
    return np.stack(cols, axis=-1)


def _slot_motion_field(labels: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Global motion fields fitted to each slot's pixels, as v2's ``_motion_field`` does per frame.

    For each consecutive frame pair and slot, brightness constancy d = -(u . grad) is solved by
    least squares over the slot's pixels in either frame (grown by one pixel) for translation in
    x and y, rotation and scaling about the slot's centroid; each coefficient's mean, mean absolute
    value and standard deviation over the 7 pairs make 12 values.

    Args:
        labels: int8 [n, 8, h, w] slot labels.
        grey: float32 [n, 8, h, w] grey levels (RGB sums of the frames).

    Returns:
        float32 [n, K, 12].
    """
    n, t, h, w = labels.shape
    mid = 0.5 * (grey[:, 1:] + grey[:, :-1])  # [n, 7, h, w]
    d = grey[:, 1:] - grey[:, :-1]
    pair = _dilate_labels(np.where(labels[:, 1:] >= 0, labels[:, 1:], labels[:, :-1]))
    ci, pi, yi, xi = np.nonzero(pair >= 0)
    keys = (ci * (t - 1) + pi) * N_SLOTS + pair[ci, pi, yi, xi]
    size = n * (t - 1) * N_SLOTS
    fx, fy = xi.astype(np.float64) / w, yi.astype(np.float64) / w
    cnt, sx, sy = _sums(keys, size, fx, fy)
    rx = fx - (sx / np.maximum(cnt, 1.0))[keys]
    ry = fy - (sy / np.maximum(cnt, 1.0))[keys]
    # central differences of the mid frame at the selected pixels (zero on the border)
    gx = np.where((xi > 0) & (xi < w - 1), 0.5 * (mid[ci, pi, yi, np.minimum(xi + 1, w - 1)] - mid[ci, pi, yi, np.maximum(xi - 1, 0)]), 0.0)
    gy = np.where((yi > 0) & (yi < h - 1), 0.5 * (mid[ci, pi, np.minimum(yi + 1, h - 1), xi] - mid[ci, pi, np.maximum(yi - 1, 0), xi]), 0.0)
    dd = d[ci, pi, yi, xi]
    basis = (gx, gy, -ry * gx + rx * gy, rx * gx + ry * gy)
    scale = (2.0, 2.0, 16.0, 16.0)  # pixels per frame at 64 px; radians per frame; relative scaling
    out = []
    for b, s in zip(basis, scale):
        _, num, den = _sums(keys, size, -b * dd, b * b)
        c = np.tanh(s * num / (den + 1e-3)).reshape(n, t - 1, N_SLOTS)
        out += [c.mean(axis=1), np.abs(c).mean(axis=1), c.std(axis=1)]
    return np.stack(out, axis=-1)


def _shape(labels: np.ndarray) -> np.ndarray:
    """Outline descriptors of each slot in one frame: labels int8 [n, H, W] -> float32 [n, K, 11].

    The radius of the outline in 16 angle bins around the centroid, r(theta): the magnitudes of
    its harmonics 1-6 over the mean radius (a triangle peaks at 3, a box, diamond or cross at 4,
    a star at 5, a ball or ring at none); the phase of harmonic 4 (box vs diamond; cos and sin,
    weighted by its magnitude); the fill of the circumscribed disc (cross and star low); the fill
    of the inner disc (a ring's hole); the size (square root of the area). Absent slots: zeros.
    """
    n, h, w = labels.shape
    k = N_SLOTS
    ci, yi, xi = np.nonzero(labels >= 0)
    key = ci * k + labels[ci, yi, xi]
    px, sx, sy = _sums(key, n * k, xi.astype(np.float64), yi.astype(np.float64))
    cx, cy = sx / np.maximum(px, 1.0), sy / np.maximum(px, 1.0)
    dx, dy = xi - cx[key], yi - cy[key]
    r = np.hypot(dx, dy) + 0.5
    theta_bin = ((np.arctan2(dy, dx) % (2 * np.pi)) / (2 * np.pi) * N_ANGLE_BINS).astype(np.int64) % N_ANGLE_BINS
    prof = np.zeros(n * k * N_ANGLE_BINS, np.float64)
    np.maximum.at(prof, key * N_ANGLE_BINS + theta_bin, r)
    prof = prof.reshape(n, k, N_ANGLE_BINS)
    rmax = prof.max(axis=-1).reshape(-1)
    spec = np.fft.rfft(prof, axis=-1)  # [n, K, 9]
    dc = np.maximum(np.abs(spec[..., 0]), 1e-3)
    harm = np.abs(spec[..., 1:7]) / dc[..., None] * 4.0
    h4 = spec[..., 4] / dc * 4.0
    inner_r = 0.35 * rmax
    inner_px = np.bincount(key, weights=(r < inner_r[key]).astype(np.float64), minlength=n * k)
    inner_fill = (inner_px / np.maximum(np.pi * inner_r**2, 1.0)).reshape(n, k)
    fill = (px / np.maximum(np.pi * rmax**2, 1.0)).reshape(n, k)
    size = (8.0 * np.sqrt(px / (h * w))).reshape(n, k)
    feats = np.concatenate([harm, h4.real[..., None], h4.imag[..., None], fill[..., None],
                            np.minimum(inner_fill, 1.5)[..., None], size[..., None]], axis=-1)
    return np.where((px.reshape(n, k) >= 12)[..., None], feats, 0.0).astype(np.float32)


def raw_clip_features(clips: np.ndarray) -> np.ndarray:
    """Unmixed features of clips.

    Args:
        clips: uint8 [n_clips, 8, H, W, 3], H and W divisible by 32.

    Returns:
        float32 [n_clips, RAW_DIM] (blocks S, A, E, F, G, see the module docstring).
    """
    return raw_clip_features_and_pooled(clips)[0]


def raw_clip_features_and_pooled(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`raw_clip_features` and the 4 x 4 box-filtered frames it read blocks A, E and F from.

    Returns:
        (float32 [n_clips, RAW_DIM], float32 [n_clips, 8, H / 4, W / 4, 3] in [0, 1]); the v4
        extractor reuses the pooled frames rather than filtering the clips a second time.
    """
    if clips.ndim != 5 or clips.shape[1] != CLIP_FRAMES or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(f"clips must be uint8 [n, {CLIP_FRAMES}, H, W, 3], found {clips.dtype} {clips.shape}")
    n, _, h, w, _ = clips.shape
    if h % 32 or w % 32:
        raise ValueError(f"frames must be HxW divisible by 32, found {h}x{w}")
    s2 = v2.pool_sums(clips.reshape(n * CLIP_FRAMES, h, w, 3), 2)  # uint16 2 x 2 sums, pooled again for x4
    x2 = v2.pool_scale(s2, 4).reshape(n, CLIP_FRAMES, h // 2, w // 2, 3)
    labels = slot_labels_of_codes(s2, _LEVELS_2X2, _THRESHOLDS_2X2).reshape(n, CLIP_FRAMES, h // 2, w // 2)
    grey = v2.channel_sum(x2)
    ci, ti, yi, xi = np.nonzero(labels >= 0)
    key = ci * N_SLOTS + labels[ci, ti, yi, xi]
    pix = x2[ci, ti, yi, xi]
    cnt, peak_sum = _sums(key, n * N_SLOTS, np.maximum(np.maximum(pix[:, 0], pix[:, 1]), pix[:, 2]))
    bright = (peak_sum / np.maximum(cnt, 1.0)).reshape(n, N_SLOTS)  # mean peak level of the slot's pixels
    shape = _shape(slot_labels_of_codes(clips[:, CLIP_FRAMES // 2], _LEVELS_FRAME, _THRESHOLDS_FRAME))
    slots = np.concatenate([_visibility_and_path(labels), _slot_motion_field(labels, grey), bright[..., None], shape],
                           axis=-1)
    # the v2 blocks A, E, F on 4 x 4 means
    x4 = v2.pool_scale(v2.pool_sums(s2, 2), 16).reshape(n, CLIP_FRAMES, h // 4, w // 4, 3)
    a = v2._grid_means(x4, v2.GRID).mean(axis=1).reshape(n, -1)
    e = 4.0 * np.sqrt(v2.channel_sum(np.abs(np.diff(x4, axis=1))).mean(axis=(2, 3)))
    picks = x4[:, [0, CLIP_FRAMES // 2, CLIP_FRAMES - 1]].reshape(n * 3, -1, 3)
    f = np.concatenate([picks.mean(axis=1), picks.std(axis=1)], axis=-1).reshape(n, -1)
    share = (labels >= 0).mean(axis=(2, 3))  # [n, 8] share of object-coloured pixels
    g = np.stack([4.0 * np.sqrt(share.mean(axis=1)), 8.0 * share.std(axis=1), 8.0 * (share[:, -1] - share[:, 0])], axis=1)
    return np.concatenate([slots.reshape(n, -1), a, e, f, g], axis=1).astype(np.float32), x4


def clip_features(clips: np.ndarray) -> np.ndarray:
    """The 500-d features: raw values, centred, mixed by the fixed orthogonal matrix. uint8 clips -> [n, 500]."""
    raw = raw_clip_features(clips).astype(np.float64) - 0.1  # fixed centring
    return (raw @ v2.mixing_matrix().T).astype(np.float32)


def video_features(frames: np.ndarray, clips_per_step: int = 16) -> np.ndarray:
    """Features of a frame array (trailing frames that do not fill a clip are dropped).

    Args:
        frames: uint8 [n_frames, H, W, 3].
        clips_per_step: clips processed at once (bounds the memory in use).

    Returns:
        float32 [n_frames // 8, 500].
    """
    n_clips = frames.shape[0] // CLIP_FRAMES
    if n_clips == 0:
        return np.zeros((0, FEATURE_DIM), np.float32)
    clips = frames[: n_clips * CLIP_FRAMES].reshape(n_clips, CLIP_FRAMES, *frames.shape[1:])
    return np.concatenate([clip_features(clips[i : i + clips_per_step]) for i in range(0, n_clips, clips_per_step)])


# The two-step interface that build.render_features uses (extractor_v4 needs the whole video to
# finish; this one's clips stand alone, so a chunk's features are final, joined as v2 joins them).
chunk_features = video_features
finish = v2.finish
