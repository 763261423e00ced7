"""Audio front-end: formats, rates, channels, bad recordings, log-Mel shape and masking."""

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from svg_core.audio.frontend import (SAMPLE_RATE, AudioError, check_speech, load_audio, log_mel, n_frames,
                            to_mono_16k)


def tone(sec=1.0, rate=SAMPLE_RATE, freq=440.0, channels=1):
    t = np.arange(int(sec * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


@pytest.mark.parametrize("fmt, ext", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")])
def test_formats(tmp_path, fmt, ext):
    path = tmp_path / f"a{ext}"
    sf.write(path, tone(1.0, 16_000), 16_000, format=fmt)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - 16_000) < 2000  # mp3 adds encoder padding


def test_any_rate_and_stereo(tmp_path):
    path = tmp_path / "stereo44k.wav"
    sf.write(path, tone(2.0, 44_100, channels=2), 44_100)
    wave = load_audio(path)
    assert wave.shape == (32_000,)
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / wave.size - 440) < 3  # pitch survives resampling
    assert to_mono_16k(tone(1.0, 8_000), 8_000).shape == (16_000,)


def test_bytes_input(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(0.5), SAMPLE_RATE)
    assert load_audio(path.read_bytes()).shape == (8_000,)


def test_missing_empty_corrupt_and_too_long(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_audio(tmp_path / "none.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(empty)
    no_samples = tmp_path / "nosamples.wav"
    sf.write(no_samples, np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(no_samples)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError, match="could not decode"):
        load_audio(corrupt)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(31 * 8000, np.float32), 8000)
    with pytest.raises(AudioError, match="31.0 s long; the limit is 30 s"):
        load_audio(long)
    assert load_audio(long, max_sec=None).size == 31 * SAMPLE_RATE  # configurable limit
    with pytest.raises(AudioError, match="limit is 10 s"):
        load_audio(long, max_sec=10)


def test_check_speech_cases():
    with pytest.raises(AudioError, match="empty"):
        check_speech(np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="at least 100 ms"):
        check_speech(tone(0.05))
    with pytest.raises(AudioError, match="silent"):
        check_speech(np.zeros(16_000, np.float32))
    with pytest.raises(AudioError, match="limit is 30 s"):
        check_speech(tone(31.0))
    with pytest.raises(AudioError, match="NaN"):
        check_speech(np.full(16_000, np.nan, np.float32))
    with pytest.raises(AudioError, match="shape"):
        check_speech(np.zeros((2, 16_000), np.float32))
    ok = check_speech(tone(1.0))
    assert ok.duration_sec == pytest.approx(1.0) and ok.peak == pytest.approx(0.3, rel=1e-3)


def test_log_mel_shape_range_and_no_empty_bands():
    wave = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchaudio warns about empty mel bands with n_fft=400
        mel = log_mel(wave)
    assert mel.shape == (n_frames(16_000), 128) == (101, 128)
    assert mel.min() >= -1.0 - 1e-6 and mel.max() <= 1.0 + 1e-6
    assert mel.max() == pytest.approx(1.0)
    assert torch.all(mel.std(dim=0) > 0)  # every band carries energy for white noise


def test_log_mel_batch_equals_items():
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(8000).astype(np.float32) * s for s in (0.1, 0.5))
    both = log_mel(np.stack([a, b]))
    assert torch.allclose(both[0], log_mel(a), atol=1e-5) and torch.allclose(both[1], log_mel(b), atol=1e-5)
    with pytest.raises(AudioError):
        log_mel(np.zeros(0, np.float32))


def test_log_mel_of_very_short_clips():
    for n in (1, 100, 256, 511):
        mel = log_mel(np.random.default_rng(n).standard_normal(n).astype(np.float32))
        assert mel.shape == (n_frames(n), 128) and torch.isfinite(mel).all()
