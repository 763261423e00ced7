"""Spoken queries for the synthetic benchmark: speaker-disjoint voice pools and jittered TTS.

Train, val and test draw from disjoint voice pools, and no speaker timbre crosses splits (an
espeak variant such as ``+m3`` is one timbre whatever its accent; flite kal and kal16 are one
speaker), so test voices are never heard in training. The piper voice is in the training pool,
where it speaks a modest share (``PIPER_SHARE``) of the utterances: it is the slowest engine,
and the app speaks typed queries with it.

Every utterance gets its own speaking-rate factor in [0.75, 1.05], pitch shift in [-1.5, 1.5]
semitones, level in [-6, 0] dB and 0.1-0.5 s of silence before and after, drawn from the video's
seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soundfile as sf

from svg_core.audio import tts

VOICE_SPLITS = {
    "train": (
        "piper:joe",
        "flite:kal", "flite:kal16", "flite:awb",
        "espeak:en-us+m1", "espeak:en-gb+m1", "espeak:en-us+m2", "espeak:en-gb-x-rp+m2",
        "espeak:en-us+m3", "espeak:en-gb-scotland+m3", "espeak:en-us+m4", "espeak:en-029+m4",
        "espeak:en-us+f1", "espeak:en-gb+f1", "espeak:en-us+f2", "espeak:en-gb-x-rp+f2",
    ),
    "val": ("flite:rms", "espeak:en-us+m5", "espeak:en-gb+m5", "espeak:en-us+f3", "espeak:en-gb-scotland+f3"),
    "test": (
        "flite:slt",
        "espeak:en-us+m6", "espeak:en-gb-x-gbclan+m6", "espeak:en-gb+m7", "espeak:en-us-nyc+m7",
        "espeak:en-us+f4", "espeak:en-029+f4", "espeak:en-gb+f5", "espeak:en-us+f5",
    ),
}
PIPER_SHARE = 0.12  # of training utterances
SPEED_RANGE = (0.75, 1.05)  # TTS reads faster than ActivityNet's human speakers
SILENCE_RANGE_SEC = (0.1, 0.5)  # before and after the speech
PITCH_RANGE_SEMITONES = (-1.5, 1.5)
GAIN_RANGE_DB = (-6.0, 0.0)


@dataclass
class UtterancePlan:
    """How one caption is spoken (all drawn before any audio is made, so builds are seeded)."""

    text: str
    wav_name: str
    voice: str
    speed: float
    pitch_semitones: float
    gain_db: float
    lead_sec: float
    trail_sec: float


def speakers(split: str) -> set[str]:
    """Speaker timbres of a split's voice pool."""
    return {tts.get_voice(v).speaker for v in VOICE_SPLITS[split]}


def plan_utterance(text: str, wav_name: str, split: str, rng: np.random.Generator, use_piper: bool = True) -> UtterancePlan:
    """Draw the voice and the jitter of one utterance.

    Args:
        text: the caption.
        wav_name: output file name, e.g. "syn000123_test_1.wav".
        split: "train", "val" or "test" (selects the voice pool).
        rng: the video's generator.
        use_piper: allow the piper voice (off for fast tiny builds).
    """
    if split not in VOICE_SPLITS:
        raise ValueError(f"split must be one of {sorted(VOICE_SPLITS)}, found {split!r}")
    pool = [v for v in VOICE_SPLITS[split] if v != "piper:joe"]
    draw = rng.random()
    voice = pool[int(rng.integers(len(pool)))]
    if use_piper and "piper:joe" in VOICE_SPLITS[split] and draw < PIPER_SHARE:
        voice = "piper:joe"
    return UtterancePlan(
        text=text,
        wav_name=wav_name,
        voice=voice,
        speed=round(float(rng.uniform(*SPEED_RANGE)), 3),
        pitch_semitones=round(float(rng.uniform(*PITCH_RANGE_SEMITONES)), 2),
        gain_db=round(float(rng.uniform(*GAIN_RANGE_DB)), 2),
        lead_sec=round(float(rng.uniform(*SILENCE_RANGE_SEC)), 2),
        trail_sec=round(float(rng.uniform(*SILENCE_RANGE_SEC)), 2),
    )


def synthesize(plan: UtterancePlan) -> np.ndarray:
    """Speak a plan: int16 [n_samples] at 16 kHz."""
    wave = tts.speak(plan.text, plan.voice, speed=plan.speed, pitch_shift=plan.pitch_semitones)
    wave = wave * (10.0 ** (plan.gain_db / 20.0))
    lead, trail = (np.zeros(int(round(sec * tts.SAMPLE_RATE)), np.float32) for sec in (plan.lead_sec, plan.trail_sec))
    wave = np.concatenate([lead, wave, trail])
    return np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)


def write_utterance(plan: UtterancePlan, audio_dir) -> float:
    """Synthesize and write ``audio_dir / plan.wav_name`` (16 kHz mono int16); returns seconds."""
    wave = synthesize(plan)
    sf.write(str(audio_dir / plan.wav_name), wave, tts.SAMPLE_RATE, subtype="PCM_16")
    return len(wave) / tts.SAMPLE_RATE
