"""``Grounder``: the one class the app and notebooks call to localise a spoken (or typed) query.

    grounder = Grounder.from_checkpoint("checkpoints/vgcl_small")
    result = grounder.localize(video_features, duration_sec=120.0, audio=wave_16k)
    result["start_sec"], result["end_sec"], result["top5_sec"], result["attention"]

Follows moment_detr's ``MomentDETRPredictor``: the model is built once, ``localize`` does the
pre-processing (log-Mel, or the frozen Whisper encoder of a speech front-end model, and video
resampling), one forward pass and the span decoding.
"""

from __future__ import annotations

import hashlib

import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from svg_core.audio.frontend import N_FFT, SAMPLE_RATE, log_mel, n_frames
from svg_core.data.video_features import check_duration, resample_features, validate_features
from svg_core.models import BaseConfig, FSANConfig, GroundingConfig, SILConfig, TextConfig
from svg_core.engine.spans import decode_proposals, decode_spans
from svg_core.errors import UserInputError


def _steps_to_frames(weights: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Spread weights over query steps onto the log-Mel frames those steps cover.

    Args:
        weights: float [R, T_q] (valid steps only), one row per video frame.
        n_frames: T_a, log-Mel frames of the query.

    Returns:
        float [R, T_a]; step q covers frames [q T_a / T_q, (q+1) T_a / T_q) (nearest mapping),
        each row renormalised to the sum it had.
    """
    up = F.interpolate(weights.unsqueeze(0), size=n_frames, mode="nearest").squeeze(0)
    scale = weights.sum(-1, keepdim=True) / up.sum(-1, keepdim=True).clamp_min(1e-12)
    return up * scale


class Grounder:
    """Spoken (or text) video grounding predictor.

    Args:
        model: a grounding model from ``svg_core.models.build_model`` (Base, VSLNet, Text or the
            weakly supervised SIL, whose answer is the best cell of its proposal map, or FSAN,
            whose answer is the best segment of its alignment map).
        cfg: its config.
        device: where to run; default: where the model's parameters are.
        meta: checkpoint metadata (metrics, notes), kept as ``self.meta``.
    """

    def __init__(self, model: nn.Module, cfg: GroundingConfig, device: str | torch.device | None = None,
                 meta: dict | None = None) -> None:
        if not isinstance(cfg, (GroundingConfig, SILConfig, FSANConfig)):
            raise ValueError(f"Grounder needs a grounding model config, found {type(cfg).__name__}")
        if device is None:
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.meta = meta or {}
        self._speech_features = None  # the frozen encoder of a speech front-end model, built on first use
        self._last_encoded: tuple[bytes, torch.Tensor] | None = None  # (wave digest, its features): see _encoded

    @property
    def audio_frontend(self) -> str:
        """"logmel", or the frozen speech encoder the model listens through ("whisper_base")."""
        return self.cfg.audio_frontend if isinstance(self.cfg, (BaseConfig, FSANConfig, SILConfig)) else "logmel"

    def speech_features(self):
        """The live front-end of a ``whisper_base`` model (``SpeechFeatures``: wave -> [T_e, 512]).

        It runs where the model runs (CUDA when the Grounder is on a GPU and CTranslate2 can use
        it, else the CPU, int8) with as many CPU threads as torch has; it is not in the checkpoint.
        """
        if self._speech_features is None:
            from svg_core.audio.whisper_encoder import SpeechFeatures

            self._speech_features = SpeechFeatures(pool=self.cfg.frontend_pool,
                                                   device="auto" if self.device.type == "cuda" else "cpu",
                                                   cpu_threads=torch.get_num_threads())
        return self._speech_features

    def _encoded(self, wave: np.ndarray) -> torch.Tensor:
        """The frozen encoder's features of ``wave``, remembered for the last wave: one query grounded
        in many videos (search's VCMR, the app's "all videos") runs the encoder once, not per video."""
        key = hashlib.blake2b(wave.tobytes(), digest_size=16).digest()
        if self._last_encoded is None or self._last_encoded[0] != key:
            self._last_encoded = (key, self.speech_features()(wave))
        return self._last_encoded[1]

    @classmethod
    def from_checkpoint(cls, directory: str | os.PathLike, device: str | torch.device | None = None) -> "Grounder":
        """Load a checkpoint folder (config.json + model.safetensors) and wrap it."""
        from svg_core.engine.checkpoint import load_checkpoint  # lazy: keeps ``import svg_core.predictor`` light

        device = torch.device(device) if device is not None else torch.device("cpu")
        model, cfg, meta = load_checkpoint(directory, device=device)
        return cls(model, cfg, device=device, meta=meta)

    @property
    def query_kind(self) -> str:
        """"text" for a text grounder, else "audio"."""
        text_fsan = isinstance(self.cfg, FSANConfig) and self.cfg.query == "text"
        return "text" if isinstance(self.cfg, TextConfig) or text_fsan else "audio"

    @property
    def supervision(self) -> str:
        """"weakly supervised" (SIL, FSAN: trained without timestamps) or "supervised"."""
        return "weakly supervised" if isinstance(self.cfg, (SILConfig, FSANConfig)) else "supervised"

    def _batch(self, video_features: np.ndarray, audio: np.ndarray | None, text: str | None) -> dict:
        video = torch.from_numpy(resample_features(video_features, n_frames=self.cfg.n_video_frames))
        batch: dict = {
            "video": video.unsqueeze(0).to(self.device),
            "video_mask": torch.ones(1, video.shape[0], dtype=torch.bool, device=self.device),
        }
        if self.query_kind == "text":
            if text is None or not text.strip():
                raise UserInputError("this grounder takes a text query: pass text='...'")
            batch["sentence"] = [text]
            return batch
        if audio is None:
            raise UserInputError(f"this grounder takes a spoken query: pass audio= a {SAMPLE_RATE} Hz waveform")
        wave = np.asarray(audio, dtype=np.float32)
        if wave.ndim != 1:
            raise UserInputError(f"audio must be a mono waveform [n_samples], found shape {wave.shape}")
        if wave.size == 0:
            raise UserInputError("audio is empty (0 samples)")
        if not np.isfinite(wave).all():
            raise UserInputError("audio has NaN or infinite samples; pass a finite waveform in [-1, 1]")
        if wave.size < N_FFT:  # the centred STFT needs more than N_FFT / 2 samples: pad with silence
            wave = np.pad(wave, (0, N_FFT - wave.size))
        max_frames = getattr(self.cfg, "max_audio_frames", None)  # Base, VSLNet, SIL, FSAN
        if self.audio_frontend != "logmel":
            from svg_core.audio.whisper_encoder import MAX_INPUT_SEC
            from svg_core.models.speech_frontend import input_frames

            wave = wave[: int(MAX_INPUT_SEC * SAMPLE_RATE)]  # the encoder's window; the model keeps max_frames of it
            feats = self._encoded(wave)  # [T_e, 512], the frozen encoder's frames
            feats = feats[: input_frames(max_frames, self.cfg.audio_frontend, self.cfg.frontend_pool)]
            batch["audio_frames_10ms"] = min(n_frames(wave.size), max_frames)  # the attention map's time axis
        else:
            feats = log_mel(torch.from_numpy(wave))[:max_frames]  # [T_a, 128]
            batch["audio_frames_10ms"] = feats.shape[0]
        batch["audio"] = feats.unsqueeze(0).to(self.device)
        batch["audio_lengths"] = torch.tensor([feats.shape[0]], device=self.device)
        batch["audio_mask"] = torch.ones(1, feats.shape[0], dtype=torch.bool, device=self.device)
        return batch

    @torch.inference_mode()
    def localize(
        self,
        video_features: np.ndarray,
        duration_sec: float,
        audio: np.ndarray | None = None,
        text: str | None = None,
        top_k: int = 5,
    ) -> dict:
        """Localise one query in one video.

        Args:
            video_features: float [T, 500] C3D features of the whole video.
            duration_sec: video duration in seconds (> 0).
            audio: mono waveform [n_samples] at 16 kHz (audio grounders).
            text: the query sentence (text grounders).
            top_k: windows returned in ``top5_sec``.

        Returns:
            dict with ``start_sec``, ``end_sec``, ``score`` (best window), ``top5_sec``
            (list of [start_sec, end_sec, score], best first, end >= start), ``start_prob``,
            ``end_prob``, ``inside_prob`` (np.float32 [N_v]), ``attention`` (np.float32
            [N_v, T_a]: context-query attention over log-Mel frames of 10 ms, rows sum to 1;
            for text grounders [N_v, n_words] with ``words``), ``cross_attention`` for a
            VGCL-pretrained encoder (np.float32 [T_a, K_v]: each log-Mel frame's attention over
            the K_v = 2 N_v video tokens [full video; video]), for SIL ``proposal_map``
            (np.float32 [N_v, N_v], score of (start clip, end clip inclusive), nan off the
            proposals) and ``supervision``, then ``latency_sec`` and ``device``.
        """
        video_features = validate_features(video_features)  # shape [T, 500], finite rows
        check_duration(duration_sec, len(video_features))  # 1e9 s over 126 rows is refused
        began = time.perf_counter()
        batch = self._batch(video_features, audio, text)
        out = self.model(batch)
        result: dict = {"supervision": self.supervision}
        if "proposal_scores" in out:  # SIL: the best (start, end) cell of the proposal map
            spans = decode_proposals(out["proposal_scores"], out["proposal_mask"], top_k=top_k)[0]
            cells = out["proposal_mask"][0].cpu().numpy()
            result["proposal_map"] = np.where(cells, out["proposal_scores"][0].float().cpu().numpy(),
                                              np.nan).astype(np.float32)
        else:
            spans = decode_spans(out["start_prob"], out["end_prob"], top_k=top_k)[0]
        n_frames = out["start_prob"].shape[1]
        windows = [[s / n_frames * duration_sec, e / n_frames * duration_sec, score] for s, e, score in spans]
        n_steps = int(out["query_mask"][0].sum())
        if "alignment_map" in out:  # FSAN: tokens (words or speech steps) x clips, in (0, 1)
            result["alignment_map"] = out["alignment_map"][0, :n_steps].float().cpu().numpy()
        attention = out["cq_attention"][0, :, :n_steps].float()  # [N_v, T_q]
        if self.query_kind == "audio":
            n_10ms = batch["audio_frames_10ms"]  # log-Mel frames of 10 ms, whatever the front-end's rate
            attention = _steps_to_frames(attention, n_10ms)
            if "cross_attention" in out:
                cross = out["cross_attention"][0].float()  # [T_q', K_v]
                # a single item has no padded steps; nearest-map steps to frames, rows unchanged
                cross = F.interpolate(cross.T.unsqueeze(0), size=n_10ms, mode="nearest")
                result["cross_attention"] = cross.squeeze(0).T.cpu().numpy()
        else:
            from svg_core.models.text import tokenize

            result["words"] = tokenize(text or "")[: self.cfg.max_words] or ["<unk>"]  # type: ignore[attr-defined]
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        result.update(
            start_sec=windows[0][0],
            end_sec=windows[0][1],
            score=windows[0][2],
            top5_sec=windows,
            start_prob=out["start_prob"][0].float().cpu().numpy(),
            end_prob=out["end_prob"][0].float().cpu().numpy(),
            inside_prob=out["inside_prob"][0].float().cpu().numpy(),
            attention=attention.cpu().numpy(),
            latency_sec=time.perf_counter() - began,
            device=str(self.device),
        )
        return result

    def proposal_map(self, video_features: np.ndarray, duration_sec: float, audio: np.ndarray) -> np.ndarray:
        """The proposal map of a weakly supervised (SIL) grounder for one spoken query.

        Args:
            video_features: float [T, 500]; duration_sec: > 0; audio: mono 16 kHz waveform.

        Returns:
            np.float32 [N_v, N_v]: score in [0, 1] of the moment (start clip, end clip
            inclusive), nan where the cell is not a proposal (end < start, or off the sparse map).

        Raises:
            UserInputError: the grounder has no proposal map (not a SIL checkpoint).
        """
        if not isinstance(self.cfg, SILConfig):
            raise UserInputError(f"a {type(self.cfg).__name__} grounder has no proposal map; only the weakly"
                                 " supervised SIL checkpoints have one")
        return self.localize(video_features, duration_sec, audio=audio)["proposal_map"]

    def alignment_map(self, video_features: np.ndarray, duration_sec: float, audio: np.ndarray | None = None,
                      text: str | None = None) -> dict:
        """The token-by-clip alignment map of an FSAN grounder for one query, and its chosen segment.

        Args:
            video_features: float [T, 500]; duration_sec: > 0; audio: mono 16 kHz waveform
                (speech FSAN) or text: the sentence (text FSAN).

        Returns:
            dict with ``map`` (np.float32 [T_q, N_v], P in (0, 1)), ``tokens`` (the words, or
            "t=S.Ss" labels of the speech steps at their start time), ``step_sec`` (seconds per
            speech step; None for words), ``clip_sec`` (seconds per clip), ``segment_clips``
            (start clip, end clip inclusive) and ``start_sec``/``end_sec`` of the chosen segment.

        Raises:
            UserInputError: the grounder is not an FSAN checkpoint.
        """
        if not isinstance(self.cfg, FSANConfig):
            raise UserInputError(f"a {type(self.cfg).__name__} grounder has no alignment map; only FSAN checkpoints have one")
        result = self.localize(video_features, duration_sec, audio=audio, text=text)
        pmap = result["alignment_map"]
        n_clips = pmap.shape[1]
        clip_sec = duration_sec / n_clips
        start = min(n_clips - 1, int(round(result["start_sec"] / clip_sec)))
        end = max(start, int(round(result["end_sec"] / clip_sec)) - 1)
        if self.query_kind == "text":
            tokens, step_sec = list(result["words"]), None
        else:
            n_10ms = result["attention"].shape[1]
            step_sec = n_10ms * 0.01 / pmap.shape[0]
            tokens = [f"t={i * step_sec:.1f}s" for i in range(pmap.shape[0])]
        return {"map": pmap, "tokens": tokens, "step_sec": step_sec, "clip_sec": clip_sec,
                "segment_clips": (start, end), "start_sec": result["start_sec"], "end_sec": result["end_sec"]}
