"""World v4 video features: v3's colour slots plus each slot's change over a few seconds.

On world 3 the text model reading the true caption told the moments of slow state actions apart
in only 36-57 % of within-video pairs (grow, shrink, slide right, disappear; periodic actions
85-92 %; ``results/v3/discrimination_text_nv128_s0.txt``). A state action lasts up to 20 s and
changes its object by a fixed amount, so within one 1-second clip a slide moves about a pixel and
a growth scales by 2 %: the v3 slot block, which looks inside one clip only, barely sees it. Like
an I3D that reads 64 frames around a clip, this extractor adds, per slot, the change of the
slot's size, centroid and brightness between the clips ``w`` before and ``w`` after, for
``w`` = 1, 3 and 6 clips (2, 6 and 12 s spans): a growing, sliding or fading object changes
steadily across such spans, a periodic one returns to where it was. Pixels only, never the scene.

Per clip of 8 frames:

| block | dims | what |
|---|---|---|
| S slots | 7 x 40 | the v3 slot block (``extractor_v3``) |
| C change | 7 x 12 | per slot, spans of 2, 6, 12 s: change of size, centroid x, centroid y, brightness |
| A appearance | 108 | RGB means over a 6 x 6 grid, averaged over the clip (v3: 8 x 8) |
| E, F, G | 28 | as v3 |

The change block needs the clips around a clip, so a video is extracted in two steps: per chunk
of frames, :func:`chunk_features` gives the raw per-clip values; :func:`finish` joins the chunks,
adds the change block and mixes the 500 values by the fixed orthogonal matrix of v2. For a frame
array at once, :func:`video_features` does both. Output float32 [T, 500], T = n_frames // 8.
"""

from __future__ import annotations

import numpy as np

from svg_core.synth import extractor as v2
from svg_core.synth import extractor_v3 as v3

EXTRACTOR_NAME = "synth-pixels-v4"
CLIP_FRAMES = v2.CLIP_FRAMES
FEATURE_DIM = v2.FEATURE_DIM
N_SLOTS = v3.N_SLOTS
GRID = 6
SPANS_CLIPS = (1, 3, 6)  # half-spans: clip k compares clips k + w and k - w (clamped to the video)
# columns of the v3 slot block read by the change block: size (sqrt area), centroid x, y, brightness
_SIZE, _CX, _CY, _BRIGHT = 0, 5, 6, 28
CHANGE_SCALE = np.array([3.0, 4.0, 4.0, 3.0])  # brings a full grow / slide / fade near 1
CHANGE_DIM = len(SPANS_CLIPS) * 4
LOCAL_DIM = N_SLOTS * v3.SLOT_DIM + 3 * GRID * GRID + 7 + 18 + 3  # what one chunk yields per clip
RAW_DIM = LOCAL_DIM + N_SLOTS * CHANGE_DIM
assert RAW_DIM == FEATURE_DIM


def describe() -> dict:
    """What the manifest records about the extractor."""
    return {
        "name": EXTRACTOR_NAME,
        "input": "rendered RGB frames only (never the scene description); slots as synth-pixels-v3",
        "clip_frames": CLIP_FRAMES,
        "dim": FEATURE_DIM,
        "blocks": f"S {N_SLOTS} colour slots x {v3.SLOT_DIM} (as v3), C per slot change of size, centroid and "
        f"brightness over spans of {[2 * w for w in SPANS_CLIPS]} clips ({CHANGE_DIM}), A {GRID}x{GRID} RGB means "
        f"({3 * GRID * GRID}), E per-pair motion profile (7), F per-channel mean/std at 3 frames (18), "
        "G object-pixel share (3)",
        "slot_colours": v3.describe()["slot_colours"],
        "mixing": f"fixed random orthogonal 500x500 matrix, numpy default_rng({v2.MIXING_SEED}) + QR (as v2)",
    }


def chunk_features(frames: np.ndarray, clips_per_step: int = 16) -> np.ndarray:
    """Raw per-clip values of a run of frames (trailing frames that do not fill a clip are dropped).

    Args:
        frames: uint8 [n_frames, H, W, 3], H and W divisible by 32.
        clips_per_step: clips processed at once (bounds the memory in use).

    Returns:
        float32 [n_frames // 8, LOCAL_DIM]: blocks S, A (6 x 6), E, F, G.
    """
    n_clips = frames.shape[0] // CLIP_FRAMES
    if n_clips == 0:
        return np.zeros((0, LOCAL_DIM), np.float32)
    clips = frames[: n_clips * CLIP_FRAMES].reshape(n_clips, CLIP_FRAMES, *frames.shape[1:])
    return np.concatenate([_local(clips[i: i + clips_per_step]) for i in range(0, n_clips, clips_per_step)])


def _local(clips: np.ndarray) -> np.ndarray:
    raw, x4 = v3.raw_clip_features_and_pooled(clips)  # [n, 500]: S 280, A 192, E 7, F 18, G 3; [n, 8, h/4, w/4, 3]
    n, h = clips.shape[0], clips.shape[2]
    s_dim = N_SLOTS * v3.SLOT_DIM
    side = (h // 4) // GRID * GRID  # the central square that a 6 x 6 grid divides
    top = (h // 4 - side) // 2
    crop = x4[:, :, top: top + side, top: top + side]
    a = v2._grid_means(crop, GRID).mean(axis=1).reshape(n, -1)
    return np.concatenate([raw[:, :s_dim], a, raw[:, s_dim + 192:]], axis=1).astype(np.float32)


def change_block(local: np.ndarray) -> np.ndarray:
    """Per slot change of size, centroid and brightness across spans around each clip.

    Args:
        local: float32 [T, LOCAL_DIM] from :func:`chunk_features` over a whole video.

    Returns:
        float32 [T, N_SLOTS * CHANGE_DIM]; a centroid change is 0 where the slot is absent at
        either end of the span.
    """
    t = len(local)
    slots = local[:, : N_SLOTS * v3.SLOT_DIM].reshape(t, N_SLOTS, v3.SLOT_DIM)
    vals = slots[..., [_SIZE, _CX, _CY, _BRIGHT]].astype(np.float64)  # [T, K, 4]
    present = slots[..., _SIZE] > 0
    idx = np.arange(t)
    out = []
    for w in SPANS_CLIPS:
        hi, lo = np.minimum(idx + w, t - 1), np.maximum(idx - w, 0)
        d = vals[hi] - vals[lo]
        both = present[hi] & present[lo]
        d[..., 1:3] *= both[..., None]
        out.append(np.tanh(d * CHANGE_SCALE))
    return np.concatenate(out, axis=-1).reshape(t, -1).astype(np.float32)


def finish(parts: list[np.ndarray]) -> np.ndarray:
    """Join the chunks of one video, add the change block and mix: list of [t_i, LOCAL_DIM] -> [T, 500]."""
    local = np.concatenate(parts) if parts else np.zeros((0, LOCAL_DIM), np.float32)
    if len(local) == 0:
        return np.zeros((0, FEATURE_DIM), np.float32)
    raw = np.concatenate([local, change_block(local)], axis=1).astype(np.float64) - 0.1  # fixed centring
    return (raw @ v2.mixing_matrix().T).astype(np.float32)


def video_features(frames: np.ndarray, clips_per_step: int = 16) -> np.ndarray:
    """The 500-d features of a whole frame array: uint8 [n_frames, H, W, 3] -> float32 [n_frames // 8, 500]."""
    return finish([chunk_features(frames, clips_per_step)])
