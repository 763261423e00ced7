"""VSLNet-audio: the Base encoders and context-query attention with VSLNet's query-guided
highlighting (QGH) and conditioned span predictor (Zhang et al. 2020; VGCL paper Table 2).

fused F [B*C, N_v, d] -> h = sigmoid(W [F_i; pool(A)]) -> F' = h * F ->
start RNN(F'), end RNN(start features) -> FFN([H; F']) logits. The highlight scores are the
model's ``inside_prob``. Loss = boundary (CE by default) + highlight_weight * weighted BCE of h
against the moment extended by ``highlight_extend`` of its length on each side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svg_core.models.base import (
    AudioQueryEncoder,
    BaseConfig,
    BaseGrounder,
    GroundingConfig,
    VideoEncoder,
    build_audio_encoder,
    small_preset_fields,
)
from svg_core.models.blocks import AttentionPool, RecurrentPredictor


@dataclass
class VSLNetConfig(BaseConfig):
    """VSLNet-audio: every Base field plus the highlighting settings."""

    highlight_extend: float = 0.1  # foreground = moment extended by this fraction of its length per side
    highlight_weight: float = 5.0  # weight of the highlight loss (VSLNet's lambda)
    highlight_pos_weight: float = 2.0  # BCE weight of foreground frames (VSLNet code)

    @classmethod
    def paper(cls, **overrides) -> "VSLNetConfig":
        """Paper-size encoders (D = 1024, 8 chunks, audio_subsample = 1); unidirectional LSTM
        predictor as in VSLNet."""
        return cls(**{"head_rnn": "lstm", "audio_subsample": 1, **overrides})

    @classmethod
    def small(cls, **overrides) -> "VSLNetConfig":
        """CPU size, same encoders as ``BaseConfig.small()`` (with the same ``model_dim`` rule)."""
        return cls(**{"head_rnn": "lstm", **small_preset_fields(overrides)})


class HighlightPredictor(nn.Module):
    """Query-guided highlighting then the conditioned start/end predictor.

    Args:
        dim: chunk width d.
        hidden: RNN hidden units per direction.
        kind: "gru" or "lstm".
        bidirectional: bidirectional RNNs.
    """

    def __init__(self, dim: int, hidden: int, kind: str, bidirectional: bool) -> None:
        super().__init__()
        self.pool = AttentionPool(dim)
        self.highlight = nn.Linear(2 * dim, 1)
        self.spans = RecurrentPredictor(dim, hidden, kind, bidirectional, with_inside=False)

    def forward(
        self, fused: torch.Tensor, video_mask: torch.Tensor, query: torch.Tensor, query_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Args: fused [B, N, d], video_mask [B, N], query [B, T_q, d], query_mask [B, T_q].

        Returns:
            start and end logits [B, N] and highlight logits [B, N].
        """
        pooled = self.pool(query, query_mask)  # [B, d]
        both = torch.cat([fused, pooled.unsqueeze(1).expand_as(fused)], dim=-1)
        highlight = self.highlight(both).squeeze(-1)  # [B, N]
        gated = fused * torch.sigmoid(highlight).unsqueeze(-1) * video_mask.unsqueeze(-1).to(fused.dtype)
        start, end, _ = self.spans(gated, video_mask.sum(1))
        return start, end, highlight


class VSLNetGrounder(BaseGrounder):
    """``BaseGrounder`` with the VSLNet highlighting predictor and loss."""

    cfg: VSLNetConfig

    def build_predictor(self, cfg: GroundingConfig, hidden: int) -> nn.Module:
        return HighlightPredictor(cfg.chunk_dim, hidden, cfg.head_rnn, cfg.head_bidirectional)

    def predict(
        self, fused: torch.Tensor, vm: torch.Tensor, ac: torch.Tensor, qm: torch.Tensor, batch_size: int
    ) -> dict[str, torch.Tensor]:
        """fused [B*C, N_v, d] -> output dict; ``inside_*`` are the highlight scores."""
        start, end, highlight = self.predictor(fused, vm, ac, qm)
        out = self.boundary_outputs(start, end, vm, batch_size)
        chunk_prob = torch.sigmoid(highlight.float()) * vm
        out["highlight_prob_chunks"] = chunk_prob.view(batch_size, self.cfg.chunk_num, -1)
        out["inside_prob"] = out["highlight_prob_chunks"].mean(1)
        out["inside_logits"] = torch.logit(out["inside_prob"], eps=1e-6)
        return out

    def highlight_target(self, batch: dict, n_frames: int, device: torch.device) -> torch.Tensor:
        """Frames overlapping the moment extended by ``highlight_extend`` of its length: float [B, N]."""
        start = batch["start_idx"].to(device).float()
        end = batch["end_idx"].to(device).float()
        pad = self.cfg.highlight_extend * (end - start).clamp(min=0)
        frames = torch.arange(n_frames, device=device, dtype=torch.float32).unsqueeze(0)
        left, right = (start - pad).unsqueeze(1), (end + pad).unsqueeze(1)
        return ((frames + 1 > left) & (frames < right)).float()

    def inside_loss(self, out: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
        """Weighted, masked BCE of every chunk's highlight scores (foreground weight 2)."""
        prob = out["highlight_prob_chunks"]  # [B, C, N]
        target = self.highlight_target(batch, prob.shape[-1], prob.device).unsqueeze(1)
        mask = out["video_mask"].to(prob.device).float().unsqueeze(1)
        weight = torch.where(target > 0, self.cfg.highlight_pos_weight, 1.0) * mask
        bce = -(target * torch.log(prob + 1e-9) + (1 - target) * torch.log(1 - prob + 1e-9))
        return (bce * weight).sum() / (mask.sum() * prob.shape[1]).clamp_min(1.0)

    def loss(self, out: dict[str, torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total = boundary_weight * boundary + highlight_weight * highlight."""
        boundary = self.boundary_loss(out, batch)
        highlight = self.inside_loss(out, batch)
        total = self.cfg.boundary_weight * boundary + self.cfg.highlight_weight * highlight
        return total, {"loss": total.detach(), "boundary_loss": boundary.detach(),
                       "highlight_loss": highlight.detach()}  # fmt: skip


def build_vslnet(cfg: VSLNetConfig) -> VSLNetGrounder:
    """Build VSLNet-audio over the Base encoders (a pretrained audio encoder works here too)."""
    encoder = build_audio_encoder(cfg)
    return VSLNetGrounder(cfg, AudioQueryEncoder(encoder), VideoEncoder(cfg))
