"""Regression tests for data-pipeline bugs of the released VGCL code (method-notes 1.2, 1.3, 1.4)."""

import numpy as np
import torch

from svg_core.audio.frontend import log_mel
from svg_core.data.dataset import collate_batch, moment_labels
from svg_core.data.video_features import resample_features


def _item(n_samples, seed):
    wave = np.random.default_rng(seed).standard_normal(n_samples).astype(np.float32) * 0.1
    record = type("R", (), dict(video_id="v", duration_sec=10.0, start_sec=1.0, end_sec=2.0, query_id="q",
                                sentence="s"))()
    return {"video": np.zeros((64, 500), np.float32), "audio": log_mel(wave), "record": record,
            "noise_span_sec": (0.0, 0.0), "snr_db": float("nan"), **moment_labels(1.0, 2.0, 10.0, 64)}


def test_padding_is_not_the_loudest_value_and_is_masked():
    # Released code: padding = 0 dB = the loudest value, lengths overwritten to 800, never masked.
    batch = collate_batch([_item(8000, 0), _item(16000, 1)])
    short = int(batch["audio_lengths"][0])
    assert short < batch["audio"].shape[1]
    assert torch.all(batch["audio"][0, short:] == 0)
    assert batch["audio"][0, short:].max() < batch["audio"][0, :short].max()  # not the loudest value
    assert not batch["audio_mask"][0, short:].any() and batch["audio_mask"][1].all()


def test_last_feature_row_is_averaged_in():
    # Released code clips bin edges at T-1, so the last row never reaches the mean.
    feats = np.zeros((128, 1), np.float32)
    feats[-1] = 64.0
    assert resample_features(feats, 64)[-1, 0] == 32.0


def test_labels_are_clamped_to_the_grid():
    lab = moment_labels(0.0, 10.5, 10.0, 64)  # end past duration (clipped by the reader too)
    assert lab["end_idx"] == 64.0 and lab["end_label"] == 63
