"""Audio query encoder of the Base model (paper 4.3, method-notes 2.2).

log-Mel [B, T_a, 128] -> stage 1 (k frames stacked per step, then DAVEnet1 + unidirectional GRU,
or the VGCL-pretrained g_enc + video cross-attention + GRU) -> stage 2 (DAVEnet2 residual CNN)
-> [B, T_a/(16 k), D], with k = ``audio_subsample`` (1 in the paper and in every checkpoint made
before the field existed; 4 for new configs, ``BaseConfig``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.models.blocks import ResDAVEnet, lengths_to_mask, run_rnn, stack_frames


class DavenetGruStage(nn.Module):
    """Stage 1 of the Base audio encoder: frame stacking, DAVEnet1 (two stride-2 residual stages),
    then a GRU.

    With ``subsample`` k > 1 the DAVEnet1 stem sees k stacked frames per step (its 1x1 conv is
    then a kernel-k, stride-k conv over the frames), so DAVEnet1 and the GRU run k times fewer
    steps. k = 1 is the paper's network, parameter for parameter.

    Args:
        n_mels: log-Mel bands (128).
        stem_dim: DAVEnet1 stem channels.
        stage_dims: DAVEnet1 stage channels, e.g. (128, 256).
        blocks_per_stage: residual blocks per stage, e.g. (1, 1).
        gru_dim: width of the unidirectional GRU (its output is the stage output).
        kernel: temporal kernel width.
        subsample: k, log-Mel frames stacked into one step before DAVEnet1.
    """

    min_input_frames = 1

    def __init__(
        self,
        n_mels: int,
        stem_dim: int,
        stage_dims: tuple[int, ...],
        blocks_per_stage: tuple[int, ...],
        gru_dim: int,
        kernel: int = 9,
        subsample: int = 1,
    ) -> None:
        super().__init__()
        if subsample < 1:
            raise ValueError(f"subsample must be >= 1, found {subsample}")
        self.subsample = subsample
        self.cnn = ResDAVEnet(n_mels * subsample, stem_dim, stage_dims, blocks_per_stage, kernel)
        self.gru = nn.GRU(self.cnn.out_dim, gru_dim, batch_first=True)
        self.out_dim = gru_dim

    def forward(
        self,
        audio: torch.Tensor,
        lengths: torch.Tensor,
        video: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Args:
            audio: float [B, T_a, n_mels]; lengths: int64 [B]. ``video``/``video_mask`` unused
            (same signature as the VGCL stage).

        Returns:
            (float [B, T_a/(4 k), gru_dim], int64 [B], {}), zeros at padding; step lengths are
            ceil(lengths / k) before DAVEnet1's two stride-2 stages.
        """
        h, lengths = stack_frames(audio, lengths, self.subsample)  # [B, ceil(T_a / k), k * n_mels]
        h, lengths = self.cnn(h, lengths)
        h = run_rnn(self.gru, h, lengths)
        return h * lengths_to_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype), lengths, {}


class AudioEncoder(nn.Module):
    """Stage 1 (replaceable) followed by stage 2 (a ResDAVEnet over the stage-1 channels).

    Args:
        stage1: a ``DavenetGruStage`` or a VGCL-pretrained ``VGCLEncoder``; it maps
            ``(audio [B, T, n_mels], lengths, video, video_mask)`` to ``(h [B, T', C], lengths, extras)``
            and exposes ``out_dim`` and ``min_input_frames``.
        stage2: ResDAVEnet over ``stage1.out_dim`` channels.
        max_frames: longer inputs are truncated to this many log-Mel frames (N_a).
        freeze_stage1: keep stage 1 frozen (no gradients, BatchNorm/dropout in eval mode).
    """

    def __init__(self, stage1: nn.Module, stage2: ResDAVEnet, max_frames: int, freeze_stage1: bool = False) -> None:
        super().__init__()
        self.stage1, self.stage2 = stage1, stage2
        self.max_frames = max_frames
        self.freeze_stage1 = freeze_stage1
        if freeze_stage1:
            self.stage1.requires_grad_(False)
        self.out_dim = stage2.out_dim

    def train(self, mode: bool = True) -> "AudioEncoder":
        super().train(mode)
        if self.freeze_stage1:
            self.stage1.eval()
        return self

    def forward(
        self,
        audio: torch.Tensor,
        lengths: torch.Tensor,
        video: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Encode a padded batch of log-Mels.

        Zero-length or very short items are padded with zero frames up to the shortest input
        stage 1 accepts, so they still give at least one query step.

        Args:
            audio: float [B, T_a, n_mels], zeros at padding.
            lengths: int64 [B], valid frames.
            video: float [B, N_v, 500], for the VGCL stage.
            video_mask: bool [B, N_v].

        Returns:
            A float [B, T_q, D], query lengths int64 [B], extras (``cross_attention`` for VGCL).
        """
        if audio.dim() != 3:
            raise ValueError(f"audio must be [batch, frames, mels], found {tuple(audio.shape)}")
        audio = audio[:, : self.max_frames]
        min_frames = int(getattr(self.stage1, "min_input_frames", 1))
        lengths = lengths.to(audio.device).clamp(min=min_frames, max=max(audio.shape[1], min_frames))
        if audio.shape[1] < min_frames:
            audio = F.pad(audio, (0, 0, 0, min_frames - audio.shape[1]))
        # zero the padding so garbage in padded frames can never leak into valid outputs
        audio = audio * lengths_to_mask(lengths, audio.shape[1]).unsqueeze(-1).to(audio.dtype)
        h, lengths, extras = self.stage1(audio, lengths, video, video_mask)
        h, lengths = self.stage2(h, lengths)
        return h, lengths, extras
