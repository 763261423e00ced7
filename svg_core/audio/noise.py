"""Noise for spoken queries: ESC-50 clips, built-in synthetic noise, and the paper's mixing.

The VGCL paper (section 6.1) adds an ESC-50 clip to a *random contiguous part* of each
utterance whose share of the utterance is the "proportion": clean = 0, normal ~ U(0.5, 0.7),
large ~ U(0.7, 0.9). The paper gives no level; we mix at an SNR in dB measured over the covered
part only (so the level does not depend on how much of the utterance is covered).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchaudio

from svg_core.audio.frontend import SAMPLE_RATE, load_audio

Seconds = float
Decibels = float

# Proportion of the utterance covered by noise, per preset: (low, high) of a uniform draw.
NOISE_PRESETS: dict[str, tuple[float, float]] = {
    "clean": (0.0, 0.0),
    "normal": (0.5, 0.7),
    "large": (0.7, 0.9),
}
SYNTHETIC_KINDS = ("white", "pink", "brown", "babble")
# ESC-50 major groups by target: 0-9, 10-19, ... (ESC-50 paper, Piczak 2015).
ESC50_GROUPS = ("animals", "natural", "human", "domestic", "urban")
ESC50_GROUP_TITLES = {
    "animals": "Animals",
    "natural": "Natural soundscapes & water sounds",
    "human": "Human, non-speech sounds",
    "domestic": "Interior/domestic sounds",
    "urban": "Exterior/urban noises",
}


def draw_proportion(preset: str, rng: np.random.Generator) -> float:
    """Draw the covered proportion for a preset ("clean", "normal", "large")."""
    if preset not in NOISE_PRESETS:
        raise ValueError(f"unknown noise preset {preset!r}; choose one of {sorted(NOISE_PRESETS)}")
    low, high = NOISE_PRESETS[preset]
    return float(rng.uniform(low, high)) if high > 0 else 0.0


@dataclass(frozen=True)
class ESC50Clip:
    """One ESC-50 recording (a row of meta/esc50.csv)."""

    path: Path
    fold: int
    target: int
    category: str
    esc10: bool = False

    @property
    def group(self) -> str:
        """Major group name, from the target: 0-9 animals ... 40-49 urban."""
        return ESC50_GROUPS[self.target // 10]


class ESC50:
    """Reader for a folder in ESC-50's own layout (``audio/*.wav|flac``, ``meta/esc50.csv``).

    Works on the full dataset (44.1 kHz wav) and on subsets (e.g. 16 kHz flac); rows whose
    audio file is absent are skipped and counted in ``missing``.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta = self.root / "meta" / "esc50.csv"
        if not meta.exists():
            raise FileNotFoundError(
                f"{meta} not found: an ESC-50 folder needs meta/esc50.csv and audio/ "
                "(the dataset's own layout)"
            )
        self.clips: list[ESC50Clip] = []
        self.missing = 0
        with meta.open(newline="") as handle:
            for row in csv.DictReader(handle):
                path = self._find_audio(row["filename"])
                if path is None:
                    self.missing += 1
                    continue
                self.clips.append(ESC50Clip(path, int(row["fold"]), int(row["target"]), row["category"],
                                             row.get("esc10", "") == "True"))
        if not self.clips:
            raise ValueError(f"no ESC-50 audio found under {self.root / 'audio'}")
        self._cache: dict[Path, np.ndarray] = {}

    def _find_audio(self, filename: str) -> Path | None:
        stem = Path(filename).stem
        for ext in (Path(filename).suffix, ".wav", ".flac"):
            candidate = self.root / "audio" / f"{stem}{ext}"
            if ext and candidate.exists():
                return candidate
        return None

    def categories(self) -> list[str]:
        """Sorted class names present."""
        return sorted({c.category for c in self.clips})

    def select(self, group: str | None = None, category: str | None = None) -> list[ESC50Clip]:
        """Clips of one major group and/or one class (None: any)."""
        if group is not None and group not in ESC50_GROUPS:
            raise ValueError(f"unknown ESC-50 group {group!r}; choose one of {ESC50_GROUPS}")
        found = [
            c for c in self.clips
            if (group is None or c.group == group) and (category is None or c.category == category)
        ]
        if not found:
            raise ValueError(f"no ESC-50 clip for group={group!r} category={category!r}")
        return found

    def load(self, clip: ESC50Clip) -> np.ndarray:
        """Mono float32 [n] at 16 kHz (cached)."""
        if clip.path not in self._cache:
            self._cache[clip.path] = load_audio(clip.path, max_sec=None)
        return self._cache[clip.path]


def _shaped_noise(n_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent, unit RMS.

    Written by hand: torchaudio has no coloured-noise generator; shaping white noise in the
    frequency domain is the standard few-line method.
    """
    white = rng.standard_normal(n_samples)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n_samples, d=1.0 / SAMPLE_RATE)
    freqs[0] = freqs[1] if n_samples > 1 else 1.0
    spectrum *= freqs ** (-exponent / 2.0)
    spectrum[0] = 0.0  # no DC
    shaped = np.fft.irfft(spectrum, n=n_samples)
    rms = np.sqrt(np.mean(shaped**2)) or 1.0
    return (shaped / rms).astype(np.float32)


_BABBLE_SENTENCES = (
    "I think the meeting was moved to the afternoon on Thursday.",
    "Could you pass me the salt and the pepper please.",
    "We drove along the coast until the sun went down.",
    "The train to the city leaves in about twenty minutes.",
    "She said the new cafe on the corner makes great coffee.",
    "Nobody expected the game to go into extra time.",
    "Let me know when you are ready to order.",
    "They painted the kitchen a bright shade of yellow.",
)
_BABBLE_BED: dict[tuple[int, int, float], np.ndarray] = {}


def babble_bed(seed: int = 0, n_talkers: int = 6, duration_sec: Seconds = 12.0) -> np.ndarray:
    """A babble recording: several TTS talkers (distinct voices) speaking over each other.

    Built once per (seed, n_talkers, duration_sec) with :mod:`svg_core.tts` and cached in
    memory; callers cut random segments from it.

    Returns:
        float32 [duration_sec * 16000], unit RMS.
    """
    key = (int(seed), int(n_talkers), float(duration_sec))
    if key in _BABBLE_BED:
        return _BABBLE_BED[key]
    from svg_core.audio import tts  # lazy: TTS engines are only needed for babble

    rng = np.random.default_rng(seed)
    voices = list(tts.list_voices())
    n_out = int(duration_sec * SAMPLE_RATE)
    bed = np.zeros(n_out, dtype=np.float32)
    for talker in range(n_talkers):
        voice = voices[int(rng.integers(len(voices)))]
        cursor = int(rng.integers(0, SAMPLE_RATE))
        while cursor < n_out:
            sentence = _BABBLE_SENTENCES[int(rng.integers(len(_BABBLE_SENTENCES)))]
            try:
                speech = tts.speak(sentence, voice)
            except (RuntimeError, OSError, FileNotFoundError):
                voices.remove(voice)  # engine missing on this machine: use the others
                if not voices:
                    raise RuntimeError("babble noise needs a TTS voice: install espeak-ng (apt) or piper-tts (pip)")
                voice = voices[int(rng.integers(len(voices)))]
                continue
            speech = speech / (np.sqrt(np.mean(speech**2)) + 1e-8)
            end = min(n_out, cursor + speech.size)
            bed[cursor:end] += speech[: end - cursor]
            cursor = end + int(rng.integers(0, SAMPLE_RATE // 4))
    bed /= np.sqrt(np.mean(bed**2)) + 1e-8
    _BABBLE_BED[key] = bed
    return bed


def noise_kinds(esc50: ESC50 | None = None) -> list[str]:
    """Names accepted by :func:`make_noise`: synthetic kinds, then ESC-50 ones if given."""
    kinds = list(SYNTHETIC_KINDS)
    if esc50 is not None:
        kinds += ["esc50"] + [f"esc50:{g}" for g in ESC50_GROUPS] + [f"esc50:{c}" for c in esc50.categories()]
    return kinds


def make_noise(kind: str, n_samples: int, rng: np.random.Generator, esc50: ESC50 | None = None) -> np.ndarray:
    """Noise of a given kind, length ``n_samples`` at 16 kHz.

    Args:
        kind: "white", "pink", "brown", "babble"; "esc50" (any clip), "esc50:<group>" (one of
            the five major groups) or "esc50:<class>" (e.g. "esc50:dog").
        n_samples: output length.
        rng: random generator (the only source of randomness).
        esc50: an :class:`ESC50` reader, required for the ESC-50 kinds.

    Returns:
        float32 [n_samples]. ESC-50 clips shorter than needed are tiled.
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, found {n_samples}")
    if kind == "white":
        return rng.standard_normal(n_samples).astype(np.float32)
    if kind == "pink":
        return _shaped_noise(n_samples, 1.0, rng)
    if kind == "brown":
        return _shaped_noise(n_samples, 2.0, rng)
    if kind == "babble":
        bed = babble_bed()
        return _segment(bed, n_samples, rng)
    if kind == "esc50" or kind.startswith("esc50:"):
        if esc50 is None:
            raise ValueError(f"noise kind {kind!r} needs an ESC-50 folder (none configured)")
        name = kind.partition(":")[2] or None
        if name is None:
            clips = esc50.clips
        elif name in ESC50_GROUPS:
            clips = esc50.select(group=name)
        else:
            clips = esc50.select(category=name)
        clip = clips[int(rng.integers(len(clips)))]
        return _segment(esc50.load(clip), n_samples, rng)
    raise ValueError(f"unknown noise kind {kind!r}; choose one of {noise_kinds(esc50)}")


def _segment(source: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A random contiguous part of ``source`` (tiled when too short), preferring non-silent parts."""
    if source.size < n_samples:
        source = np.tile(source, int(np.ceil(n_samples / source.size)) + 1)
    best = None
    for _ in range(8):  # ESC-50 pads short sounds with digital silence: avoid all-silent cuts
        offset = int(rng.integers(0, source.size - n_samples + 1))
        piece = source[offset: offset + n_samples]
        if float(np.mean(piece**2)) > 1e-8:
            return piece.astype(np.float32, copy=True)
        best = piece
    return best.astype(np.float32, copy=True)


def mix_noise(
    speech: np.ndarray,
    noise: np.ndarray,
    snr_db: Decibels,
    proportion: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple[Seconds, Seconds]]:
    """Add noise to a random contiguous part of an utterance, at an SNR over that part.

    Args:
        speech: float32 [n] at 16 kHz.
        noise: float32 [m] at 16 kHz; a random part of it (tiled if m is short) is used.
        snr_db: speech-to-noise ratio in dB, measured over the covered samples only.
        proportion: share of the utterance covered, in [0, 1] (0 returns the speech as is).
        rng: random generator choosing the covered part and the noise offset.

    Returns:
        (mixed float32 [n], (start_sec, end_sec) of the covered part; (0, 0) when clean).
    """
    speech = np.asarray(speech, dtype=np.float32)
    if speech.ndim != 1 or speech.size == 0:
        raise ValueError(f"speech must be a non-empty [n] array, found shape {speech.shape}")
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"proportion must be in [0, 1], found {proportion}")
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, found {snr_db}")
    covered = int(round(proportion * speech.size))
    if covered == 0:
        return speech.copy(), (0.0, 0.0)
    start = int(rng.integers(0, speech.size - covered + 1))
    piece = _segment(np.asarray(noise, dtype=np.float32), covered, rng)
    clean_part = speech[start: start + covered]
    if float(np.mean(clean_part**2)) < 1e-12 or float(np.mean(piece**2)) < 1e-12:
        # Silent speech or silent noise over the span: the SNR is undefined; scale the noise
        # against the whole utterance instead so the call still honours the requested level.
        speech_power = float(np.mean(speech**2)) + 1e-12
        gain = np.sqrt(speech_power / (10 ** (snr_db / 10)) / (float(np.mean(piece**2)) + 1e-12))
        noisy_part = clean_part + gain * piece
    else:
        noisy_part = torchaudio.functional.add_noise(
            torch.from_numpy(clean_part)[None], torch.from_numpy(piece)[None], torch.tensor([float(snr_db)])
        )[0].numpy()
    mixed = speech.copy()
    mixed[start: start + covered] = noisy_part
    return mixed, (start / SAMPLE_RATE, (start + covered) / SAMPLE_RATE)


@dataclass
class NoiseConfig:
    """How a dataset corrupts its spoken queries.

    Attributes:
        preset: covered proportion preset, "clean", "normal" or "large" (paper Fig. 4).
        kinds: noise kinds drawn uniformly per item (see :func:`make_noise`). ESC-50 kinds need
            ``esc50_dir``: without one the config raises ValueError (no silent synthetic fallback).
        snr_db_range: (low, high) of the uniform SNR draw in dB. The paper gives no level;
            0-10 dB is our default: clearly audible noise that leaves the speech intelligible.
        esc50_dir: ESC-50 folder (its own layout, e.g. :data:`SHIPPED_ESC10_DIR`), or None.
    """

    preset: str = "normal"
    kinds: tuple[str, ...] = ("esc50",)
    snr_db_range: tuple[Decibels, Decibels] = (0.0, 10.0)
    esc50_dir: str | None = None
    _esc50: ESC50 | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.preset != "clean" and not self.esc50_dir and any(k.startswith("esc50") for k in self.kinds):
            raise ValueError(
                f"noise kinds {list(self.kinds)} ask for ESC-50 noise but no ESC-50 folder is configured: "
                f"pass --esc50 DIR (or esc50_dir=...), use the shipped subset {SHIPPED_ESC10_DIR}, "
                "or choose synthetic kinds (white, pink, brown, babble)"
            )

    def provenance(self, seed: int | None = None) -> dict:
        """Which noise source this config uses, for run summaries and evaluation output.

        Returns:
            {"source": "esc50-folder" | "shipped-esc10" | "synthetic", "dir", "classes",
            "licence_tier", "seed", "preset", "kinds"}; "dir"/"classes" are None for synthetic noise.
        """
        uses_esc = any(k.startswith("esc50") for k in self.kinds) and self.preset != "clean"
        info = {"source": "synthetic", "dir": None, "classes": None, "licence_tier": "generated (no licence)",
                "seed": seed, "preset": self.preset, "kinds": list(self.kinds)}
        if not uses_esc:
            return info
        esc = self.esc50()
        shipped = Path(self.esc50_dir).resolve() == SHIPPED_ESC10_DIR.resolve()
        all_esc10 = all(c.esc10 for c in esc.clips)
        info.update(source="shipped-esc10" if shipped else "esc50-folder",
                    dir="assets/noise/esc10" if shipped else str(self.esc50_dir),  # same on every machine
                    classes=len(esc.categories()),
                    licence_tier="CC-BY-3.0 (ESC-10)" if all_esc10 else "CC-BY-NC-3.0 (ESC-50)")
        return info

    def esc50(self) -> ESC50 | None:
        """The ESC-50 reader (opened once), or None when not configured."""
        if self.esc50_dir and self._esc50 is None:
            self._esc50 = ESC50(self.esc50_dir)
        return self._esc50

    def apply(self, speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[Seconds, Seconds], Decibels]:
        """Corrupt one utterance. Returns (mixed [n], covered span in s, snr_db or nan)."""
        proportion = draw_proportion(self.preset, rng)
        if proportion == 0.0:
            return speech, (0.0, 0.0), float("nan")
        esc = self.esc50()
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        snr_db = float(rng.uniform(*self.snr_db_range))
        noise = make_noise(kind, speech.size, rng, esc50=esc)
        mixed, span = mix_noise(speech, noise, snr_db, proportion, rng)
        return mixed, span, snr_db


# 30 CC BY 3.0 ESC-10 clips shipped with the repository (assets/noise/esc10/ATTRIBUTION.md).
SHIPPED_ESC10_DIR = Path(__file__).resolve().parents[2] / "assets" / "noise" / "esc10"
# ``--esc50 shared``: this workplace's fuller ESC-50 copy beside the repository (opt-in only).
SHARED_ESC50_KEYWORD = "shared"


def shared_esc50_dir() -> Path | None:
    """``../shared/data/esc50`` next to the repository when it exists (this workplace), else None."""
    candidate = Path(__file__).resolve().parents[3] / "shared" / "data" / "esc50"
    return candidate if (candidate / "meta" / "esc50.csv").exists() else None


def default_esc50_dir() -> Path | None:
    """The default noise folder: the shipped ESC-10 subset (the same on every machine), or None if absent."""
    return SHIPPED_ESC10_DIR if (SHIPPED_ESC10_DIR / "meta" / "esc50.csv").exists() else None


def resolve_esc50_dir(esc50_dir: str | Path | None) -> str | None:
    """The ESC-50 folder to use: explicit folder > shipped ESC-10 subset.

    Args:
        esc50_dir: a folder, ``"shared"`` for ``../shared/data/esc50`` (opt-in auto-discovery),
            or None for the shipped subset.

    Returns:
        the folder as a string, or None when no ESC source exists at all.
    """
    if esc50_dir is None:
        found = default_esc50_dir()
        return str(found) if found else None
    if str(esc50_dir) == SHARED_ESC50_KEYWORD:
        found = shared_esc50_dir()
        if found is None:
            raise ValueError("--esc50 shared: no ESC-50 folder at ../shared/data/esc50 beside the repository")
        return str(found)
    return str(esc50_dir)


def noise_config_from_args(preset: str, esc50_dir: str | Path | None = None,
                           kinds: tuple[str, ...] = ("esc50",)) -> NoiseConfig | None:
    """The noise configuration of a CLI's ``--noise`` and ``--esc50`` flags (None for clean).

    Args:
        preset: "clean", "normal" or "large".
        esc50_dir: ``--esc50`` as given (folder, ``"shared"`` or None); see :func:`resolve_esc50_dir`.
        kinds: noise kinds drawn per item (default real ESC noise only).

    Raises:
        ValueError: unknown preset, or ESC noise asked for with no ESC source at all.
    """
    draw_proportion(preset, np.random.default_rng(0))  # validates the preset name
    if preset == "clean":
        return None
    return NoiseConfig(preset=preset, kinds=tuple(kinds), esc50_dir=resolve_esc50_dir(esc50_dir))


def provenance_line(noise: NoiseConfig | None, seed: int | None = None) -> str:
    """One human-readable line of :meth:`NoiseConfig.provenance` (``clean`` when no noise)."""
    if noise is None:
        return "noise source: none (clean)"
    info = noise.provenance(seed)
    parts = [info["source"]] + ([info["dir"], f"{info['classes']} classes"] if info["dir"] else [])
    parts += [info["licence_tier"], f"seed {seed}", f"preset {info['preset']}"]
    return "noise source: " + " | ".join(str(x) for x in parts)
