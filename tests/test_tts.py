"""Tests of the offline TTS voice pool (svg_core/audio/tts.py). Real engines, one short sentence each."""

import subprocess
import sys

import numpy as np
import pytest

from svg_core.audio import tts

SENTENCE = "The red ball bounces again."


@pytest.mark.needs_binary("espeak-ng", "flite")
def test_pool_has_many_distinct_voices_of_three_engines():
    voices = tts.list_voices()
    names = [v.name for v in voices]
    assert len(set(names)) == len(names) >= 20
    assert {v.engine for v in voices} == {"piper", "espeak", "flite"}
    assert len({v.speaker for v in voices}) >= 15
    assert {"piper:joe", "espeak:en-us+m3", "espeak:en-gb+f2", "flite:slt", "flite:kal"} <= set(names)
    assert tts.get_voice("flite:kal16").speaker == tts.get_voice("flite:kal").speaker


@pytest.mark.needs_binary("espeak-ng", "flite")
@pytest.mark.parametrize("voice", ["espeak:en-us+m3", "espeak:en-gb-scotland+f2", "flite:slt", "flite:kal"])
def test_speak_returns_16k_float_speech(voice):
    wave = tts.speak(SENTENCE, voice)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.8 < len(wave) / tts.SAMPLE_RATE < 5.0
    assert 0.85 < np.abs(wave).max() <= 0.9 + 1e-6  # peak-normalised, not silent
    assert np.array_equal(wave, tts.speak(SENTENCE, voice))  # deterministic


@pytest.mark.needs_binary("espeak-ng")
def test_speed_and_pitch_change_the_audio():
    base = tts.speak(SENTENCE, "espeak:en-us+m1")
    fast = tts.speak(SENTENCE, "espeak:en-us+m1", speed=1.5)
    assert len(fast) < 0.8 * len(base)
    high = tts.speak(SENTENCE, "espeak:en-us+m1", pitch_shift=3.0)
    # the pitch change keeps the duration (within 15%) but changes the waveform
    assert abs(len(high) - len(base)) < 0.15 * len(base)
    n = min(len(high), len(base))
    assert not np.allclose(high[:n], base[:n], atol=1e-3)

    def f0(wave):  # autocorrelation pitch of the loudest 100 ms
        i = int(np.argmax(np.convolve(wave**2, np.ones(1600), "same")))
        seg = wave[max(0, i - 800) : i + 800]
        ac = np.correlate(seg, seg, "full")[len(seg) - 1 :]
        lo, hi = tts.SAMPLE_RATE // 400, tts.SAMPLE_RATE // 60
        return tts.SAMPLE_RATE / (lo + int(np.argmax(ac[lo:hi])))

    assert f0(high) > f0(base) * 1.05


@pytest.mark.needs_binary("espeak-ng")
def test_rng_jitter_is_seeded():
    a = tts.speak(SENTENCE, "flite:awb", rng=np.random.default_rng(1))
    b = tts.speak(SENTENCE, "flite:awb", rng=np.random.default_rng(1))
    assert np.array_equal(a, b)


def test_piper_voice_one_sentence():
    wave = tts.speak("Then the blue box spins.", "piper:joe")
    assert wave.dtype == np.float32 and 0.5 < len(wave) / tts.SAMPLE_RATE < 4.0
    assert np.array_equal(wave, tts.speak("Then the blue box spins.", "piper:joe"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(text="", voice="flite:slt"), "non-empty"),
        (dict(text="hi there", voice="espeak:xx-zz+m9"), "unknown voice"),
        (dict(text="hi there", voice="joe"), "<engine>:<voice>"),
        (dict(text="hi there", voice="flite:slt", speed=5.0), "speed"),
        (dict(text="hi there", voice="flite:slt", pitch_shift=20.0), "pitch_shift"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tts.speak(**kwargs)


def test_missing_binary_names_the_apt_package(monkeypatch):
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        tts.speak(SENTENCE, "espeak:en-us+m1")
    with pytest.raises(RuntimeError, match="apt-get install flite"):
        tts.speak(SENTENCE, "flite:slt")


def test_import_has_no_side_effects():
    code = "import sys, svg_core.audio.tts; print(any(m in sys.modules for m in ('torch', 'piper', 'onnxruntime')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
