"""Build a tiny dataset folder in the real ActivityNet Speech layout, for tests.

``make_tiny_dataset(root)`` writes, in well under a second::

    root/
      new_train_data.json  new_val_data.json  new_test_data.json   # 5-field items
      sub_activitynet_v1-3.c3d.hdf5                                # f[vid]["c3d_features"] (T, 500)
      audio/<wav_name>                                             # 16 kHz mono wav, 0.4-1.0 s
      manifest.json                                                # {"synthetic": true, ...}

The queries carry a learnable signal so that a few training steps can move the metrics: the
spoken query is a tone whose pitch encodes the moment's centre, and the video features get a
bump inside the moment. Everything is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
FEATURE_DIM = 500
SPLITS = ("train", "val", "test")


def _tone(centre_frac: float, duration_sec: float, rng: np.random.Generator) -> np.ndarray:
    """A tone at 300-1500 Hz (pitch = moment centre) plus a little noise, float32 [n]."""
    n = int(duration_sec * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    freq_hz = 300.0 + 1200.0 * centre_frac
    wave = 0.3 * np.sin(2 * np.pi * freq_hz * t) + 0.02 * rng.standard_normal(n)
    return wave.astype(np.float32)


def make_tiny_dataset(root: str | Path, n_videos: int = 4, queries_per_video: int = 2, seed: int = 0) -> Path:
    """Write a tiny ActivityNet-Speech-layout dataset under ``root``.

    Every split uses the same ``n_videos`` videos with ``queries_per_video`` fresh queries each,
    so each split has ``n_videos * queries_per_video`` items.

    Args:
        root: destination folder (created).
        n_videos: number of videos.
        queries_per_video: queries per video and per split.
        seed: seed of every random draw.

    Returns:
        ``root`` as a ``Path``.
    """
    if n_videos < 1 or queries_per_video < 1:
        raise ValueError(f"n_videos and queries_per_video must be >= 1, found {n_videos}, {queries_per_video}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    videos = []
    with h5py.File(root / "sub_activitynet_v1-3.c3d.hdf5", "w") as f:
        for v in range(n_videos):
            video_id = f"v_tiny{v:03d}"
            n_rows = int(rng.integers(40, 120))
            duration_sec = round(float(n_rows) * 8 / 30.0, 2)  # C3D: one row per 8 frames at 30 fps
            feats = rng.standard_normal((n_rows, FEATURE_DIM)).astype(np.float32) * 0.5
            f.create_group(video_id).create_dataset("c3d_features", data=feats)
            videos.append((video_id, duration_sec, feats))
    for split in SPLITS:
        items = []
        for video_id, duration_sec, _ in videos:
            for q in range(queries_per_video):
                start_sec = round(float(rng.uniform(0, 0.6)) * duration_sec, 2)
                end_sec = round(min(duration_sec, start_sec + float(rng.uniform(0.15, 0.4)) * duration_sec), 2)
                wav_name = f"{video_id[2:]}_{split}_{q + 1}.wav"
                centre_frac = (start_sec + end_sec) / 2 / duration_sec
                sf.write(root / "audio" / wav_name, _tone(centre_frac, float(rng.uniform(0.4, 1.0)), rng), SAMPLE_RATE)
                items.append([video_id, duration_sec, [start_sec, end_sec], f"query {q} about {video_id}", wav_name])
        (root / f"new_{split}_data.json").write_text(json.dumps(items), encoding="utf-8")
    # Mark each moment in the features so that video and query agree (train split moments).
    with h5py.File(root / "sub_activitynet_v1-3.c3d.hdf5", "a") as f:
        train_items = json.loads((root / "new_train_data.json").read_text(encoding="utf-8"))
        for video_id, duration_sec, (start_sec, end_sec), _, _ in train_items:
            feats = f[video_id]["c3d_features"]
            n_rows = feats.shape[0]
            lo, hi = int(start_sec / duration_sec * n_rows), max(int(end_sec / duration_sec * n_rows), 1)
            block = feats[lo:hi]
            block[:, :8] += 1.0
            feats[lo:hi] = block
    (root / "manifest.json").write_text(
        json.dumps({"synthetic": True, "generator": "tests/fixtures_build.py", "seed": seed}), encoding="utf-8"
    )
    return root


def tiny_base_config(**overrides):
    """A Base config small enough for multi-epoch tests on a loaded 2-core CPU (~90k parameters).

    Dropout is 0 so that runs with different process counts can be compared.
    """
    from svg_core.models import BaseConfig

    tiny = dict(
        model_dim=32, chunk_num=2, dropout=0.0, davenet1_stem=16, davenet1_dims=(16, 32),
        audio_gru_dim=32, davenet2_stem=32, davenet2_dims=(32, 32), max_audio_frames=200,
    )  # fmt: skip
    return BaseConfig.small(**{**tiny, **overrides})
