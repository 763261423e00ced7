"""Regressions in the VGCL video masks (method-notes 3.3, 3.8, 6.9, 6.12)."""

from __future__ import annotations

import torch

from svg_core.models.cpc import CPCConfig, VGCLEncoder, curriculum_window, stage_at


def test_encode_with_the_full_video_gives_no_nan():
    # The released Encoder.encode() built an all-True key_padding_mask (every key ignored -> NaN).
    cfg = CPCConfig.small(enc_hidden=16, z_dim=16, c_dim=16, video_dim=16, video_ff_dim=32, video_layers=1,
                          audio_subsample=1)  # the released framing: T/4 latent steps
    encoder = VGCLEncoder(cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        c, lengths, extras = encoder(torch.randn(2, 40, 128, generator=g), torch.tensor([40, 17]),
                                     torch.randn(2, 64, 500, generator=g), torch.ones(2, 64, dtype=torch.bool))
    assert torch.isfinite(c).all() and lengths.tolist() == [10, 4]
    torch.testing.assert_close(extras["cross_attention"].sum(-1)[0], torch.ones(10))


def test_empty_moment_still_keeps_one_frame():
    # without the entire-video copy an empty window would mask every key
    window = curriculum_window(torch.tensor([12.0]), torch.tensor([12.0]), 0, 10, 64)
    assert window.sum() == 1 and bool(window[0, 12])


def test_curriculum_visits_every_stage_including_0_9():
    # the released schedule jumped from ratio 0.8 to 1.0
    stages = {stage_at(step, 1100, 10, "linear") for step in range(1100)}
    assert stages == set(range(11))
