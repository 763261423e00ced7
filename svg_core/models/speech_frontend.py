"""Trainable adapter over frozen pre-trained speech features (``audio_frontend="whisper_base"``).

The frozen encoder (Whisper base through CTranslate2, ``svg_core.audio.whisper_encoder``) runs
outside the model, live or from a cache, so the model is still built from its config alone and
its checkpoint holds only trainable weights. What the model sees in ``batch["audio"]``:

    encoder features [B, T_e, 512] at 50 / frontend_pool Hz (25 Hz with the default pool of 2)
    -> SpeechAdapter: LayerNorm -> Linear(512, H) -> GELU -> Conv1d(H, out, k, stride s)
       -> [B, T_e / s, out] at ~12.5 Hz
    Base / VSLNet: -> GRU(audio_gru_dim)  (AdapterGruStage, in place of DAVEnet1 + GRU)
                   -> per-step projection to D (Conv1x1 + BN + ReLU, in place of DAVEnet2)
                   -> A [B, T_q, D], T_q = T_e / s: the usual query-encoder interface
    VGCL pre-training: the adapter is g_enc of ``VGCLEncoder`` (its output is the CPC target z),
                   then the video cross-attention and the GRU, trained with the curriculum.

The log-Mel path (``audio_frontend="logmel"``, the default and what every config.json without
the field means) is untouched: ``build_frontend_audio_encoder`` is only called for the other value.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.audio.whisper_encoder import FEATURE_DIM as WHISPER_BASE_DIM
from svg_core.audio.whisper_encoder import FRAME_HZ as WHISPER_BASE_HZ
from svg_core.models.audio_encoder import AudioEncoder
from svg_core.models.blocks import ResDAVEnet, conv_out_lengths, lengths_to_mask, run_rnn

FRONTENDS = ("logmel", "whisper_base")
LOGMEL_HZ = 100.0  # log-Mel frames per second (10 ms hop)


def input_frame_hz(audio_frontend: str, frontend_pool: int) -> float:
    """Frames per second of ``batch["audio"]``: 100 (log-Mel) or 50 / pool (Whisper base).

    >>> input_frame_hz("logmel", 2), input_frame_hz("whisper_base", 2)
    (100.0, 25.0)
    """
    if audio_frontend == "logmel":
        return LOGMEL_HZ
    if audio_frontend == "whisper_base":
        return WHISPER_BASE_HZ / frontend_pool
    raise ValueError(f"audio_frontend must be one of {FRONTENDS}, found {audio_frontend!r}")


def input_frames(n_logmel_frames: int, audio_frontend: str, frontend_pool: int) -> int:
    """A length given in 10 ms log-Mel frames (``max_audio_frames``, ``crop_frames``) in input frames.

    >>> input_frames(800, "logmel", 2), input_frames(800, "whisper_base", 2), input_frames(256, "whisper_base", 2)
    (800, 200, 64)
    """
    return max(1, int(round(n_logmel_frames * input_frame_hz(audio_frontend, frontend_pool) / LOGMEL_HZ)))


def check_frontend_fields(cfg) -> None:
    """Validate the front-end fields of a Base/VSLNet/CPC config (called from ``__post_init__``).

    Raises:
        ValueError: unknown front-end, pool or stride below 1, or an even adapter kernel.
    """
    if cfg.audio_frontend not in FRONTENDS:
        raise ValueError(f"audio_frontend must be one of {FRONTENDS}, found {cfg.audio_frontend!r}")
    if cfg.frontend_pool < 1 or cfg.adapter_stride < 1:
        raise ValueError(f"frontend_pool and adapter_stride must be >= 1, found {cfg.frontend_pool}, {cfg.adapter_stride}")
    if cfg.adapter_kernel % 2 != 1:
        raise ValueError(f"adapter_kernel must be odd, found {cfg.adapter_kernel}")


class SpeechAdapter(nn.Module):
    """Projection + temporal down-sampling of frozen encoder features, masked.

    Args:
        in_dim: encoder feature width (512 for Whisper base).
        hidden_dim: H, width of the projection.
        out_dim: output width.
        kernel: odd temporal kernel of the strided convolution.
        stride: down-sampling factor s.
    """

    min_input_frames = 1  # padding k // 2 leaves at least one output step for any input step

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, kernel: int = 5, stride: int = 2) -> None:
        super().__init__()
        if kernel % 2 != 1 or stride < 1:
            raise ValueError(f"kernel must be odd and stride >= 1, found {kernel} and {stride}")
        self.kernel, self.stride = kernel, stride
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, hidden_dim)
        self.conv = nn.Conv1d(hidden_dim, out_dim, kernel, stride=stride, padding=kernel // 2)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            x: float [B, T, in_dim] encoder features (padding may hold anything).
            lengths: int64 [B] valid frames.

        Returns:
            (float [B, ceil(T / s), out_dim], int64 [B] lengths ``floor((L - 1) / s) + 1``), zeros at padding.
        """
        if x.dim() != 3 or x.shape[-1] != self.norm.normalized_shape[0]:
            raise ValueError(f"features must be [batch, frames, {self.norm.normalized_shape[0]}], found {tuple(x.shape)}")
        keep = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
        h = F.gelu(self.proj(self.norm(x))) * keep  # [B, T, H]; LN/bias of padding re-zeroed before the conv
        out_len = conv_out_lengths(lengths, self.kernel, self.stride, self.kernel // 2)
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)  # [B, T', out]
        return h * lengths_to_mask(out_len, h.shape[1]).unsqueeze(-1).to(h.dtype), out_len


class AdapterGruStage(nn.Module):
    """Stage 1 of a front-end Base model: ``SpeechAdapter`` then a unidirectional GRU.

    Same interface as ``DavenetGruStage``: ``(audio, lengths, video, video_mask) -> (h, lengths, {})``.

    Args:
        adapter: the ``SpeechAdapter``.
        gru_dim: GRU width (the stage's ``out_dim``).
    """

    min_input_frames = 1

    def __init__(self, adapter: SpeechAdapter, gru_dim: int) -> None:
        super().__init__()
        self.adapter = adapter
        self.gru = nn.GRU(adapter.out_dim, gru_dim, batch_first=True)
        self.out_dim = gru_dim

    def forward(
        self,
        audio: torch.Tensor,
        lengths: torch.Tensor,
        video: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Args: audio float [B, T_e, 512], lengths int64 [B] (video unused).

        Returns:
            (float [B, T_e / s, gru_dim], int64 [B], {}), zeros at padding.
        """
        h, lengths = self.adapter(audio, lengths)
        h = run_rnn(self.gru, h, lengths)
        return h * lengths_to_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype), lengths, {}


def build_frontend_audio_encoder(cfg, stage1: nn.Module | None = None) -> AudioEncoder:
    """The audio encoder of a Base/VSLNet config with ``audio_frontend="whisper_base"``.

    Args:
        cfg: the Base (or VSLNet) config; reads ``adapter_*``, ``frontend_pool``, ``audio_gru_dim``,
            ``model_dim``, ``max_audio_frames`` (10 ms frames, converted to input frames),
            ``cpc`` and ``freeze_pretrained``.
        stage1: a VGCL encoder built from ``cfg.cpc`` (its g_enc is the adapter), or None for
            ``AdapterGruStage``.

    Returns:
        ``AudioEncoder``: stage 1, then a per-step projection to D (no further down-sampling).

    Raises:
        ValueError: a pretrained stage whose front-end or pooling differs from ``cfg``'s.
    """
    if cfg.audio_frontend != "whisper_base":
        raise ValueError(f"build_frontend_audio_encoder needs audio_frontend='whisper_base', found {cfg.audio_frontend!r}")
    if cfg.cpc is not None and (cfg.cpc.audio_frontend, cfg.cpc.frontend_pool) != (cfg.audio_frontend, cfg.frontend_pool):
        raise ValueError(
            f"the pretrained encoder was trained on audio_frontend={cfg.cpc.audio_frontend!r} with pool "
            f"{cfg.cpc.frontend_pool}, the grounding config asks for {cfg.audio_frontend!r} with pool "
            f"{cfg.frontend_pool}: train both with the same --audio-frontend"
        )
    if stage1 is None:
        adapter = SpeechAdapter(WHISPER_BASE_DIM, cfg.adapter_dim, cfg.adapter_dim, cfg.adapter_kernel, cfg.adapter_stride)
        stage1 = AdapterGruStage(adapter, cfg.audio_gru_dim)
    stage2 = ResDAVEnet(stage1.out_dim, cfg.model_dim, (), ())  # stem only: Conv1x1 + BN (+ ReLU) to D
    max_frames = input_frames(cfg.max_audio_frames, cfg.audio_frontend, cfg.frontend_pool)
    return AudioEncoder(stage1, stage2, max_frames, freeze_stage1=cfg.cpc is not None and cfg.freeze_pretrained)
