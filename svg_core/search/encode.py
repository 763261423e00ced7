"""AVLnet embeddings for search: spoken (or typed, then spoken by TTS) queries and clip windows.

``Embedder`` wraps a trained (or, for tests and benches, a freshly built) AVLnet model;
``embed_collection`` turns a folder's videos into window embeddings with a progress bar.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from svg_core.audio.frontend import load_audio, log_mel
from svg_core.data.dataset import DatasetLayout
from svg_core.data.video_features import VideoFeatureStore, resample_features
from svg_core.engine.checkpoint import load_checkpoint
from svg_core.errors import UserInputError
from svg_core.models import AVLnet, AVLnetConfig, build_model
from svg_core.search.index import window_spans

N_FFT_SAMPLES = 400  # a query shorter than one STFT window is padded with silence


class Embedder:
    """Query and window embeddings of one AVLnet model (eval mode, no gradients).

    Args:
        model: an ``AVLnet``; ``checkpoint``: where it came from ("" for an untrained model).
    """

    def __init__(self, model: AVLnet, checkpoint: str = "", device: str | torch.device = "cpu") -> None:
        if not isinstance(model, AVLnet):
            raise UserInputError(f"search needs an AVLnet checkpoint, found a {type(model).__name__}")
        self.model = model.to(device).eval()
        self.cfg: AVLnetConfig = model.cfg
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self._speech_features = None  # the frozen Whisper encoder of a front-end model, built on first use

    @classmethod
    def from_checkpoint(cls, directory: str | os.PathLike, device: str = "cpu") -> "Embedder":
        """Load an AVLnet checkpoint folder (``python -m svg_core.train --model avlnet``)."""
        model, cfg, _ = load_checkpoint(directory, device=device)
        if not isinstance(cfg, AVLnetConfig):
            raise UserInputError(f"{directory} is a {type(cfg).__name__} checkpoint; search needs --model avlnet")
        return cls(model, str(directory), device)

    @classmethod
    def untrained(cls, cfg: AVLnetConfig | None = None, seed: int = 0) -> "Embedder":
        """A randomly initialised model (seeded): for tests and the latency bench."""
        torch.manual_seed(seed)
        return cls(build_model(cfg or AVLnetConfig.small()))

    @torch.inference_mode()
    def embed_waves(self, waves: list[np.ndarray]) -> np.ndarray:
        """Spoken queries -> float32 [Q, E].

        Args:
            waves: mono float32 [n_samples] at 16 kHz each (non-empty).
        """
        mels = []
        for wave in waves:
            wave = np.asarray(wave, dtype=np.float32)
            if wave.ndim != 1 or wave.size == 0:
                raise UserInputError(f"a query must be a non-empty mono waveform, found shape {wave.shape}")
            wave = np.pad(wave, (0, max(0, N_FFT_SAMPLES - wave.size)))
            mels.append(self._audio_input(wave))  # [T_a, 128] log-Mel, or [T_e, 512] encoder features
        lengths = torch.tensor([m.shape[0] for m in mels])
        audio = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True)
        return self.model.embed_audio(audio.to(self.device), lengths.to(self.device)).float().cpu().numpy()

    def _audio_input(self, wave: np.ndarray) -> torch.Tensor:
        """What the model's audio branch reads for one wave: log-Mels [T_a, 128], or the frozen
        Whisper base encoder's features [T_e, 512] for ``audio_frontend="whisper_base"`` (run live,
        where the model runs, like ``Grounder.speech_features``)."""
        if self.cfg.audio_frontend == "logmel":
            return log_mel(torch.from_numpy(wave))[: self.cfg.max_audio_frames]
        if self._speech_features is None:
            from svg_core.audio.whisper_encoder import SpeechFeatures

            self._speech_features = SpeechFeatures(pool=self.cfg.frontend_pool,
                                                   device="auto" if self.device.type == "cuda" else "cpu",
                                                   cpu_threads=torch.get_num_threads())
        return torch.from_numpy(self._speech_features.numpy(wave))

    def embed_wav_file(self, path: str | os.PathLike) -> np.ndarray:
        """One wav file -> float32 [E]."""
        return self.embed_waves([load_audio(path)])[0]

    def embed_text(self, text: str, voice: str = "piper:joe") -> np.ndarray:
        """A typed query, spoken by the project's TTS (``svg_core.audio.tts.speak``) -> float32 [E]."""
        from svg_core.audio.tts import speak

        return self.embed_waves([speak(text, voice=voice)])[0]

    @torch.inference_mode()
    def embed_video_windows(self, features: np.ndarray, duration_sec: float, video_id: str,
                            window_clips: int, stride_clips: int) -> tuple[np.ndarray, list[dict]]:
        """One video's sliding windows.

        Args:
            features: float32 [T, 500] C3D features of the whole video (resampled to N_v clips).
            duration_sec: the video's duration, for the windows' seconds.

        Returns:
            (float32 [W, E], W window dicts: video_id, start_clip, end_clip, start_sec, end_sec).
        """
        n_v = self.cfg.n_video_frames
        clips = torch.from_numpy(resample_features(features, n_v)).to(self.device)  # [N_v, 500]
        spans = window_spans(n_v, window_clips, stride_clips)
        mask = torch.zeros(len(spans), n_v, dtype=torch.bool, device=self.device)
        for i, (s, e) in enumerate(spans):
            mask[i, s:e] = True
        emb = self.model.embed_clips(clips.unsqueeze(0).expand(len(spans), -1, -1), mask)  # [W, E]
        sec_per_clip = duration_sec / n_v
        rows = [{"video_id": video_id, "start_clip": s, "end_clip": e,
                 "start_sec": round(s * sec_per_clip, 3), "end_sec": round(e * sec_per_clip, 3)} for s, e in spans]
        return emb.float().cpu().numpy(), rows


def collection_durations(layout: DatasetLayout) -> dict[str, float]:
    """Video id -> duration in seconds, from every annotation file of the folder."""
    out: dict[str, float] = {}
    for split in layout.annotations:
        for r in layout.records(split, on_error="skip")[0]:
            out.setdefault(r.video_id, r.duration_sec)
    return out


def embed_collection(embedder: Embedder, data_dir: str | Path, window_clips: int, stride_clips: int,
                     video_ids: list[str] | None = None, progress: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Window embeddings of the videos of a folder in the ActivityNet layout.

    Args:
        video_ids: the videos to index (default: every video with features and a duration in an
            annotation file).

    Returns:
        (float32 [N_windows, E], N_windows window dicts).
    """
    layout = DatasetLayout.from_dir(data_dir)
    store = VideoFeatureStore(layout.features)
    durations = collection_durations(layout)
    ids = video_ids if video_ids is not None else [v for v in store.video_ids() if v in durations]
    if not ids:
        raise UserInputError(f"{data_dir}: no video has both features and a duration in an annotation file")
    vectors, windows = [], []
    for vid in tqdm(ids, desc="index videos", unit="video", disable=not progress):
        emb, rows = embedder.embed_video_windows(store.get(vid), durations[vid], vid, window_clips, stride_clips)
        vectors.append(emb)
        windows.extend(rows)
    return np.concatenate(vectors), windows
