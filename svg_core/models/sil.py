"""SIL: weakly supervised spoken video grounding (paper 001, ACL 2023; seed-systems "SIL").

Training sees matched (video, spoken query) pairs only, never a moment's timestamps.

video [B, N, 500] -> Linear + positions + QANet blocks -> V [B, N, d]
audio [B, T, 128] -> ASP speech encoder (frozen when pre-trained) -> BiGRU -> S [B, K, d]
clip -> speech additive attention q_i (Eq. 9) -> BiGRU([v_i; q_i]) -> M [B, N, d]
2D-TAN map: cell (s, e) = max-pool M[s..e] -> Conv2d + ReLU -> 1x1 -> proposal logits [B, N, N]

Losses (``SILGrounder.loss``): MIL with a negative video and a negative speech (Eq. 10), the
diversity loss (Eq. 11) and AVCL (Eq. 6, Jensen-Shannon estimator), L_G = L_base + lambda_3
L_AVCL + lambda_div L_div. Inference: best proposal cell -> seconds; top-5 by NMS 0.45.

Shapes: B batch, N clips (N_v), K speech segments (CIF) or steps, T' acoustic steps (40 ms).

Where the released code (method-notes 5.2, 5.5, 6) departs from the paper, this follows the paper:

1. MIL uses both negatives, (V', S) and (V, S') (the code: the video negative only).
2. L_div is the entropy of the softmax over the top-R scores (the code: a max-log-softmax gap
   plus a mean-score term); its weight is not given in the paper: ``div_weight`` (default 1).
3. AVCL is the JS mutual-information bound with a dot-product discriminator after small
   projections (the code: InfoNCE with T = 1 whose negatives overlap the positives); negatives
   are the lowest-scoring clips outside the pseudo-moment, then inside it when too few.
4. The speech encoder is frozen during grounding when pre-trained (the code trains it).
5. Every cell of the sparse map is a proposal (the code scores only 153 of them). Video clips
   come from the dataset's bin averaging.

Two switches, both off by default (the paper), tried against the MIL stall below:

- ``cross_gate``: the released code's cross-gate v' = sigmoid(W_a q) * v, q' = sigmoid(W_b v) * q
  before the fusion BiGRU (method-notes 5.2.3; the paper: plain concatenation).
- ``map_fusion="hadamard"``: 2D-TAN's own fusion on the proposal map, each cell's features times
  W_s of the pooled speech, L2-normalised over channels (SIL: the map of fused clips alone).

And one against it, not in the paper either: ``mil_negatives`` K > 1 negatives of each kind per
pair (one per other video of the batch), with ``mil_form="softmax"`` reading them as a
classification of the matched pair among them (AVLnet's batch loss) instead of Eq. 10.

Neither of the first two fixes the MIL stall (f(K) = 0.50 for matched and negative pairs in every epoch on
world 4); the third does, with video negatives only: docs/RESULTS.md "SIL" and
``notebooks/sil_pairing_probe.py``. Once the pairing is learned, two more switches (not the paper):
``div_form="logits"`` (L_div on the logits; on [0, 1] scores it is inert) and
``clip_fusion="product"`` with ``video_attention=False`` (a local clip-speech match; through the
BiGRU the match reaches every clip and the map's argmax ignores the query).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.models.asp import ASPConfig, SpeechEncoder, masked_mean
from svg_core.models.blocks import lengths_to_mask, masked_softmax, run_rnn
from svg_core.models.sil_losses import (
    avcl_samples,
    diversity_loss,
    js_mi_loss,
    mil_loss,
    mil_softmax_loss,
    negative_sets,
    top_r_mean,
)
from svg_core.models.speech_frontend import WHISPER_BASE_DIM, SpeechAdapter, check_frontend_fields, input_frames

# ---------------------------------------------------------------------------------------------
# Proposals (2D-TAN map) and decoding helpers
# ---------------------------------------------------------------------------------------------


def proposal_mask(n: int, scales: tuple[int, ...]) -> torch.Tensor:
    """Cells (start, end inclusive) of the sparse 2D-TAN map that are proposals.

    ``scales`` = (count_1, count_2, ...): scale i adds ``count_i`` lengths with stride 2**i at
    starts that are multiples of 2**i, continuing from the previous longest length. 2D-TAN's
    64-clip map is (16, 8, 8): lengths 1..16, then 18..32 at even starts, then 36..64 at starts
    divisible by 4; (n,) is the dense map.

    Returns:
        bool [n, n], True at proposal cells (always end >= start).
    """
    mask = torch.zeros(n, n, dtype=torch.bool)
    longest = 0
    for i, count in enumerate(scales):
        stride = 2**i
        for length in range(longest + stride, longest + stride * count + 1, stride):
            if length <= n:
                starts = torch.arange(0, n - length + 1, stride)
                mask[starts, starts + length - 1] = True
        longest += stride * count
    return mask


def map_features(x: torch.Tensor) -> torch.Tensor:
    """2D-TAN max-pool map: cell (s, e) = max over clips s..e of x.

    Args:
        x: float [B, N, C].

    Returns:
        float [B, C, N, N]; zeros below the diagonal (end < start).
    """
    b, n, c = x.shape
    cells = torch.zeros(b, c, n, n, dtype=x.dtype, device=x.device)
    cur = x.transpose(1, 2)  # [B, C, N - L + 1]: windows of length L
    for length in range(1, n + 1):
        starts = torch.arange(n - length + 1, device=x.device)
        cells[:, :, starts, starts + length - 1] = cur
        if length < n:
            cur = torch.maximum(cur[:, :, :-1], x.transpose(1, 2)[:, :, length:])
    return cells


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class SILConfig:
    """SIL grounding network, its weak losses and its speech encoder (paper 3.2, 3.4, app. A-B)."""

    n_video_frames: int = 64  # N clips (paper 64)
    video_dim_in: int = 500  # C3D feature size
    model_dim: int = 256  # d
    video_conv_layers: int = 4  # QANet conv blocks of the video encoder
    video_kernel: int = 7  # their depth-wise kernel
    heads: int = 4  # heads of the video self-attention
    dropout: float = 0.1
    map_dim: int = 256  # channels of the 2D proposal map
    map_kernel: int = 5  # its Conv2d kernel
    map_layers: int = 1  # Conv2d + ReLU layers over the map (released config: one)
    proposal_scales: tuple[int, ...] = (16, 8, 8)  # sparse 2D-TAN map, see proposal_mask
    top_r: int = 20  # R of f(K)
    use_speech_negative: bool = True  # MIL with (V, S') too (paper); False = video negative only (code)
    # negatives of each kind per matched pair, one per other video of the batch (paper: 1), and how
    # MIL reads them: "bce" = Eq. 10 with the negatives' terms averaged; "softmax" = cross-entropy of
    # the matched pair among its negatives at mil_temperature, as AVLnet's batch loss (not the paper)
    mil_negatives: int = 1
    mil_form: Literal["bce", "softmax"] = "bce"
    mil_temperature: float = 0.1
    cross_gate: bool = False  # True: the released code's cross-gate before the fusion BiGRU (paper: plain concat)
    # 2D-TAN's fusion on the proposal map: each cell's features times a projection of the pooled
    # speech, then L2-normalised over channels ("hadamard"); "none" = SIL's map of fused clips alone
    map_fusion: Literal["none", "hadamard"] = "none"
    # how a clip and its attended speech meet before the map: "bigru" = concat -> BiGRU (paper);
    # "product" = their element-wise product, no recurrence (not in the paper): the BiGRU carries
    # "this speech matches this video" to every clip, so MIL can be met by a query-wide offset
    # while the map's shape, and so the argmax, stays the video's; a product keeps a match local
    clip_fusion: Literal["bigru", "product"] = "bigru"
    video_attention: bool = True  # the video encoder's self-attention block (False: convolutions only)
    use_avcl: bool = True  # acoustic-visual contrastive learning (ablation: off)
    avcl_samples: int = 12  # T positive and T negative clips
    avcl_dim: int = 128  # width of the discriminator's projections
    avcl_weight: float = 0.1  # lambda_3
    div_weight: float = 1.0  # weight of L_div (not given in the paper)
    # what L_div's softmax reads: "scores" = the top-R sigmoid scores (paper; in [0, 1], so its
    # entropy cannot fall below 2.95 of log 20 = 3.00 and its gradient is nearly nil: the map stays
    # flat), "logits" = the same R cells' logits (not in the paper: a peak can form; from the first
    # step it pushes every top logit up until the sigmoids saturate at 1 and MIL's gradient dies,
    # so it only helps once the pairing is learned; docs/RESULTS.md "SIL on the speech front-end")
    div_form: Literal["scores", "logits"] = "scores"
    n_mels: int = 128
    max_audio_frames: int = 2048  # longer log-Mels are truncated (20 s)
    speech_layers: int = 2  # acoustic and semantic layers of a speech encoder trained from scratch
    # (the paper's Base without pre-training: 2 layers, no CIF); unused with a pre-trained one
    asp: ASPConfig | None = None  # speech-encoder architecture; filled from pretrained_encoder by
    # engine.sil_training.build_sil_with_pretrained. None without pretrained_encoder = from scratch
    pretrained_encoder: str | None = None  # OUT/encoder of a `--stage pretrain --model sil_asp` run
    freeze_speech_encoder: bool = True  # paper: the pre-trained speech encoder is fixed
    # the variant on the pre-trained speech front-end (issue 21 item 6): frozen Whisper base encoder
    # features [T_e, 512] in place of log-Mels, through a trainable SpeechAdapter (stride 1: one step
    # per 40 ms encoder frame at pool 2, as SIL's acoustic steps) and the BiGRU; no ASP, no CIF
    audio_frontend: Literal["logmel", "whisper_base"] = "logmel"
    frontend_pool: int = 2  # whisper_base: encoder frames averaged before the model (50 -> 25 Hz)
    adapter_dim: int = 256  # whisper_base: width of the adapter's projection
    adapter_kernel: int = 5  # whisper_base: odd temporal kernel of the adapter's conv
    adapter_stride: int = 1  # whisper_base: the adapter's temporal down-sampling

    def __post_init__(self) -> None:
        check_frontend_fields(self)
        if self.audio_frontend != "logmel" and (self.pretrained_encoder is not None or self.asp is not None):
            raise ValueError("audio_frontend=whisper_base replaces the ASP speech encoder: drop --pretrained-encoder")
        if self.model_dim % 2 or self.model_dim % self.heads:
            raise ValueError(f"model_dim must be even and divide by heads, found {self.model_dim}, {self.heads}")
        if self.video_kernel % 2 != 1 or self.map_kernel % 2 != 1:
            raise ValueError(f"kernels must be odd, found {self.video_kernel} and {self.map_kernel}")
        if self.mil_negatives < 1 or self.mil_temperature <= 0:
            raise ValueError(f"mil_negatives must be >= 1 and mil_temperature > 0, found {self.mil_negatives}, "
                             f"{self.mil_temperature}")
        if not bool(proposal_mask(self.n_video_frames, self.proposal_scales).any()):
            raise ValueError(f"proposal_scales {self.proposal_scales} give no proposal on {self.n_video_frames} clips")

    @classmethod
    def paper(cls, **overrides) -> "SILConfig":
        """Paper sizes: 64 clips, d = 256, the (16, 8, 8) sparse map, R = 20, T = 12."""
        return cls(**overrides)

    @classmethod
    def small(cls, **overrides) -> "SILConfig":
        """A size that trains on a 2-core CPU: 32 clips (the notes' halved map), d = 128."""
        base = dict(n_video_frames=32, model_dim=128, video_conv_layers=2, map_dim=64, map_kernel=3,
                    proposal_scales=(16, 8), avcl_samples=6, avcl_dim=64)
        return cls(**{**base, **overrides})

    def speech_config(self) -> ASPConfig:
        """The speech encoder's architecture: ``asp``, or the from-scratch Base encoder."""
        if self.asp is not None:
            return self.asp
        return ASPConfig.small(model_dim=self.model_dim, heads=self.heads, acoustic_layers=self.speech_layers,
                               semantic_layers=self.speech_layers, n_mels=self.n_mels, use_conciseness=False,
                               use_robustness=False, dropout=self.dropout)


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """QANet conv block: LN -> depth-wise Conv1d -> point-wise Conv1d -> ReLU -> dropout, residual."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False)
        self.pointwise = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: x float [B, N, d], mask bool [B, N]. Returns float [B, N, d], zeros at padding."""
        h = self.norm(x) * mask.unsqueeze(-1).to(x.dtype)
        h = self.drop(F.relu(self.pointwise(self.depthwise(h.transpose(1, 2))))).transpose(1, 2)
        return (x + h) * mask.unsqueeze(-1).to(x.dtype)


class VideoEncoder(nn.Module):
    """Linear(500, d) + learned positions -> QANet blocks (convs, self-attention, FFN) (app. A.1)."""

    def __init__(self, cfg: SILConfig) -> None:
        super().__init__()
        d = cfg.model_dim
        self.drop_in = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(cfg.video_dim_in, d)
        self.pos = nn.Parameter(torch.randn(cfg.n_video_frames, d) * 0.02)
        self.convs = nn.ModuleList(ConvBlock(d, cfg.video_kernel, cfg.dropout) for _ in range(cfg.video_conv_layers))
        self.attn_norm, self.ffn_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True) if cfg.video_attention else None
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: video float [B, N, 500], mask bool [B, N]. Returns V float [B, N, d]."""
        if video.dim() != 3 or video.shape[1] > self.pos.shape[0]:
            raise ValueError(f"video must be [batch, <= {self.pos.shape[0]} clips, dim], found {tuple(video.shape)}")
        keep = mask.unsqueeze(-1).to(video.dtype)
        h = (self.proj(self.drop_in(video)) + self.pos[: video.shape[1]]) * keep
        for block in self.convs:
            h = block(h, mask)
        if self.attn is not None:  # video_attention=False: each clip sees its conv neighbourhood only
            a = self.attn_norm(h)
            h = h + self.drop(self.attn(a, a, a, key_padding_mask=~mask, need_weights=False)[0])
        h = h + self.drop(self.ffn(self.ffn_norm(h)))
        return h * keep


class SpeechQuery(nn.Module):
    """ASP speech encoder (optionally frozen) -> BiGRU (paper 3.3.1: S~ -> S).

    Args:
        encoder: a ``SpeechEncoder``; frozen (no gradients, eval mode) when ``freeze``.
        dim: output width d.
        max_frames: longer log-Mels are truncated.
        freeze: keep the encoder fixed (the paper, after pre-training).
    """

    def __init__(self, encoder: SpeechEncoder, dim: int, max_frames: int, freeze: bool) -> None:
        super().__init__()
        self.encoder, self.max_frames, self.freeze = encoder, max_frames, freeze
        if freeze:
            self.encoder.requires_grad_(False)
        self.rnn = nn.GRU(encoder.out_dim, dim // 2, batch_first=True, bidirectional=True)

    def train(self, mode: bool = True) -> "SpeechQuery":
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: audio float [B, T, n_mels], lengths int64 [B].

        Returns:
            dict with ``speech`` [B, K, d], ``segment_mask`` [B, K], ``assign`` [B, K, T'] and
            ``step_mask`` [B, T'].
        """
        audio = audio[:, : self.max_frames]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            enc = self.encoder.encode(audio, lengths.clamp(max=self.max_frames))
        seg_mask = enc["segment_mask"]
        speech = run_rnn(self.rnn, enc["semantic"], seg_mask.sum(1)) * seg_mask.unsqueeze(-1).to(enc["semantic"].dtype)
        return {"speech": speech, "segment_mask": seg_mask, "assign": enc["assign"], "step_mask": enc["step_mask"]}


class FrontendSpeechQuery(nn.Module):
    """Frozen encoder features -> ``SpeechAdapter`` -> BiGRU: ``SpeechQuery``'s output without CIF
    (each adapter step is a segment; ``assign`` is the identity).

    Args:
        adapter: the ``SpeechAdapter`` (out width ``dim``); dim: output width d; max_frames: longer
            feature sequences are truncated.
    """

    def __init__(self, adapter: SpeechAdapter, dim: int, max_frames: int) -> None:
        super().__init__()
        self.adapter, self.max_frames = adapter, max_frames
        self.rnn = nn.GRU(adapter.out_dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: audio float [B, T_e, 512], lengths int64 [B]. Returns: as ``SpeechQuery`` with K = T'."""
        audio = audio[:, : self.max_frames]
        h, steps = self.adapter(audio, lengths.clamp(min=1, max=max(audio.shape[1], 1)))  # [B, T', d]
        mask = lengths_to_mask(steps, h.shape[1])
        speech = run_rnn(self.rnn, h, steps) * mask.unsqueeze(-1).to(h.dtype)
        eye = torch.eye(h.shape[1], dtype=h.dtype, device=h.device).expand(h.shape[0], -1, -1)
        return {"speech": speech, "segment_mask": mask, "assign": eye * mask.unsqueeze(1).to(h.dtype), "step_mask": mask}


class ClipSpeechAttention(nn.Module):
    """delta_ij = u^T tanh(U1 v_i + U2 s_j + b), softmax over j, q_i = sum_j delta~_ij s_j (Eq. 9)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.u1 = nn.Linear(dim, dim)  # carries b
        self.u2 = nn.Linear(dim, dim, bias=False)
        self.u = nn.Linear(dim, 1, bias=False)

    def forward(self, v: torch.Tensor, s: torch.Tensor, s_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: v [B, N, d], s [B, K, d], s_mask bool [B, K]. Returns q [B, N, d], weights [B, N, K]."""
        scores = self.u(torch.tanh(self.u1(v).unsqueeze(2) + self.u2(s).unsqueeze(1))).squeeze(-1)  # [B, N, K]
        weights = masked_softmax(scores, s_mask.unsqueeze(1), dim=2)
        return weights @ s, weights


class ProposalScorer(nn.Module):
    """2D-TAN scorer: Linear(d, C) -> max-pool map -> [Dropout, Conv2d(k) + ReLU] x L -> 1x1 -> logits."""

    def __init__(self, cfg: SILConfig) -> None:
        super().__init__()
        c, k = cfg.map_dim, cfg.map_kernel
        self.proj = nn.Linear(cfg.model_dim, c)
        self.speech_proj = nn.Linear(cfg.model_dim, c) if cfg.map_fusion == "hadamard" else None
        self.convs = nn.ModuleList(nn.Conv2d(c, c, k, padding=k // 2) for _ in range(cfg.map_layers))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Conv2d(c, 1, 1)

    def forward(self, m: torch.Tensor, cells: torch.Tensor, speech: torch.Tensor | None = None) -> torch.Tensor:
        """Args: m float [B, N, d] fused clips, cells bool [B, N, N] proposal cells, speech float
        [B, d] pooled speech (read with ``map_fusion="hadamard"`` only).

        Returns:
            logits float [B, N, N] (meaningful at ``cells`` only; the diagonal = clip scores).
        """
        keep = cells.unsqueeze(1).to(m.dtype)
        h = map_features(self.proj(m)) * keep  # [B, C, N, N], zero outside the proposals (2D-TAN)
        if self.speech_proj is not None:  # 2D-TAN: F = norm(map * W_s s)
            h = F.normalize(h * self.speech_proj(speech)[:, :, None, None], dim=1) * keep
        for conv in self.convs:
            h = F.relu(conv(self.drop(h))) * keep
        return self.head(h).squeeze(1)


class SILGrounder(nn.Module):
    """Video encoder + speech query + interaction + 2D proposal scorer, with the weak losses.

    Output dict of ``forward(batch)``: ``proposal_logits``, ``proposal_scores`` [B, N, N]
    (sigmoid, 0 outside proposals), ``proposal_mask`` bool [B, N, N]; display marginals
    ``start_prob``/``end_prob`` [B, N] (normalised best score per start/end clip) and
    ``inside_prob`` [B, N] (clip scores = sigmoid of the map's diagonal) with matching
    ``*_logits``; ``cq_attention`` [B, N, T'] (clip -> segment attention spread over the
    acoustic steps each segment integrates, 40 ms each), ``query_mask`` [B, T'],
    ``segment_attention`` [B, N, K], ``segment_mask`` [B, K], ``video_mask``. In training mode
    also the negative pairs' logits and what the losses need.

    Args:
        cfg: the SIL config.
        speech: the ``SpeechQuery``.
        video_encoder: the ``VideoEncoder``.
    """

    def __init__(self, cfg: SILConfig, speech: SpeechQuery, video_encoder: VideoEncoder) -> None:
        super().__init__()
        self.cfg, self.speech, self.video_encoder = cfg, speech, video_encoder
        d = cfg.model_dim
        self.attention = ClipSpeechAttention(d)
        self.gate_video = nn.Linear(d, d) if cfg.cross_gate else None  # W_a: speech -> gate on the clip
        self.gate_speech = nn.Linear(d, d) if cfg.cross_gate else None  # W_b: clip -> gate on the speech
        self.fusion = nn.GRU(2 * d, d // 2, batch_first=True, bidirectional=True) if cfg.clip_fusion == "bigru" else None
        self.scorer = ProposalScorer(cfg)
        self.phi_video, self.phi_speech = nn.Linear(d, cfg.avcl_dim), nn.Linear(d, cfg.avcl_dim)
        self.register_buffer("cells", proposal_mask(cfg.n_video_frames, cfg.proposal_scales), persistent=False)

    def score_pair(self, v: torch.Tensor, v_mask: torch.Tensor, s: torch.Tensor, s_mask: torch.Tensor) -> dict:
        """Interaction + scorer for pairs (V_b, S_b). Returns ``logits`` [B, N, N], ``cells``, ``attention`` [B, N, K]."""
        n = v.shape[1]
        q, weights = self.attention(v, s, s_mask)
        if self.gate_video is not None:
            v, q = torch.sigmoid(self.gate_video(q)) * v, torch.sigmoid(self.gate_speech(v)) * q
        if self.fusion is not None:
            m = run_rnn(self.fusion, torch.cat([v, q], -1), v_mask.sum(1)) * v_mask.unsqueeze(-1).to(v.dtype)
        else:  # product: each clip's match with what it attends to, nothing carried between clips
            m = v * q * v_mask.unsqueeze(-1).to(v.dtype)
        valid_end = v_mask.unsqueeze(1) & v_mask.unsqueeze(2)  # both clips valid
        cells = self.cells[:n, :n].unsqueeze(0) & valid_end
        pooled = masked_mean(s, s_mask) if self.cfg.map_fusion == "hadamard" else None  # only map_fusion="hadamard" reads it
        return {"logits": self.scorer(m, cells, pooled), "cells": cells, "attention": weights}

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Ground a batch (reads ``video``, ``video_mask``, ``audio``, ``audio_lengths`` and, in
        training, ``video_id``; never a timestamp)."""
        video = batch["video"]
        v_mask = batch.get("video_mask")
        v_mask = torch.ones(video.shape[:2], dtype=torch.bool, device=video.device) if v_mask is None else v_mask.to(video.device)
        audio = batch["audio"]
        lengths = batch.get("audio_lengths")
        lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long) if lengths is None else lengths
        v = self.video_encoder(video, v_mask)  # [B, N, d]
        sq = self.speech(audio, lengths.to(audio.device))  # speech [B, K, d]
        s, s_mask = sq["speech"], sq["segment_mask"]
        pos = self.score_pair(v, v_mask, s, s_mask)
        logits, cells = pos["logits"], pos["cells"]
        scores = torch.sigmoid(logits.float()) * cells
        out = {"proposal_logits": logits, "proposal_scores": scores, "proposal_mask": cells,
               "segment_attention": pos["attention"], "segment_mask": s_mask, "video_mask": v_mask}
        out["cq_attention"] = pos["attention"] @ sq["assign"].to(logits.dtype)  # [B, N, T'], rows sum to 1
        out["query_mask"] = sq["step_mask"]
        for name, dim in (("start", 2), ("end", 1)):  # display marginals of the proposal map
            best = scores.amax(dim) * v_mask
            prob = best / best.sum(1, keepdim=True).clamp_min(1e-12)
            out[f"{name}_prob"], out[f"{name}_logits"] = prob, torch.log(prob.clamp_min(1e-30))
        diag = torch.diagonal(logits, dim1=1, dim2=2).float()  # clip scores (length-1 cells)
        out["inside_prob"] = torch.sigmoid(diag) * v_mask
        out["inside_logits"] = diag
        if self.training:
            out.update(self._negatives(batch, v, v_mask, s, s_mask, cells))
            out["video_features"], out["speech_pooled"] = v, masked_mean(s, s_mask)
        return out

    def _negatives(self, batch: dict, v, v_mask, s, s_mask, cells) -> dict[str, torch.Tensor]:
        """The negative pairs' logits [B, K, N, N], their cells and validity [B, K] (K = mil_negatives)."""
        ids, k, dev = list(batch["video_id"]), self.cfg.mil_negatives, v.device
        b, n = v.shape[:2]
        jv, valid_v = negative_sets(ids, +1, k)
        jv = jv.to(dev).reshape(-1)
        mine = torch.arange(b, device=dev).repeat_interleave(k)  # [B K]: the item each negative belongs to
        out = {"neg_video_logits": self.score_pair(v[jv], v_mask[jv], s[mine], s_mask[mine])["logits"].reshape(b, k, n, n),
               "neg_video_cells": cells[jv].reshape(b, k, n, n), "neg_video_valid": valid_v.to(dev)}
        if self.cfg.use_speech_negative:
            js, valid_s = negative_sets(ids, -1, k)
            js = js.to(dev).reshape(-1)
            out["neg_speech_logits"] = self.score_pair(v[mine], v_mask[mine], s[js], s_mask[js])["logits"].reshape(b, k, n, n)
            out["neg_speech_valid"] = valid_s.to(dev)
        return out

    def loss(self, out: dict[str, torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L_G = L_base + lambda_3 L_AVCL + lambda_div L_div (Eq. 8, 10, 11); reads no timestamp.

        Returns:
            (scalar loss, {"loss", "mil_loss", "div_loss", "avcl_loss", "pos_score", "neg_score"}).
        """
        if "neg_video_logits" not in out:
            raise ValueError("SIL loss needs the negative pairs: call the model in training mode")
        cfg = self.cfg
        b, n, _ = out["proposal_logits"].shape
        flat = lambda x: x.reshape(b, n * n)  # noqa: E731
        cells = flat(out["proposal_mask"])
        pos_scores = torch.sigmoid(flat(out["proposal_logits"]).float())
        f_pos = top_r_mean(pos_scores, cells, cfg.top_r)
        k = cfg.mil_negatives

        def f_of(logits: torch.Tensor, neg_cells: torch.Tensor) -> torch.Tensor:
            """f(K) of negative pairs: logits [B, K, N, N], cells [B K, N N] -> [B, K]."""
            return top_r_mean(torch.sigmoid(logits.reshape(b * k, n * n).float()), neg_cells, cfg.top_r).reshape(b, k)

        f_nv, valid_v = f_of(out["neg_video_logits"], out["neg_video_cells"].reshape(b * k, n * n)), out["neg_video_valid"]
        f_ns = valid_s = None
        if cfg.use_speech_negative:  # the speech negatives score on the item's own video: its own cells
            f_ns, valid_s = f_of(out["neg_speech_logits"], cells.repeat_interleave(k, 0)), out["neg_speech_valid"]
        if cfg.mil_form == "softmax":
            kinds = [(f_nv, valid_v)] + ([(f_ns, valid_s)] if f_ns is not None else [])
            mil = mil_softmax_loss(f_pos, [f for f, _ in kinds], [v for _, v in kinds], cfg.mil_temperature)
        else:
            mil = mil_loss(f_pos, f_nv, f_ns, valid_v, valid_s)
        div_input = pos_scores if cfg.div_form == "scores" else flat(out["proposal_logits"]).float()
        div = diversity_loss(div_input, cells, cfg.top_r)
        total = mil + cfg.div_weight * div
        first = valid_v[:, 0]  # the nearest negative video, as with one negative
        logs = {"mil_loss": mil.detach(), "div_loss": div.detach(), "pos_score": f_pos.mean().detach(),
                "neg_score": (f_nv[:, 0] * first).sum().detach() / first.sum().clamp_min(1)}
        if cfg.use_avcl:
            avcl = self.avcl_loss(out)
            total = total + cfg.avcl_weight * avcl
            logs["avcl_loss"] = avcl.detach()
        logs["loss"] = total.detach()
        return total, logs

    def avcl_loss(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """AVCL: the top proposal is the pseudo-moment; clips mined by the (detached) clip scores."""
        logits, cells, v_mask = out["proposal_logits"].detach(), out["proposal_mask"], out["video_mask"]
        b, n, _ = logits.shape
        best = logits.masked_fill(~cells, float("-inf")).reshape(b, -1).argmax(1)
        start, end = best // n, best % n
        clips = torch.arange(n, device=logits.device).unsqueeze(0)
        inside = (clips >= start.unsqueeze(1)) & (clips <= end.unsqueeze(1))
        clip_scores = torch.diagonal(logits, dim1=1, dim2=2).float()
        pos, neg = avcl_samples(clip_scores, inside, v_mask, self.cfg.avcl_samples)
        scale = self.cfg.avcl_dim ** -0.5
        phi = (self.phi_video(out["video_features"]) @ self.phi_speech(out["speech_pooled"]).unsqueeze(-1)).squeeze(-1) * scale
        return js_mi_loss(phi, pos, phi, neg)


def build_sil(cfg: SILConfig) -> SILGrounder:
    """Build the SIL grounder from its config alone (``model.cfg`` is ``cfg``).

    Raises:
        ValueError: ``pretrained_encoder`` set but ``asp`` unset: build it with
            ``svg_core.engine.sil_training.build_sil_with_pretrained``, which reads the encoder.
    """
    if cfg.pretrained_encoder is not None and cfg.asp is None:
        raise ValueError(f"cfg.pretrained_encoder is {cfg.pretrained_encoder!r} but cfg.asp is unset: build it with "
                         "svg_core.engine.sil_training.build_sil_with_pretrained(cfg), which reads that checkpoint")
    if cfg.audio_frontend != "logmel":
        adapter = SpeechAdapter(WHISPER_BASE_DIM, cfg.adapter_dim, cfg.model_dim, cfg.adapter_kernel, cfg.adapter_stride)
        max_frames = input_frames(cfg.max_audio_frames, cfg.audio_frontend, cfg.frontend_pool)
        return SILGrounder(cfg, FrontendSpeechQuery(adapter, cfg.model_dim, max_frames), VideoEncoder(cfg))
    freeze = cfg.pretrained_encoder is not None and cfg.freeze_speech_encoder
    speech = SpeechQuery(SpeechEncoder(cfg.speech_config()), cfg.model_dim, cfg.max_audio_frames, freeze)
    return SILGrounder(cfg, speech, VideoEncoder(cfg))
