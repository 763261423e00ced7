"""CPC pre-training of the audio encoder with video-guided curriculum learning (VGCL).

Paper sections 5.1-5.3; method-notes section 3. Pieces, top to bottom:

- ``CPCEncoder`` (g_enc): two Conv1d(k4, s2) + BN + ReLU, then a per-step MLP -> z [B, T/4, Z].
- ``VideoContext``: C3D features -> Conv1d(k1) + GELU + BN -> self-attention -> projection to Z.
- ``curriculum_window`` (Eq. 7) and the pacing functions ``stage_boundaries``/``stage_at``.
- ``VideoCrossAttention`` (Eq. 8): audio steps query [V_full; V_masked].
- ``VGCLEncoder``: (k stacked frames per step) -> g_enc -> cross-attention -> GRU -> c
  [B, T/(4 k), C]. This is what replaces the Base audio encoder's first stage (DAVEnet1 + GRU)
  after pre-training (paper Fig. 2); k = ``audio_subsample`` must match the grounding config's.
  With ``audio_frontend="whisper_base"`` g_enc is the trainable ``SpeechAdapter`` over frozen
  Whisper features (``models/speech_frontend.py``): c [B, T_e / adapter_stride, C] (no stacking).
- ``info_nce_loss`` (Eq. 6/9) and ``CPCPretrainModel``.

Fixed bugs of the released ``model/CPC_model.py`` (method-notes 3.5 and 6.9-6.12), each with a
regression test in ``tests/known_issues/``:

1. The log-softmax ran over contexts for a fixed target; here it runs over candidate targets
   z_j for a fixed context c_t, as Eq. (6)/(9) write it.
2. The loss was summed over the batch (scale grew with B); here it is a mean.
3. Only one context per utterance was used; here every context t with t + k valid predicts.
4. ``encode()`` passed an all-True key padding mask (every key ignored -> NaN); here the mask
   marks only padded video frames.
5. The curriculum jumped from 0.8 to 1.0; here every stage t = 0..kappa is visited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.models.blocks import SelfAttentionEncoder, conv_out_lengths, lengths_to_mask, run_rnn, stack_frames
from svg_core.models.speech_frontend import WHISPER_BASE_DIM, SpeechAdapter, check_frontend_fields, input_frames

Pacing = Literal["linear", "exponential", "logarithmic"]


# ---------------------------------------------------------------------------------------------
# Curriculum: pacing (paper 5.3, method-notes 3.6) and the mask of Eq. 7
# ---------------------------------------------------------------------------------------------


def stage_boundaries(
    total_steps: int, kappa: int, pacing: Pacing = "linear", exp_base: float = 1.3, log_c: float = 1.0
) -> list[int]:
    """Cumulative end step of each curriculum stage t = 0..kappa (kappa + 1 stages).

    Stage t uses the expansion ratio t / kappa; the last stage (t = kappa) is the whole video.
    Fraction of the budget done after stage t (n = kappa + 1 stages, u = (t + 1) / n):

    - linear: u (equal steps per stage);
    - exponential: (b^(n u) - 1) / (b^n - 1), later stages longer;
    - logarithmic: ln(1 + c n u) / ln(1 + c n), later stages shorter.

    Every stage gets at least one step when ``total_steps >= kappa + 1``.

    Args:
        total_steps: training steps (or epochs) of the whole schedule.
        kappa: number of curriculum steps (paper default 10).
        pacing: "linear", "exponential" or "logarithmic".
        exp_base: b > 1 of the exponential pacing.
        log_c: c > 0 of the logarithmic pacing.

    Returns:
        kappa + 1 non-decreasing ints, the last equal to ``total_steps``.
    """
    if total_steps < 1 or kappa < 1:
        raise ValueError(f"total_steps and kappa must be >= 1, found {total_steps} and {kappa}")
    n = kappa + 1
    t = torch.arange(1, n + 1, dtype=torch.float64)
    if pacing == "linear":
        frac = t / n
    elif pacing == "exponential":
        if exp_base <= 1.0:
            raise ValueError(f"exp_base must be > 1, found {exp_base}")
        frac = (exp_base**t - 1) / (exp_base**n - 1)
    elif pacing == "logarithmic":
        if log_c <= 0.0:
            raise ValueError(f"log_c must be > 0, found {log_c}")
        frac = torch.log1p(log_c * t) / math.log1p(log_c * n)
    else:
        raise ValueError(f"pacing must be linear, exponential or logarithmic, found {pacing!r}")
    ends = [int(round(total_steps * float(f))) for f in frac]
    ends[-1] = total_steps
    if total_steps >= n:  # at least one step per stage, keeping the total
        for i in range(n):
            ends[i] = max(ends[i], (ends[i - 1] if i else 0) + 1)
        for i in range(n - 1, -1, -1):
            ends[i] = min(ends[i], total_steps - (n - 1 - i))
    return ends


def stage_at(
    step: int, total_steps: int, kappa: int, pacing: Pacing = "linear", exp_base: float = 1.3, log_c: float = 1.0
) -> int:
    """Curriculum stage t in [0, kappa] of a 0-based training step (steps past the end -> kappa)."""
    for t, end in enumerate(stage_boundaries(total_steps, kappa, pacing, exp_base, log_c)):
        if step < end:
            return t
    return kappa


def curriculum_window(
    start_idx: torch.Tensor,
    end_idx: torch.Tensor,
    stage: int,
    kappa: int,
    n_frames: int,
    generator: torch.Generator | None = None,
    random_gamma: bool = True,
    independent_gamma: bool = False,
) -> torch.Tensor:
    """Video frames kept by the curriculum mask of Eq. (7).

    M_l = tau_s - (t / kappa) * gamma * tau_s,  M_r = tau_e + (t / kappa) * gamma * (L - tau_e),
    gamma ~ U(0, 1). Frame i covers [i, i + 1) and is kept iff it overlaps [M_l, M_r), so at
    t = 0 the window is exactly the frames overlapping the ground-truth moment (the batch's
    ``inside``). At t = kappa the window is the whole video, deterministically (as in the
    released code's last stage). At least one frame is always kept.

    Args:
        start_idx, end_idx: float [B], the moment on the video grid (tau_s, tau_e).
        stage: t in [0, kappa].
        kappa: number of curriculum steps.
        n_frames: L = N_v.
        generator: CPU generator for gamma (None only when ``random_gamma`` is False or t is 0/kappa).
        random_gamma: False = the "w/o random" ablation (gamma = 1).
        independent_gamma: draw gamma_l and gamma_r separately (the released code) instead of one
            shared gamma (the paper's Eq. 7).

    Returns:
        bool [B, N_v], True at kept frames.
    """
    if not 0 <= stage <= kappa:
        raise ValueError(f"stage must be in [0, {kappa}], found {stage}")
    device = start_idx.device
    batch = start_idx.shape[0]
    if stage == kappa:
        return torch.ones(batch, n_frames, dtype=torch.bool, device=device)
    start = start_idx.double().clamp(0, n_frames)
    end = torch.maximum(end_idx.double().clamp(0, n_frames), start)
    if random_gamma and stage > 0:
        if generator is None:
            raise ValueError("curriculum_window needs a generator when random_gamma is True")
        gamma_l = torch.rand(batch, generator=generator, dtype=torch.float64).to(device)
        gamma_r = torch.rand(batch, generator=generator, dtype=torch.float64).to(device) if independent_gamma else gamma_l
    else:
        gamma_l = gamma_r = torch.ones(batch, dtype=torch.float64, device=device)
    ratio = stage / kappa
    m_left = start - ratio * gamma_l * start
    m_right = end + ratio * gamma_r * (n_frames - end)
    frames = torch.arange(n_frames, device=device, dtype=torch.float64).unsqueeze(0)
    keep = (frames + 1 > m_left.unsqueeze(1)) & (frames < m_right.unsqueeze(1))
    first = m_left.floor().long().clamp(0, n_frames - 1)
    keep[torch.arange(batch, device=device), first] = True
    return keep


def random_crop(
    audio: torch.Tensor, lengths: torch.Tensor, crop_frames: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop ``crop_frames`` frames inside each item's valid region (paper: 256-frame crops).

    Items shorter than the crop keep all their frames (and their padding). With no generator
    the crop is centred (deterministic, for evaluation).

    Args:
        audio: float [B, T, F]; lengths: int64 [B].
        crop_frames: frames to keep.
        generator: CPU generator for the offsets, or None for centred crops.

    Returns:
        float [B, min(T, crop_frames), F] (zeros past each crop length) and int64 [B] lengths.
    """
    batch, total, _ = audio.shape
    width = min(total, crop_frames)
    slack = (lengths.cpu() - width).clamp(min=0)
    if generator is None:
        offset = slack // 2
    else:
        offset = (torch.rand(batch, generator=generator, dtype=torch.float64) * (slack + 1).double()).long()
        offset = torch.minimum(offset, slack)
    index = (offset.unsqueeze(1) + torch.arange(width)).clamp(max=total - 1).to(audio.device)
    crop = torch.gather(audio, 1, index.unsqueeze(-1).expand(-1, -1, audio.shape[-1]))
    crop_len = lengths.clamp(max=width)
    return crop * lengths_to_mask(crop_len, width).unsqueeze(-1).to(crop.dtype), crop_len


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class CPCConfig:
    """CPC / VGCL pre-training of the audio encoder (paper 5.1-5.3)."""

    n_mels: int = 128  # log-Mel bands of the input
    # k log-Mel frames stacked into one step before g_enc (see BaseConfig.audio_subsample): z and c
    # then run at 40 k ms per step. 1 = the paper and every config.json written before this field
    # (models.LEGACY_DEFAULTS reads a missing key as 1); 4 for new configs. Must equal the
    # grounding config's value when this encoder becomes its first stage.
    audio_subsample: int = 4
    enc_hidden: int = 128  # channels of the first g_enc convolution
    z_dim: int = 256  # latent z (g_enc output)
    c_dim: int = 256  # context c (GRU output); becomes the DAVEnet2 input width in grounding
    prediction_steps: int = 3  # K future steps
    crop_frames: int = 256  # audio crop length in log-Mel frames (ablation: 128)
    video_guided: bool = True  # False = plain CPC ("Base+CPC"): no video, no cross-attention
    video_dim_in: int = 500  # C3D feature size
    n_video_frames: int = 64  # N_v = L in Eq. 7
    video_dim: int = 1024  # width of the video self-attention
    video_heads: int = 4
    video_layers: int = 2  # post-LN encoder layers of the video self-attention
    video_ff_dim: int = 512  # their feed-forward width (512 in the released code)
    use_self_attention: bool = True  # ablation "w/o self-attention": drop the encoder layers
    use_entire_video: bool = True  # ablation "w/o entire video": keep only the masked copy
    use_curriculum: bool = True  # ablation "w/o CL": whole video from the first step
    random_gamma: bool = True  # ablation "w/o random": gamma = 1
    independent_gamma: bool = False  # released code: separate gamma_l, gamma_r; paper: one gamma
    cross_heads: int = 4
    cross_dropout: float = 0.1  # attention dropout of the cross-attention
    cross_activation: Literal["relu", "dropout"] = "relu"  # Eq. 8 ReLU; released code: dropout 0.2
    dropout: float = 0.1  # dropout of the video self-attention
    kappa: int = 10  # curriculum stages (t = 0..kappa)
    pacing: Pacing = "linear"
    pacing_exp_base: float = 1.3  # b of the exponential pacing
    pacing_log_c: float = 1.0  # c of the logarithmic pacing
    seed: int = 0  # seeds the crops and gammas (one generator per training step)
    # Speech front-end (models/speech_frontend.py); a config.json without these fields is log-Mel.
    audio_frontend: Literal["logmel", "whisper_base"] = "logmel"  # whisper_base: g_enc is a SpeechAdapter
    # (LN, Linear(512, enc_hidden), strided Conv1d to z_dim) over frozen Whisper base features; crop_frames
    # stays in 10 ms units and is converted to feature frames
    frontend_pool: int = 2  # whisper_base: encoder frames averaged before the model (50 -> 25 Hz)
    adapter_kernel: int = 5  # whisper_base: kernel of the adapter's strided convolution (odd)
    adapter_stride: int = 2  # whisper_base: its down-sampling (25 -> 12.5 Hz z and c steps)

    def __post_init__(self) -> None:
        check_frontend_fields(self)
        if self.prediction_steps < 1:
            raise ValueError(f"prediction_steps must be >= 1, found {self.prediction_steps}")
        if self.audio_subsample < 1:
            raise ValueError(f"audio_subsample must be >= 1, found {self.audio_subsample}")
        if self.crop_frames < 4 * self.audio_subsample * (self.prediction_steps + 1):
            raise ValueError(
                f"crop_frames too short for K={self.prediction_steps} at audio_subsample="
                f"{self.audio_subsample}, found {self.crop_frames}"
            )
        if self.video_dim % self.video_heads or self.z_dim % self.cross_heads:
            raise ValueError(
                f"widths must divide by the heads, found video_dim={self.video_dim}, z_dim={self.z_dim}"
            )

    @classmethod
    def paper(cls, **overrides) -> "CPCConfig":
        """Paper/released-code sizes: Z = C = 256, 1024-d video self-attention, 256-frame crops,
        every 10 ms frame into g_enc (audio_subsample = 1)."""
        return cls(**{"audio_subsample": 1, **overrides})

    @classmethod
    def small(cls, **overrides) -> "CPCConfig":
        """A size that pre-trains on a 2-core CPU in minutes."""
        base = dict(enc_hidden=64, z_dim=128, c_dim=128, video_dim=128, video_ff_dim=256, video_layers=1)
        return cls(**{**base, **overrides})


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------


class CPCEncoder(nn.Module):
    """g_enc (method-notes 3.1): 2 x [Conv1d(k4, s2, p1, no bias) + BN + ReLU], then a per-step MLP.

    Args:
        n_mels: input features per step (log-Mel bands x frames stacked per step).
        hidden: channels of the first convolution.
        z_dim: output width Z.
    """

    def __init__(self, n_mels: int, hidden: int, z_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, hidden, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.conv2 = nn.Conv1d(hidden, z_dim, 4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(z_dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(z_dim), nn.ReLU(), nn.Linear(z_dim, z_dim, bias=False),
            nn.LayerNorm(z_dim), nn.ReLU(), nn.Linear(z_dim, z_dim, bias=False),
            nn.LayerNorm(z_dim), nn.ReLU(), nn.Linear(z_dim, z_dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x float [B, T, n_mels] (zeros at padding), lengths int64 [B] (>= 4).

        Returns:
            z float [B, floor(T/4), Z] (zeros at padding) and int64 [B] lengths floor(floor(L/2)/2).
        """
        h = x.transpose(1, 2)
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            lengths = conv_out_lengths(lengths, 4, 2, 1)
            h = F.relu(bn(conv(h)))
            h = h * lengths_to_mask(lengths, h.shape[-1]).unsqueeze(1).to(h.dtype)
        z = self.mlp(h.transpose(1, 2))
        return z * lengths_to_mask(lengths, z.shape[1]).unsqueeze(-1).to(z.dtype), lengths


class VideoContext(nn.Module):
    """Video side of VGCL (method-notes 3.2): C3D -> [B, N_v, Z] keys/values for the audio.

    Conv1d(500, Dv, k1) + GELU + BN -> SelfAttentionEncoder(Dv) -> Linear(Dv, 2Z, no bias) ->
    ReLU -> LN -> Linear(2Z, Z, no bias) -> ReLU.
    """

    def __init__(self, cfg: CPCConfig) -> None:
        super().__init__()
        self.init_conv = nn.Conv1d(cfg.video_dim_in, cfg.video_dim, 1)
        self.init_bn = nn.BatchNorm1d(cfg.video_dim)
        layers = cfg.video_layers if cfg.use_self_attention else 0
        self.self_attention = SelfAttentionEncoder(cfg.video_dim, cfg.video_heads, layers, cfg.video_ff_dim, cfg.dropout)
        self.proj = nn.Sequential(
            nn.Linear(cfg.video_dim, 2 * cfg.z_dim, bias=False), nn.ReLU(), nn.LayerNorm(2 * cfg.z_dim),
            nn.Linear(2 * cfg.z_dim, cfg.z_dim, bias=False), nn.ReLU(),
        )  # fmt: skip

    def forward(self, video: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """Args: video float [B, N_v, 500], video_mask bool [B, N_v]. Returns float [B, N_v, Z]."""
        keep = video_mask.unsqueeze(-1).to(video.dtype)
        h = self.init_bn(F.gelu(self.init_conv(video.transpose(1, 2)))).transpose(1, 2) * keep
        return self.proj(self.self_attention(h, video_mask)) * keep


class VideoCrossAttention(nn.Module):
    """Eq. (8): Z~ = LayerNorm(z + act(softmax(Q_a K_v^T) V_v)), audio steps as queries.

    ``act`` is ReLU (paper) or Dropout(0.2) (released code), chosen by ``cfg.cross_activation``.
    """

    def __init__(self, cfg: CPCConfig) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(cfg.z_dim, cfg.cross_heads, dropout=cfg.cross_dropout, batch_first=True)
        self.act: nn.Module = nn.ReLU() if cfg.cross_activation == "relu" else nn.Dropout(0.2)
        self.norm = nn.LayerNorm(cfg.z_dim)

    def forward(
        self, z: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            z: float [B, T', Z] audio latents (queries).
            keys: float [B, K_v, Z] video tokens (keys and values); key_mask: bool [B, K_v], True = visible.

        Returns:
            Z~ float [B, T', Z] and the head-averaged attention float [B, T', K_v].
        """
        # key_padding_mask: True = ignore. The released encode() passed an all-True mask (NaNs).
        attended, weights = self.attn(z, keys, keys, key_padding_mask=~key_mask, need_weights=True)
        return self.norm(z + self.act(attended)), weights


class VGCLEncoder(nn.Module):
    """Frame stacking -> g_enc -> (video cross-attention) -> GRU: log-Mel [B, T, 128] -> context
    c [B, T/(4 k), C], k = ``cfg.audio_subsample``.

    This module is what replaces the Base audio encoder's first stage after pre-training.
    With ``window_mask`` None (grounding time) both video copies are the full video.
    """

    def __init__(self, cfg: CPCConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.audio_frontend == "logmel":
            # after stacking, g_enc's two floor-halvings must leave at least one step
            self.genc: nn.Module = CPCEncoder(cfg.n_mels * cfg.audio_subsample, cfg.enc_hidden, cfg.z_dim)
            self.min_input_frames = 4 * cfg.audio_subsample
        else:  # frozen speech features in: the trainable adapter is g_enc, trained with the video guidance
            self.genc = SpeechAdapter(WHISPER_BASE_DIM, cfg.enc_hidden, cfg.z_dim, cfg.adapter_kernel, cfg.adapter_stride)
            self.min_input_frames = SpeechAdapter.min_input_frames
        self.video = VideoContext(cfg) if cfg.video_guided else None
        self.cross = VideoCrossAttention(cfg) if cfg.video_guided else None
        self.gru = nn.GRU(cfg.z_dim, cfg.c_dim, batch_first=True)
        self.out_dim = cfg.c_dim

    def encode(
        self,
        audio: torch.Tensor,
        lengths: torch.Tensor,
        video: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        window_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Full encoding with the latents needed by the CPC loss.

        Args:
            audio: float [B, T, n_mels]; lengths: int64 [B] (>= ``min_input_frames``).
            video: float [B, N_v, 500]; video_mask: bool [B, N_v] (needed when video-guided).
            window_mask: bool [B, N_v], the curriculum window of the masked copy (None = all).

        Returns:
            dict with ``z`` [B, T', Z] (targets), ``c`` [B, T', C], ``lengths`` [B] and, when
            video-guided, ``cross_attention`` [B, T', K_v] (K_v = 2 N_v, or N_v without the
            entire-video copy).
        """
        k = self.cfg.audio_subsample if self.cfg.audio_frontend == "logmel" else 1  # stacking is for log-Mels only
        steps, lengths = stack_frames(audio, lengths, k)  # [B, ceil(T / k), k * n_mels]
        z, lengths = self.genc(steps, lengths)
        out: dict[str, torch.Tensor] = {"z": z, "lengths": lengths}
        query = z
        if self.video is not None and self.cross is not None:
            if video is None:
                raise ValueError("a video-guided VGCL encoder needs batch['video']")
            if video_mask is None:
                video_mask = torch.ones(video.shape[:2], dtype=torch.bool, device=video.device)
            tokens = self.video(video, video_mask)  # [B, N_v, Z]
            masked = video_mask if window_mask is None else video_mask & window_mask
            if self.cfg.use_entire_video:
                keys, key_mask = torch.cat([tokens, tokens], 1), torch.cat([video_mask, masked], 1)
            else:
                keys, key_mask = tokens, masked
            query, out["cross_attention"] = self.cross(z, keys, key_mask)
        c = run_rnn(self.gru, query, lengths)
        out["c"] = c * lengths_to_mask(lengths, c.shape[1]).unsqueeze(-1).to(c.dtype)
        return out

    def forward(
        self,
        audio: torch.Tensor,
        lengths: torch.Tensor,
        video: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Stage-1 interface of ``AudioEncoder``: returns (c [B, T/(4 k), C], lengths [B], extras)."""
        out = self.encode(audio, lengths, video, video_mask)
        extras = {"cross_attention": out["cross_attention"]} if "cross_attention" in out else {}
        return out["c"], out["lengths"], extras


def info_nce_loss(
    z: torch.Tensor, c: torch.Tensor, lengths: torch.Tensor, predictors: nn.ModuleList
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """InfoNCE of Eq. (6)/(9) with K = len(predictors), from every valid context position.

    For each k and each context (b, t) with t + k < L_b: logits = (W_k c_{b,t}) . z_j over all
    valid latents z_j of the batch (other times of the same utterance and other utterances), the
    positive being z_{b,t+k}; loss_k = mean cross-entropy over contexts; loss = mean over k.

    Args:
        z: float [B, T', Z] targets (pre-attention latents).
        c: float [B, T', C] contexts.
        lengths: int64 [B] valid steps.
        predictors: K modules W_k mapping C -> Z.

    Returns:
        the scalar loss and {"cpc_loss_k{k}", "cpc_acc_k{k}"} floats.
    """
    batch, steps, _ = z.shape
    valid = lengths_to_mask(lengths, steps)
    candidates = z[valid]  # [N, Z], N = sum of lengths
    flat_index = torch.full((batch, steps), -1, dtype=torch.long, device=z.device)
    flat_index[valid] = torch.arange(candidates.shape[0], device=z.device)
    losses, logs = [], {}
    for k, predictor in enumerate(predictors, start=1):
        has_future = lengths_to_mask((lengths - k).clamp(min=0), steps)  # t + k < L_b
        if not bool(has_future.any()):
            continue
        b_idx, t_idx = has_future.nonzero(as_tuple=True)
        logits = predictor(c[b_idx, t_idx]) @ candidates.T  # [M contexts, N candidates]
        target = flat_index[b_idx, t_idx + k]
        loss_k = F.cross_entropy(logits.float(), target)
        losses.append(loss_k)
        logs[f"cpc_loss_k{k}"] = loss_k.detach()
        logs[f"cpc_acc_k{k}"] = (logits.argmax(1) == target).float().mean()
    if not losses:  # every utterance shorter than k + 1 steps: nothing to predict
        return (z.sum() + c.sum()) * 0.0, logs
    return torch.stack(losses).mean(), logs


class CPCPretrainModel(nn.Module):
    """CPC / VGCL pre-training model: crops, curriculum window, encoder, InfoNCE.

    Call ``set_progress(step, total_steps)`` before each training step: it selects the
    curriculum stage and seeds this step's crops and gammas (so a resumed run draws the same
    ones). In eval mode the crop is centred and the window is the whole video.

    Args:
        cfg: the CPC config.
        encoder: the ``VGCLEncoder`` to pre-train (kept as ``self.encoder``).
    """

    def __init__(self, cfg: CPCConfig, encoder: VGCLEncoder) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.predictors = nn.ModuleList(nn.Linear(cfg.c_dim, cfg.z_dim) for _ in range(cfg.prediction_steps))
        self.step, self.stage = 0, cfg.kappa

    def set_progress(self, step: int, total_steps: int) -> int:
        """Set the 0-based training step; returns the curriculum stage t in [0, kappa]."""
        self.step = step
        cfg = self.cfg
        self.stage = (
            stage_at(step, total_steps, cfg.kappa, cfg.pacing, cfg.pacing_exp_base, cfg.pacing_log_c)
            if cfg.use_curriculum
            else cfg.kappa
        )
        return self.stage

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Args:
            batch: the dataset batch dict (``audio``, ``audio_lengths``, ``video``, ``video_mask``,
                ``start_idx``, ``end_idx``).
            generator: CPU generator for crops and gammas; default: seeded from (seed, step).

        Returns:
            dict with ``z``, ``c`` [B, T', *], ``lengths`` [B], ``window_mask`` [B, N_v] and,
            when video-guided, ``cross_attention`` [B, T', K_v].
        """
        cfg = self.cfg
        if self.training and generator is None:
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
        audio, lengths = batch["audio"], batch["audio_lengths"].to(batch["audio"].device)
        crop = input_frames(cfg.crop_frames, cfg.audio_frontend, cfg.frontend_pool)  # 10 ms -> input frames
        audio, lengths = random_crop(audio, lengths, crop, generator if self.training else None)
        min_frames = self.encoder.min_input_frames
        lengths = lengths.clamp(min=min_frames)
        if audio.shape[1] < min_frames:
            audio = F.pad(audio, (0, 0, 0, min_frames - audio.shape[1]))
        video, window = batch.get("video"), None
        video_mask = batch.get("video_mask")
        if cfg.video_guided:
            stage = self.stage if self.training else cfg.kappa
            window = curriculum_window(
                batch["start_idx"], batch["end_idx"], stage, cfg.kappa, video.shape[1],
                generator, cfg.random_gamma, cfg.independent_gamma,
            )  # fmt: skip
        out = self.encoder.encode(audio, lengths, video, video_mask, window)
        if window is not None:
            out["window_mask"] = window
        return out

    def loss(self, out: dict[str, torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """InfoNCE on the video-informed contexts (Eq. 9). Returns (loss, logs incl. ``loss``)."""
        loss, logs = info_nce_loss(out["z"], out["c"], out["lengths"], self.predictors)
        logs["loss"] = loss.detach()
        logs["curriculum_stage"] = float(self.stage)
        return loss, logs


def build_cpc(cfg: CPCConfig) -> CPCPretrainModel:
    """Build the pre-training model of a ``CPCConfig``."""
    return CPCPretrainModel(cfg, VGCLEncoder(cfg))
