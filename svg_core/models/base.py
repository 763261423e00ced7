"""The Base spoken video grounding network (paper section 4; method-notes section 2).

video [B, N_v, 500] -> Conv1d + GELU + BN + BiGRU -> V [B, N_v, D]
audio [B, T_a, 128] -> AudioEncoder (k frames stacked per step, DAVEnet1 + GRU | VGCL encoder, then
DAVEnet2) -> A [B, T_q, D], T_q = T_a / (16 k), k = ``audio_subsample``
  (or frozen Whisper features [B, T_e, 512] -> adapter + GRU | VGCL encoder -> projection; speech_frontend.py)
chunk trick: [B, *, D] -> [B*C, *, D/C]; video self-attention; masked context-query attention;
start/end/inside recurrent heads (end conditioned on start); probabilities averaged over chunks.

``GroundingConfig`` holds everything after the query encoder and is shared by the text model;
``BaseConfig`` adds the audio encoder. ``BaseGrounder`` takes its query encoder as a submodule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.models.audio_encoder import AudioEncoder, DavenetGruStage
from svg_core.models.blocks import (
    ContextQueryAttention,
    RecurrentPredictor,
    ResDAVEnet,
    SelfAttentionEncoder,
    lengths_to_mask,
    masked_fill_min,
    masked_softmax,
    repeat_chunks,
    run_rnn,
    split_chunks,
)
from svg_core.models.cpc import CPCConfig, VGCLEncoder
from svg_core.models.speech_frontend import build_frontend_audio_encoder, check_frontend_fields


@dataclass
class GroundingConfig:
    """Video encoder, interaction, heads and losses shared by every grounding family."""

    n_video_frames: int = 64  # N_v
    video_dim_in: int = 500  # C3D feature size
    model_dim: int = 1024  # D, width of V and A before chunking
    chunk_num: int = 8  # C; every module after the encoders runs on D / C channels per chunk
    video_kernel: int = 1  # kernel of the video Conv1d (the released code uses 1)
    video_rnn: bool = True  # BiGRU after the video conv (paper 4.3); the released code has none
    attn_heads: int = 4  # heads of the video self-attention
    attn_layers: int = 2  # its post-LN encoder layers
    attn_ff_mult: int = 4  # its feed-forward width = mult * D / C (512 at D / C = 128)
    dropout: float = 0.1  # dropout inside the self-attention layers
    video_dropout: float = 0.0  # dropout on the 500-d video features before the video conv (VSLNet: 0.2)
    head_rnn: Literal["gru", "lstm"] = "gru"  # paper: GRU; released code: LSTM
    head_bidirectional: bool = False  # paper: unidirectional; released code: bidirectional
    head_hidden: int = 0  # hidden units per direction; 0 = D / C (unidirectional) or D / 2C
    boundary_loss: Literal["ce", "kl"] = "ce"  # paper: cross-entropy; released code: smoothed KL
    boundary_weight: float = 1.0
    inside_weight: float = 6.0  # released code (loss_config.inside = 6); paper: 1

    def __post_init__(self) -> None:
        if self.model_dim % self.chunk_num:
            raise ValueError(f"model_dim must divide by chunk_num, found {self.model_dim} and {self.chunk_num}")
        if (self.model_dim // self.chunk_num) % self.attn_heads:
            raise ValueError(f"chunk width {self.model_dim // self.chunk_num} must divide by attn_heads")
        if self.video_kernel % 2 != 1:
            raise ValueError(f"video_kernel must be odd, found {self.video_kernel}")
        for name in ("dropout", "video_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), found {getattr(self, name)}")

    @property
    def chunk_dim(self) -> int:
        """Width d of one chunk."""
        return self.model_dim // self.chunk_num


@dataclass
class BaseConfig(GroundingConfig):
    """Base = GroundingConfig + the audio encoder (ResDAVEnet / GRU, or the VGCL-pretrained one)."""

    n_mels: int = 128
    max_audio_frames: int = 1024  # N_a; longer log-Mels are truncated (released code: 800)
    # k: log-Mel frames (10 ms) stacked into one step before the first audio stage, so DAVEnet1,
    # the GRU, DAVEnet2 and the context-query attention run k times fewer steps (T_q = T_a / 16k).
    # 1 = the paper and every config.json written before this field (a missing key reads as 1,
    # models.LEGACY_DEFAULTS); 4 for new configs: 40 ms steps, 1.6-1.8x the training samples/s of
    # the small preset on one CPU thread (python -m svg_core.bench train --compare-speed).
    audio_subsample: int = 4
    davenet1_stem: int = 128
    davenet1_dims: tuple[int, ...] = (128, 256)
    davenet1_blocks: tuple[int, ...] = (1, 1)
    audio_gru_dim: int = 256  # unidirectional GRU after DAVEnet1
    davenet2_stem: int = 256
    davenet2_dims: tuple[int, ...] = (512, 1024)  # the last must equal model_dim (log-Mel models)
    davenet2_blocks: tuple[int, ...] = (2, 2)
    audio_kernel: int = 9
    pretrained_encoder: str | None = None  # CPC/VGCL checkpoint dir replacing DAVEnet1 + GRU
    freeze_pretrained: bool = False  # True: keep that stage frozen; False: fine-tune it
    cpc: CPCConfig | None = None  # pretrained stage architecture; filled from pretrained_encoder by
    # engine.checkpoint.build_with_pretrained, or set directly to build a VGCL first stage without weights
    # Speech front-end (models/speech_frontend.py). A config.json without these fields is a log-Mel model.
    audio_frontend: Literal["logmel", "whisper_base"] = "logmel"  # what batch["audio"] holds: log-Mel
    # [T_a, 128] at 100 Hz, or frozen Whisper base encoder features [T_e, 512] at 50 / frontend_pool Hz
    # (computed outside the model, never saved in its weights); whisper_base replaces both DAVEnets
    frontend_pool: int = 2  # whisper_base: encoder frames averaged before the model and the cache (50 -> 25 Hz)
    adapter_dim: int = 256  # whisper_base: width of the adapter's projection and strided convolution
    adapter_kernel: int = 5  # whisper_base: temporal kernel of that convolution (odd)
    adapter_stride: int = 2  # whisper_base: its down-sampling (25 -> 12.5 Hz); audio_gru_dim runs at that rate

    def __post_init__(self) -> None:
        super().__post_init__()
        check_frontend_fields(self)
        if self.audio_subsample < 1:
            raise ValueError(f"audio_subsample must be >= 1, found {self.audio_subsample}")
        # whisper_base replaces both DAVEnets (a stem projects to model_dim), so davenet2_dims is unused
        if self.audio_frontend == "logmel" and self.davenet2_dims[-1] != self.model_dim:
            raise ValueError(
                f"davenet2_dims[-1] must equal model_dim, found {self.davenet2_dims[-1]} and {self.model_dim}"
            )

    @classmethod
    def paper(cls, **overrides) -> "BaseConfig":
        """Paper sizes: D = 1024, 8 chunks, N_v = 64, audio up to 1024 frames, every 10 ms frame
        into DAVEnet1 (audio_subsample = 1)."""
        return cls(**{"audio_subsample": 1, **overrides})

    @classmethod
    def small(cls, **overrides) -> "BaseConfig":
        """A size that trains on a 2-core CPU: D = 128 in one chunk, narrow DAVEnets.

        One chunk: at D = 128 the paper's 8-way split leaves 16 channels per chunk. A 4-way split
        (32 channels) was the first small preset; one 128-channel chunk did better on the synthetic
        validation split (text model, 4 epochs, v1 features: R1@0.5 48.6 vs 38.8; run with
        ``python -m svg_core.train --model text --set chunk_num=1``). ``--set chunk_num=4`` restores it.
        ``audio_subsample`` keeps the new-config default (4); ``--set audio_subsample=1`` gives the
        v2 small preset that the shipped checkpoints use. A wider ``model_dim`` widens the last
        DAVEnet-2 stage with it (``--set model_dim=256`` alone gives ``davenet2_dims`` (128, 256)),
        unless ``davenet2_dims`` is set too.
        """
        return cls(**small_preset_fields(overrides))


def small_preset_fields(overrides: dict) -> dict:
    """The small preset's Base fields under ``overrides``; the last DAVEnet-2 width follows ``model_dim``."""
    model_dim = overrides.get("model_dim", 128)
    base = dict(
        model_dim=128, chunk_num=1, attn_layers=1, max_audio_frames=800,
        davenet1_stem=64, davenet1_dims=(64, 128), audio_gru_dim=128,
        davenet2_stem=128, davenet2_dims=(128, model_dim), davenet2_blocks=(1, 1), audio_kernel=7,
    )  # fmt: skip
    return {**base, **overrides}


class VideoEncoder(nn.Module):
    """Conv1d(500, D, k) -> GELU -> BN (released code) -> BiGRU (paper 4.3), masked.

    Args:
        cfg: the grounding config.
    """

    def __init__(self, cfg: GroundingConfig) -> None:
        super().__init__()
        dim = cfg.model_dim
        self.drop = nn.Dropout(cfg.video_dropout)  # identity at 0 (every shipped checkpoint) and in eval
        self.conv = nn.Conv1d(cfg.video_dim_in, dim, cfg.video_kernel, padding=cfg.video_kernel // 2)
        self.bn = nn.BatchNorm1d(dim)
        self.rnn = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True) if cfg.video_rnn else None
        if cfg.video_rnn and dim % 2:
            raise ValueError(f"model_dim must be even for the video BiGRU, found {dim}")

    def forward(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: video float [B, N_v, 500], mask bool [B, N_v]. Returns V float [B, N_v, D]."""
        if video.dim() != 3:
            raise ValueError(f"video must be [batch, frames, dim], found {tuple(video.shape)}")
        keep = mask.unsqueeze(-1).to(video.dtype)
        h = self.bn(F.gelu(self.conv(self.drop(video * keep).transpose(1, 2)))).transpose(1, 2) * keep
        if self.rnn is not None:
            h = run_rnn(self.rnn, h, mask.sum(1))
        return h * keep


class AudioQueryEncoder(nn.Module):
    """Batch-dict adapter around ``AudioEncoder``: reads audio, audio_lengths, video, video_mask."""

    def __init__(self, encoder: AudioEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Returns A float [B, T_q, D], lengths int64 [B], extras (``cross_attention``)."""
        audio = batch["audio"]
        lengths = batch.get("audio_lengths")
        if lengths is None:
            lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
        return self.encoder(audio, lengths.to(audio.device), batch.get("video"), batch.get("video_mask"))


class BaseGrounder(nn.Module):
    """Query encoder + video encoder + self-attention + context-query attention + heads.

    Args:
        cfg: a ``GroundingConfig`` (``BaseConfig``, ``VSLNetConfig`` or ``TextConfig``).
        query_encoder: maps the batch dict to (A [B, T_q, D], lengths [B], extras).
        video_encoder: maps (video [B, N_v, 500], mask [B, N_v]) to V [B, N_v, D].
    """

    def __init__(self, cfg: GroundingConfig, query_encoder: nn.Module, video_encoder: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.chunk_dim
        self.query_encoder = query_encoder
        self.video_encoder = video_encoder
        self.video_attention = SelfAttentionEncoder(d, cfg.attn_heads, cfg.attn_layers, cfg.attn_ff_mult * d, cfg.dropout)
        self.cqa = ContextQueryAttention(d)
        hidden = cfg.head_hidden or (d // 2 if cfg.head_bidirectional else d)
        self.predictor = self.build_predictor(cfg, hidden)

    def build_predictor(self, cfg: GroundingConfig, hidden: int) -> nn.Module:
        """The start/end/inside heads (VSLNet overrides this)."""
        return RecurrentPredictor(cfg.chunk_dim, hidden, cfg.head_rnn, cfg.head_bidirectional, with_inside=True)

    # -- forward -------------------------------------------------------------------------------

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Ground a batch.

        Args:
            batch: the dataset batch dict (``video``, ``video_mask``, plus the query keys).

        Returns:
            dict with ``start_logits``, ``end_logits``, ``inside_logits`` and ``*_prob`` [B, N_v]
            (chunk-averaged; logits are log of the averaged probabilities for start/end and
            logit of the averaged inside probability), per-chunk ``start_logits_chunks``,
            ``end_logits_chunks`` [B, C, N_v], ``cq_attention`` [B, N_v, T_q] (chunk mean),
            ``query_mask`` [B, T_q], ``video_mask`` [B, N_v] and the query encoder's extras
            (``cross_attention`` [B, T_q', K_v] for a VGCL-pretrained audio encoder).
        """
        video = batch["video"]
        video_mask = batch.get("video_mask")
        if video_mask is None:
            video_mask = torch.ones(video.shape[:2], dtype=torch.bool, device=video.device)
        video_mask = video_mask.to(video.device)
        v = self.video_encoder(video, video_mask)  # [B, N_v, D]
        a, q_len, extras = self.query_encoder(batch)  # [B, T_q, D]
        query_mask = lengths_to_mask(q_len, a.shape[1])
        chunks = self.cfg.chunk_num
        vm, qm = repeat_chunks(video_mask, chunks), repeat_chunks(query_mask, chunks)
        vc = self.video_attention(split_chunks(v, chunks), vm)  # [B*C, N_v, d]
        ac = split_chunks(a, chunks)  # [B*C, T_q, d]
        fused, s_row = self.cqa(vc, vm, ac, qm)  # [B*C, N_v, d], [B*C, N_v, T_q]
        out = self.predict(fused, vm, ac, qm, video.shape[0])
        out["cq_attention"] = s_row.view(video.shape[0], chunks, *s_row.shape[1:]).mean(1)
        out["query_mask"], out["video_mask"] = query_mask, video_mask
        out.update(extras)
        return out

    def predict(
        self, fused: torch.Tensor, vm: torch.Tensor, ac: torch.Tensor, qm: torch.Tensor, batch_size: int
    ) -> dict[str, torch.Tensor]:
        """Heads on the fused chunks: fused [B*C, N_v, d], vm [B*C, N_v] -> output dict."""
        start, end, inside = self.predictor(fused, vm.sum(1))
        out = self.boundary_outputs(start, end, vm, batch_size)
        inside_prob = (torch.sigmoid(inside.float()) * vm).view(batch_size, self.cfg.chunk_num, -1).mean(1)
        out["inside_prob"] = inside_prob
        out["inside_logits"] = torch.logit(inside_prob, eps=1e-6)
        return out

    def boundary_outputs(
        self, start: torch.Tensor, end: torch.Tensor, vm: torch.Tensor, batch_size: int
    ) -> dict[str, torch.Tensor]:
        """Masked per-chunk start/end logits [B*C, N_v] -> chunk-averaged probabilities."""
        chunks = self.cfg.chunk_num
        out: dict[str, torch.Tensor] = {}
        for name, logits in (("start", start), ("end", end)):
            logits = masked_fill_min(logits.float(), vm).view(batch_size, chunks, -1)
            mask = vm.view(batch_size, chunks, -1)
            prob = masked_softmax(logits, mask, dim=-1).mean(1)  # mean of probabilities (notes 2.4)
            out[f"{name}_logits_chunks"] = logits
            out[f"{name}_prob"] = prob
            out[f"{name}_logits"] = torch.log(prob.clamp_min(1e-30))
        return out

    # -- loss ----------------------------------------------------------------------------------

    def boundary_loss(self, out: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
        """Per-chunk boundary loss: CE on the integer labels (paper Eq. 10, halved sum) or KL to
        Gaussian-smoothed targets (released code, method-notes 2.8, start + end, batch mean)."""
        start_logits, end_logits = out["start_logits_chunks"], out["end_logits_chunks"]  # [B, C, N]
        b, c, n = start_logits.shape
        device = start_logits.device
        if self.cfg.boundary_loss == "ce":
            losses = []
            for logits, key in ((start_logits, "start_label"), (end_logits, "end_label")):
                labels = batch[key].to(device).long().clamp(0, n - 1)
                losses.append(F.cross_entropy(logits.reshape(b * c, n), labels.repeat_interleave(c)))
            return 0.5 * (losses[0] + losses[1])
        if self.cfg.boundary_loss != "kl":
            raise ValueError(f"boundary_loss must be 'ce' or 'kl', found {self.cfg.boundary_loss!r}")
        start_idx = batch["start_idx"].to(device).float()
        end_idx = batch["end_idx"].to(device).float()
        sigma = torch.sqrt(1.0 + (end_idx - start_idx).clamp(min=0) / n).unsqueeze(1)  # [B, 1]
        frames = torch.arange(n, device=device, dtype=torch.float32).unsqueeze(0)
        mask = out["video_mask"].to(device)
        loss = start_logits.new_zeros(())
        for logits, centre in ((start_logits, start_idx), (end_logits, end_idx - 1.0)):
            target = torch.exp(-0.5 * ((frames - centre.unsqueeze(1)) / sigma) ** 2) * mask
            target = target / target.sum(1, keepdim=True).clamp_min(1e-12)  # [B, N]
            log_p = torch.log_softmax(logits, dim=-1)  # [B, C, N]
            target = target.unsqueeze(1)  # [B, 1, N]; 0 * log 0 := 0
            kl = torch.where(target > 0, target * (torch.log(target.clamp_min(1e-30)) - log_p), 0.0).sum(-1)
            loss = loss + kl.mean()
        return loss

    def inside_loss(self, out: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
        """Masked mean BCE of the chunk-averaged inside probability vs ``batch['inside']`` (Eq. 11)."""
        prob = out["inside_prob"]
        target = batch["inside"].to(prob.device).float()
        mask = out["video_mask"].to(prob.device).float()
        # written out (not F.binary_cross_entropy) so it is autocast-safe; eps as in the released code
        bce = -(target * torch.log(prob + 1e-9) + (1 - target) * torch.log(1 - prob + 1e-9))
        return (bce * mask).sum() / mask.sum().clamp_min(1.0)

    def loss(self, out: dict[str, torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total = boundary_weight * boundary + inside_weight * inside.

        Returns:
            (scalar loss, {"loss", "boundary_loss", "inside_loss"}).
        """
        boundary = self.boundary_loss(out, batch)
        inside = self.inside_loss(out, batch)
        total = self.cfg.boundary_weight * boundary + self.cfg.inside_weight * inside
        return total, {"loss": total.detach(), "boundary_loss": boundary.detach(),
                       "inside_loss": inside.detach()}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


def build_audio_encoder(cfg: BaseConfig) -> AudioEncoder:
    """The Base audio encoder; with ``cfg.cpc`` set its first stage is a VGCL encoder.

    The models never read checkpoints: a config naming ``pretrained_encoder`` whose ``cpc`` is
    still unset must go through ``svg_core.engine.checkpoint.build_with_pretrained``, which reads
    the CPC/VGCL checkpoint, fills ``cfg.cpc`` and loads the encoder weights.

    Args:
        cfg: the Base (or VSLNet) config.

    Returns:
        the (randomly initialised) encoder.

    Raises:
        ValueError: ``pretrained_encoder`` set and ``cpc`` unset, or a mel-count or
            ``audio_subsample`` mismatch with ``cpc``.
    """
    if cfg.pretrained_encoder is not None and cfg.cpc is None:
        raise ValueError(
            f"cfg.pretrained_encoder is {cfg.pretrained_encoder!r} but cfg.cpc is unset: build it with "
            "svg_core.engine.checkpoint.build_with_pretrained(cfg), which reads that checkpoint"
        )
    if cfg.audio_frontend != "logmel":  # frozen pre-trained speech features in, adapter + GRU (speech_frontend.py)
        return build_frontend_audio_encoder(cfg, VGCLEncoder(cfg.cpc) if cfg.cpc is not None else None)
    if cfg.cpc is not None:
        if cfg.cpc.audio_frontend != "logmel":
            raise ValueError(f"the pretrained encoder takes {cfg.cpc.audio_frontend} features, the config log-Mels: "
                             f"set audio_frontend={cfg.cpc.audio_frontend}")
        if cfg.cpc.n_mels != cfg.n_mels:
            raise ValueError(f"pretrained encoder expects {cfg.cpc.n_mels} mels, config has {cfg.n_mels}")
        if cfg.cpc.audio_subsample != cfg.audio_subsample:
            raise ValueError(
                f"pretrained encoder stacks {cfg.cpc.audio_subsample} log-Mel frames per step, config has "
                f"audio_subsample={cfg.audio_subsample}: set audio_subsample={cfg.cpc.audio_subsample} "
                f"(train --set audio_subsample={cfg.cpc.audio_subsample})"
            )
        stage1: nn.Module = VGCLEncoder(cfg.cpc)
    else:
        stage1 = DavenetGruStage(
            cfg.n_mels, cfg.davenet1_stem, cfg.davenet1_dims, cfg.davenet1_blocks, cfg.audio_gru_dim,
            cfg.audio_kernel, cfg.audio_subsample,
        )  # fmt: skip
    stage2 = ResDAVEnet(stage1.out_dim, cfg.davenet2_stem, cfg.davenet2_dims, cfg.davenet2_blocks, cfg.audio_kernel)
    freeze = cfg.cpc is not None and cfg.freeze_pretrained
    return AudioEncoder(stage1, stage2, cfg.max_audio_frames, freeze_stage1=freeze)


def build_base(cfg: BaseConfig) -> BaseGrounder:
    """Build the Base grounder from its config alone (``model.cfg`` is ``cfg``)."""
    encoder = build_audio_encoder(cfg)
    return BaseGrounder(cfg, AudioQueryEncoder(encoder), VideoEncoder(cfg))

