"""Audio front-end: one loader and the log-Mel features, as pure functions.

All audio I/O in the project goes through :func:`load_audio` (torchaudio's own I/O is
TorchCodec-backed since 2.9, so files are read with soundfile, whose bundled libsndfile reads
wav, flac, ogg and mp3, and resampled with torchaudio).

Log-Mel settings follow the VGCL paper and released code (method-notes 1.3): 16 kHz, 25 ms
Hamming window, 10 ms hop, 128 mel bands, 20 Hz - 8 kHz. Choice of ``n_fft``: with
``n_fft = 400`` the STFT has only 201 bins spaced 40 Hz apart, so several of the 128 low mel
bands receive no bin at all and stay all-zero (torchaudio warns). We keep the 25 ms window
(``win_length = 400``) but zero-pad each frame to ``n_fft = 512`` (257 bins, 31.25 Hz apart),
which leaves no empty band at 20 Hz - 8 kHz.

Normalisation: dB relative to the utterance maximum, floored at -80 dB (``power_to_db(ref=max,
top_db=80)`` as in the released code), then mapped linearly to [-1, 1]: ``(db + 40) / 40``.
Padding is filled with zeros and must be masked by the model (the released code padded with
0 dB, i.e. the loudest value, and never masked it).
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from svg_core.errors import UserInputError

SAMPLE_RATE = 16_000
N_MELS = 128
WIN_LENGTH = 400  # 25 ms at 16 kHz
HOP_LENGTH = 160  # 10 ms at 16 kHz
N_FFT = 512  # see module docstring: 400 leaves empty mel bands
F_MIN_HZ = 20.0
TOP_DB = 80.0
MIN_SPEECH_SEC = 0.1
DEFAULT_MAX_SEC = 30.0
SILENCE_PEAK = 1e-4  # peak amplitude below which a recording counts as all-silent


MAX_DECODE_BYTES = 64 * 2**20  # largest decoded float32 buffer accepted (checked from the header)


class AudioError(UserInputError):
    """Raised for audio that cannot be used as a spoken query (empty, silent, too long...)."""


def _decode(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Decode a file path or in-memory file to float32 [frames, channels] and its rate."""
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"audio file not found: {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"audio file is empty (0 bytes): {path}")
        source_obj = str(path)
    else:
        source_obj = io.BytesIO(source)
    try:
        info = sf.info(source_obj)
        if isinstance(source_obj, io.BytesIO):
            source_obj.seek(0)
    except Exception:
        info = None  # not readable by libsndfile: the decode below reports it (or ffmpeg reads it)
    if info is not None and info.frames > 0 and info.frames * info.channels * 4 > MAX_DECODE_BYTES:
        raise AudioError(
            f"audio {name} would decode to {info.frames * info.channels * 4 / 2**20:.0f} MB "
            f"({info.frames / info.samplerate:.1f} s, {info.channels} channels, {info.samplerate} Hz); "
            f"the limit is {MAX_DECODE_BYTES / 2**20:.0f} MB. Trim it to the spoken query."
        )
    try:
        data, rate = sf.read(source_obj, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        if name.lower().endswith((".mp3", ".m4a", ".aac", ".webm", ".mp4")):
            return _decode_with_ffmpeg(Path(name), err)
        raise AudioError(
            f"could not decode audio {name}: {err}. Supported: wav, flac, ogg, mp3 (and any "
            "format ffmpeg reads when ffmpeg is installed)."
        ) from err
    return data, int(rate)


def _decode_with_ffmpeg(path: Path, first_error: Exception) -> tuple[np.ndarray, int]:
    """Fallback for container formats libsndfile does not read; needs an ffmpeg binary."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        try:  # imageio-ffmpeg ships a static binary
            import imageio_ffmpeg

            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception:
            exe = None
    if exe is None:
        raise AudioError(f"could not decode {path} ({first_error}) and no ffmpeg is available")
    import subprocess

    proc = subprocess.run(
        [exe, "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        raise AudioError(f"could not decode {path}: {proc.stderr.decode(errors='replace')[:300]}")
    return np.frombuffer(proc.stdout, dtype=np.float32).reshape(-1, 1).copy(), SAMPLE_RATE


def to_mono_16k(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Down-mix to mono and resample to 16 kHz.

    Args:
        wave: samples, [n] or [n, channels] (soundfile layout).
        sample_rate: rate of ``wave`` in Hz.

    Returns:
        float32 [n'] at :data:`SAMPLE_RATE`.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    elif wave.ndim != 1:
        raise AudioError(f"expected audio of shape [n] or [n, channels], found {wave.shape}")
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, found {sample_rate}")
    if not np.all(np.isfinite(wave)):
        raise AudioError("audio contains NaN or infinite samples")
    if sample_rate != SAMPLE_RATE and wave.size > 0:
        wave = torchaudio.functional.resample(
            torch.from_numpy(wave), orig_freq=int(sample_rate), new_freq=SAMPLE_RATE
        ).numpy()
    return np.ascontiguousarray(wave, dtype=np.float32)


def load_audio(source: str | Path | bytes, max_sec: float | None = DEFAULT_MAX_SEC) -> np.ndarray:
    """Read any wav/flac/ogg/mp3 file (any rate, any channels) as mono float32 at 16 kHz.

    Args:
        source: a path, or the bytes of an audio file.
        max_sec: longest accepted duration in seconds (None: no limit). Longer recordings
            raise :class:`AudioError` instead of being silently truncated.

    Returns:
        float32 [n] at 16 kHz, values in about [-1, 1].

    Raises:
        FileNotFoundError: the path does not exist.
        AudioError: empty, corrupt or too long audio.
    """
    data, rate = _decode(source)
    if data.shape[0] == 0:
        raise AudioError(f"audio has no samples: {source if not isinstance(source, bytes) else '<bytes>'}")
    duration_sec = data.shape[0] / rate
    if max_sec is not None and duration_sec > max_sec:
        raise AudioError(
            f"audio is {duration_sec:.1f} s long; the limit is {max_sec:.0f} s. "
            "Trim the recording to the spoken query."
        )
    if not np.all(np.isfinite(data)):
        raise AudioError("audio has NaN or infinite samples; re-export the recording as PCM")
    peak = float(np.max(np.abs(data)))
    if peak > 4.0:  # float files can hold any value; speech lives in [-1, 1]
        raise AudioError(f"audio samples reach {peak:.3g}, far beyond the [-1, 1] range; "
                         "re-export the recording as normalised PCM")
    return to_mono_16k(data, rate)


@dataclass(frozen=True)
class SpeechCheck:
    """Result of :func:`check_speech`: duration and peak of a query waveform."""

    duration_sec: float
    peak: float


def check_speech(wave: np.ndarray, max_sec: float | None = DEFAULT_MAX_SEC) -> SpeechCheck:
    """Validate a 16 kHz waveform as a spoken query.

    Handling (documented and tested): empty -> error; shorter than 0.1 s -> error (no
    log-Mel frame of speech); all-silent (peak < 1e-4) -> error; longer than ``max_sec`` ->
    error. Everything else is accepted as is.

    Args:
        wave: float32 [n] at 16 kHz.
        max_sec: longest accepted duration (None: no limit).

    Returns:
        A :class:`SpeechCheck`.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioError(f"expected mono audio of shape [n], found {wave.shape}")
    if wave.size == 0:
        raise AudioError("audio is empty: record or upload a spoken query")
    if not np.all(np.isfinite(wave)):
        raise AudioError("audio contains NaN or infinite samples")
    duration_sec = wave.size / SAMPLE_RATE
    if duration_sec < MIN_SPEECH_SEC:
        raise AudioError(f"audio is {duration_sec * 1000:.0f} ms long; at least {MIN_SPEECH_SEC * 1000:.0f} ms is needed")
    if max_sec is not None and duration_sec > max_sec:
        raise AudioError(f"audio is {duration_sec:.1f} s long; the limit is {max_sec:.0f} s")
    peak = float(np.max(np.abs(wave)))
    if peak < SILENCE_PEAK:
        raise AudioError("audio is silent (peak below -80 dBFS): nothing was said")
    return SpeechCheck(duration_sec=duration_sec, peak=peak)


_MEL_CACHE: dict[torch.device, torchaudio.transforms.MelSpectrogram] = {}


def _mel_transform(device: torch.device) -> torchaudio.transforms.MelSpectrogram:
    if device not in _MEL_CACHE:
        _MEL_CACHE[device] = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            win_length=WIN_LENGTH,
            hop_length=HOP_LENGTH,
            f_min=F_MIN_HZ,
            f_max=SAMPLE_RATE / 2,
            n_mels=N_MELS,
            window_fn=torch.hamming_window,
            power=2.0,
            center=True,
            norm="slaney",
            mel_scale="slaney",
        ).to(device)
    return _MEL_CACHE[device]


def n_frames(n_samples: int) -> int:
    """Number of log-Mel frames for ``n_samples`` (centred STFT, 10 ms hop)."""
    return n_samples // HOP_LENGTH + 1


def log_mel(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Normalised log-Mel spectrogram of one or more 16 kHz waveforms.

    Each waveform is normalised on its own (dB relative to its maximum), so a batch must not
    contain padding: call it per item, then pad (see :mod:`svg_core.data.dataset`).

    Args:
        wave: [..., n] samples at 16 kHz.

    Returns:
        float32 [..., frames, 128] in [-1, 1], frames = n // 160 + 1.
    """
    x = torch.as_tensor(wave, dtype=torch.float32)
    if x.shape[-1] == 0:
        raise AudioError("cannot compute log-Mel features of empty audio")
    # DC removal and pre-emphasis as in the released front-end (method-notes 1.3).
    x = x - x.mean(dim=-1, keepdim=True)
    x = torch.cat([x[..., :1], x[..., 1:] - 0.97 * x[..., :-1]], dim=-1)
    n_out = n_frames(x.shape[-1])
    if x.shape[-1] < N_FFT:
        # The centred STFT reflect-pads by n_fft/2, which needs at least that many samples:
        # zero-pad very short clips, then keep the frames the true length gives.
        x = torch.nn.functional.pad(x, (0, N_FFT - x.shape[-1]))
    mel = _mel_transform(x.device)(x)[..., :n_out]  # [..., 128, frames]
    db = 10.0 * torch.log10(mel.clamp_min(1e-10))
    peak = db.amax(dim=(-2, -1), keepdim=True)
    db = torch.maximum(db - peak, torch.tensor(-TOP_DB, device=db.device))  # [-80, 0]
    return ((db + TOP_DB / 2) / (TOP_DB / 2)).transpose(-1, -2).contiguous()
