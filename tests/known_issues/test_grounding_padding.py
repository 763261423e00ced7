"""Regression: the released grounding model never masked audio padding (method-notes 1.3.9, 2.6,
6.13): the same utterance padded to 800 frames gave different predictions. Here it does not."""

from __future__ import annotations

import torch

from svg_core.models import BaseConfig, build_model
from tests.model_batches import make_batch


def test_padding_length_does_not_change_predictions():
    cfg = BaseConfig.small(model_dim=64, chunk_num=2, attn_layers=1, davenet1_stem=32, davenet1_dims=(32, 64),
                           audio_gru_dim=64, davenet2_stem=64, davenet2_dims=(64, 64), davenet2_blocks=(1, 1))
    model = build_model(cfg).eval()
    batch = make_batch([90], seed=0)
    padded = dict(batch, audio=torch.nn.functional.pad(batch["audio"], (0, 0, 0, 710)))  # 800 frames
    with torch.no_grad():
        a, b = model(batch), model(padded)
    torch.testing.assert_close(a["start_prob"], b["start_prob"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a["end_prob"], b["end_prob"], atol=1e-5, rtol=1e-4)
