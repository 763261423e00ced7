"""AVLnet: spoken search across a video collection (paper 003, Interspeech 2021; seed-systems.md).

A spoken query and a moment's clips are embedded into one space; similarity is their dot
product. Audio branch: log-Mel [B, T_a, 128] -> ResDAVEnet (stem + stride-2 residual stages of
1x9 temporal convs) -> masked mean pool; or, with ``audio_frontend="whisper_base"`` (the
variant on the pre-trained speech front-end), frozen Whisper base encoder features
[B, T_e, 512] -> the trainable ``SpeechAdapter`` (models/speech_frontend.py) -> masked mean pool. Video branch: the clips of a moment (or of a search
window), masked mean pool of their C3D features. Both pass a projection into the joint space:
gated f(v) = (W1 v + b1) * sigmoid(W2 (W1 v + b1) + b2) (the paper's), or the ablations linear /
non-linear (2-layer MLP). Loss: masked-margin softmax (MMS) in both directions, negatives from
the other moments in the batch (several of the same video) plus, per query, the clips of its own
video outside the moment; ablation InfoNCE (no margin, a temperature).

Padding is masked in training and evaluation alike (the public code pools padding in training);
no L2 normalisation (as the public code), unless ``normalize=True``.

Dimension legend: B batch, T_a log-Mel frames, N_v clips on the video grid, C 500 C3D size,
E joint-space size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.models.blocks import ResDAVEnet, lengths_to_mask
from svg_core.models.speech_frontend import WHISPER_BASE_DIM, SpeechAdapter, check_frontend_fields, input_frames


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid steps; an item with no valid step gives zeros.

    Args:
        x: float [B, T, C].
        mask: bool [B, T], True at valid steps.

    Returns:
        float [B, C].
    """
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class GatedProjection(nn.Module):
    """f(v) = (W1 v + b1) * sigmoid(W2 (W1 v + b1) + b2): AVLnet's gated embedding unit.

    Args:
        in_dim: input size; out_dim: joint-space size E.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.gate = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x float [..., in_dim]. Returns: float [..., out_dim]."""
        h = self.fc(x)
        return h * torch.sigmoid(self.gate(h))


def make_projection(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """The joint-space projection: ``gated`` (paper), ``linear`` or ``mlp`` (non-linear ablation)."""
    if kind == "gated":
        return GatedProjection(in_dim, out_dim)
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim))
    raise ValueError(f"projection must be gated, linear or mlp, found {kind!r}")


def mms_loss(sim: torch.Tensor, margin: float = 0.001, extra_negatives: torch.Tensor | None = None,
             temperature: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked-margin softmax in both directions (InfoNCE when ``margin=0``, ``temperature`` < 1).

    L(x, y) = -(1/B) sum_i log[e^{s_ii - d} / (e^{s_ii - d} + sum_{j != i} e^{s_ij})], for the
    audio->video rows of ``sim`` and for its columns (video->audio); the audio->video side also
    sees ``extra_negatives`` (e.g. the same video's clips outside the moment).

    Args:
        sim: float [B, B], sim[i, j] = audio_i . video_j; the diagonal holds the positives.
        margin: d, subtracted from the positive logit.
        extra_negatives: float [B, K] more negatives per audio row (or None).
        temperature: logits are divided by it (1.0 for MMS).

    Returns:
        (scalar loss = mean of the two directions, logs {"a2v", "v2a"}).
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be square [B, B], found {tuple(sim.shape)}")
    b = sim.shape[0]
    logits = (sim - margin * torch.eye(b, dtype=sim.dtype, device=sim.device)) / temperature
    target = torch.arange(b, device=sim.device)
    a2v_logits = logits if extra_negatives is None else torch.cat([logits, extra_negatives / temperature], 1)
    a2v = F.cross_entropy(a2v_logits, target)
    v2a = F.cross_entropy(logits.T, target)
    return (a2v + v2a) / 2, {"a2v": float(a2v.detach()), "v2a": float(v2a.detach())}


@dataclass
class AVLnetConfig:
    """AVLnet hyper-parameters (``small`` trains on a 2-core CPU; ``paper`` as AVLnet)."""

    n_mels: int = 128  # log-Mel bands of the project's front-end (the paper uses 40)
    n_video_frames: int = 64  # N_v, the clip grid a video is resampled to (moments and search windows)
    video_dim: int = 500  # C3D feature size
    stem_dim: int = 128  # ResDAVEnet stem channels
    stage_dims: tuple[int, ...] = (128, 256, 512, 1024)  # ResDAVEnet stages (x16 down-sampling in time)
    blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2)  # residual blocks per stage
    kernel: int = 9  # temporal kernel width
    max_audio_frames: int = 1500  # longer queries are truncated (15 s of 10 ms frames)
    embed_dim: int = 4096  # E, the joint space (paper 4096)
    projection: Literal["gated", "linear", "mlp"] = "gated"  # ablation of the projection
    loss: Literal["mms", "infonce"] = "mms"  # MMS (paper) or InfoNCE (ablation)
    margin: float = 0.001  # MMS margin delta
    temperature: float = 0.07  # InfoNCE temperature (MMS uses 1.0)
    same_video_negatives: bool = True  # add the query's own video outside its moment as a negative
    normalize: bool = False  # L2-normalise embeddings before the dot product (the paper does not)
    window_clips: int = 8  # search index: clips per sliding window (on the N_v grid)
    stride_clips: int = 4  # search index: window stride in clips
    audio_frontend: Literal["logmel", "whisper_base"] = "logmel"  # what the audio branch reads (see module doc)
    frontend_pool: int = 2  # whisper_base: encoder frames averaged before the model (50 -> 25 Hz)
    adapter_dim: int = 256  # whisper_base: width of the adapter (projection and strided conv)
    adapter_kernel: int = 5  # whisper_base: odd temporal kernel of the adapter's conv
    adapter_stride: int = 2  # whisper_base: the adapter's temporal down-sampling

    def __post_init__(self) -> None:
        check_frontend_fields(self)

    @property
    def audio_in_dim(self) -> int:
        """Width of ``batch["audio"]``: the log-Mel bands or the encoder's 512 features."""
        return self.n_mels if self.audio_frontend == "logmel" else WHISPER_BASE_DIM

    @classmethod
    def small(cls, **overrides) -> "AVLnetConfig":
        """A CPU-sized model: narrow stages, E = 256."""
        base = dict(stem_dim=64, stage_dims=(64, 128, 128, 256), blocks_per_stage=(1, 1, 1, 1), embed_dim=256)
        return cls(**{**base, **overrides})

    @classmethod
    def paper(cls, **overrides) -> "AVLnetConfig":
        """The paper's sizes (widths 128/256/512/1024, 2 blocks per stage, E = 4096)."""
        return cls(**overrides)


class AVLnet(nn.Module):
    """Audio and clip encoders into one space, by composition (``build_avlnet`` builds one).

    Args:
        cfg: the config.
        audio_cnn: ResDAVEnet over log-Mels, or the ``SpeechAdapter`` over encoder features; both map
            (float [B, T, in], int64 [B]) to (float [B, T', C], int64 [B]).
        audio_proj / video_proj: projections into the joint space.
    """

    def __init__(self, cfg: AVLnetConfig, audio_cnn: ResDAVEnet | SpeechAdapter, audio_proj: nn.Module,
                 video_proj: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio_cnn, self.audio_proj, self.video_proj = audio_cnn, audio_proj, video_proj
        self.min_frames = getattr(audio_cnn, "downsample", 1)  # at least one step after the stages
        self.max_frames = input_frames(cfg.max_audio_frames, cfg.audio_frontend, cfg.frontend_pool)

    def embed_audio(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embed spoken queries.

        Args:
            audio: float [B, T_a, n_mels] log-Mels (or [B, T_e, 512] encoder features), zeros at
                padding; lengths: int64 [B] (0 allowed).

        Returns:
            float [B, E].
        """
        width = self.cfg.audio_in_dim
        if audio.dim() != 3 or audio.shape[-1] != width:
            raise ValueError(f"audio must be [batch, frames, {width}] ({self.cfg.audio_frontend}), found {tuple(audio.shape)}")
        audio = audio[:, : self.max_frames]
        lengths = lengths.to(audio.device).clamp(min=1, max=max(audio.shape[1], 1))
        if audio.shape[1] < self.min_frames:  # too short for the stages: pad with silence
            audio = F.pad(audio, (0, 0, 0, self.min_frames - audio.shape[1]))
        audio = audio * lengths_to_mask(lengths, audio.shape[1]).unsqueeze(-1).to(audio.dtype)
        h, out_len = self.audio_cnn(audio, lengths)  # [B, T_a/16, C]
        out_len = out_len.clamp(min=1)
        pooled = masked_mean(h, lengths_to_mask(out_len, h.shape[1]))  # [B, C], padding masked
        return self._finish(self.audio_proj(pooled))

    def embed_clips(self, clips: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Embed moments or search windows from their clips.

        Args:
            clips: float [B, N, 500] clip features; mask: bool [B, N], True at the clips to pool.

        Returns:
            float [B, E].
        """
        if clips.dim() != 3 or clips.shape[-1] != self.cfg.video_dim:
            raise ValueError(f"clips must be [batch, clips, {self.cfg.video_dim}], found {tuple(clips.shape)}")
        return self._finish(self.video_proj(masked_mean(clips, mask)))

    def _finish(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=-1) if self.cfg.normalize else z

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Embed a grounding batch (``collate_batch``): queries, their moments, the rest of their videos.

        Returns:
            dict with ``audio_emb`` [B, E], ``moment_emb`` [B, E] (clips where ``inside``),
            ``outside_emb`` [B, E] (the same video's other clips; zeros-input for a full-video
            moment) and ``has_outside`` bool [B].
        """
        inside = batch["inside"] > 0.5  # [B, N_v]
        valid = batch["video_mask"]
        outside = valid & ~inside
        return {
            "audio_emb": self.embed_audio(batch["audio"], batch["audio_lengths"]),
            "moment_emb": self.embed_clips(batch["video"], inside & valid),
            "outside_emb": self.embed_clips(batch["video"], outside),
            "has_outside": outside.any(1),
        }

    def similarity(self, audio_emb: torch.Tensor, clip_emb: torch.Tensor) -> torch.Tensor:
        """Dot products, float [B_a, B_v]."""
        return audio_emb @ clip_emb.T

    def loss(self, out: dict[str, torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """MMS (or InfoNCE) both ways over the batch, plus same-video negatives on the audio side."""
        sim = self.similarity(out["audio_emb"], out["moment_emb"])  # [B, B]
        extra = None
        if self.cfg.same_video_negatives:
            own = (out["audio_emb"] * out["outside_emb"]).sum(-1, keepdim=True)  # [B, 1]
            extra = own.masked_fill(~out["has_outside"].unsqueeze(1), -1e9)  # no outside clip: no negative
        margin, temp = (self.cfg.margin, 1.0) if self.cfg.loss == "mms" else (0.0, self.cfg.temperature)
        loss, logs = mms_loss(sim, margin=margin, extra_negatives=extra, temperature=temp)
        return loss, {"loss": float(loss.detach()), **logs}


def build_avlnet(cfg: AVLnetConfig) -> AVLnet:
    """The one constructor of AVLnet (train, search and the app call it)."""
    if cfg.audio_frontend == "whisper_base":
        cnn: ResDAVEnet | SpeechAdapter = SpeechAdapter(WHISPER_BASE_DIM, cfg.adapter_dim, cfg.adapter_dim,
                                                        cfg.adapter_kernel, cfg.adapter_stride)
    else:
        cnn = ResDAVEnet(cfg.n_mels, cfg.stem_dim, cfg.stage_dims, cfg.blocks_per_stage, cfg.kernel)
    return AVLnet(cfg, cnn, make_projection(cfg.projection, cnn.out_dim, cfg.embed_dim),
                  make_projection(cfg.projection, cfg.video_dim, cfg.embed_dim))
