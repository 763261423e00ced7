"""Pure handlers behind the UI and the command line: no gradio here, so they test without a UI.

The flow of one request: :func:`load_query` (microphone/upload file, typed sentence spoken by
the piper voice, or one of the video's own spoken queries) -> :func:`add_noise` -> :func:`ground`
(end-to-end model on the noisy speech, and the cascade: ASR -> text-query grounder) ->
:class:`GroundingResult`. :func:`robustness_sweep` repeats the grounding over SNRs and
:func:`evaluate_demo_set` over every query of the demo set (the failure-cases table).

User mistakes raise :class:`UserError`, whose message the UI shows as is.
"""

from __future__ import annotations

import math

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from svg_core.audio.frontend import SAMPLE_RATE, AudioError, check_speech, load_audio, log_mel
from svg_core.audio.noise import make_noise, mix_noise
from svg_core.engine.spans import iou_xx
from svg_core.errors import UserInputError
from svg_core.audio.tts import check_speakable

SOURCE_AUDIO = "Record or upload"
SOURCE_TTS = "Typed sentence (piper voice)"
SOURCE_OWN = "The video's own spoken query"
SPEECH_SOURCES = (SOURCE_AUDIO, SOURCE_TTS, SOURCE_OWN)
# Covered proportion per preset: the middle of the paper's ranges (svg_core.noise.NOISE_PRESETS).
PROPORTION_PRESETS = {"clean": 0.0, "normal": 0.6, "large": 0.8}
SWEEP_SNR_DB = (20.0, 15.0, 10.0, 5.0, 0.0, -5.0)
SWEEP_FALLBACK_KIND = "pink"  # noise used by the sweep when the current settings are clean
MAX_QUERY_SEC = 30.0
MAX_TYPED_CHARS = 300

Progress = Callable[[float, str], None]


class UserError(UserInputError):
    """A problem with the user's input; the UI shows the message as is."""


@dataclass(frozen=True)
class NoiseSettings:
    """How the query is corrupted.

    Attributes:
        kind: "none", or a kind of :func:`svg_core.noise.make_noise` ("white", "esc50:dog"...).
        snr_db: speech-to-noise ratio over the covered part, in dB.
        proportion: share of the utterance covered, in [0, 1].
        seed: seeds the noise and the covered part.
    """

    kind: str = "none"
    snr_db: float = 10.0
    proportion: float = 0.6
    seed: int = 0

    def __post_init__(self):
        # Checked here, before any work: the UI bounds these boxes, but the raw API does not.
        if not isinstance(self.kind, str):
            raise UserError(f"noise kind must be a name such as white or esc50:dog, found {self.kind!r}")
        for name, value in (("SNR", self.snr_db), ("covered proportion", self.proportion), ("seed", self.seed)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"{name} must be a number, found {value!r}")
        if not math.isfinite(self.snr_db) or not -50.0 <= self.snr_db <= 100.0:
            raise UserError(f"SNR must be a finite number of dB in [-50, 100], found {self.snr_db}")
        if not math.isfinite(self.proportion) or not 0.0 <= self.proportion <= 1.0:
            raise UserError(f"covered proportion must be in [0, 1], found {self.proportion}")
        if not 0 <= self.seed < 2**32 or int(self.seed) != self.seed:
            raise UserError(f"seed must be an integer in [0, 2**32 - 1], found {self.seed}")

    @property
    def clean(self) -> bool:
        """True when no noise is added."""
        return self.kind == "none" or self.proportion <= 0.0


@dataclass
class SpokenQuery:
    """A query waveform and what is known about it.

    Attributes:
        wave: float32 [n] at 16 kHz, the clean query.
        source: one of :data:`SPEECH_SOURCES`.
        reference: the words said, when known (typed sentence or annotated query).
        gt_sec: the annotated moment (start_sec, end_sec), only for the video's own queries.
        query_id: the annotated query's id (its wav name), or None.
    """

    wave: np.ndarray
    source: str
    reference: str | None = None
    gt_sec: tuple[float, float] | None = None
    query_id: str | None = None


def _load_file(audio_path: str | Path) -> np.ndarray:
    """Read and validate an uploaded or recorded file; every failure becomes a UserError."""
    try:
        wave = load_audio(audio_path, max_sec=MAX_QUERY_SEC)
        check_speech(wave, max_sec=MAX_QUERY_SEC)
    except FileNotFoundError as err:
        raise UserError(f"The audio file is missing: {err}") from err
    except AudioError as err:
        raise UserError(f"Unusable audio: {err}") from err
    return wave


def load_query(
    backend,
    demo,
    source: str,
    video_id: str,
    audio_path: str | Path | None = None,
    typed_text: str | None = None,
    query_id: str | None = None,
) -> SpokenQuery:
    """Turn the UI's speech inputs into a clean 16 kHz query.

    Args:
        backend: an :class:`app.resources.Backend` (for the TTS voice).
        demo: the :class:`app.resources.DemoSet`.
        source: one of :data:`SPEECH_SOURCES`.
        video_id: the chosen video (checked to exist).
        audio_path: recorded or uploaded file (wav/flac/mp3/ogg, any rate and channels).
        typed_text: sentence for the piper voice.
        query_id: one of the video's annotated queries.

    Returns:
        A :class:`SpokenQuery`.

    Raises:
        UserError: no audio, silence, over 30 s, corrupt file, unknown video or query.
    """
    check_video(demo, video_id)
    if source in (SOURCE_AUDIO, SOURCE_TTS):
        return load_free_query(backend, source, audio_path, typed_text)
    if source == SOURCE_OWN:
        if video_id in demo.added:
            raise UserError(f"{video_id} is a new scene: it has no spoken queries. Record, upload or type one "
                            "(its own captions are offered as examples).")
        if not query_id:
            raise UserError("No query chosen: pick one of the video's spoken queries.")
        try:
            record = demo.record(query_id)
        except KeyError as err:
            raise UserError(str(err.args[0])) from err
        if record.video_id != video_id:
            raise UserError(f"Query {query_id} belongs to video {record.video_id}, not {video_id}.")
        path = demo.audio_path(record)
        if path is None:
            raise UserError(f"The demo set has no audio file for query {query_id}.")
        return SpokenQuery(_load_file(path), source, record.sentence, (record.start_sec, record.end_sec), query_id)
    raise UserError(f"Unknown speech source {source!r}; choose one of {list(SPEECH_SOURCES)}.")


def load_free_query(backend, source: str, audio_path: str | Path | None = None,
                    typed_text: str | None = None) -> SpokenQuery:
    """A query that needs no video: a recording/upload, or a typed sentence spoken by piper.

    Used by :func:`load_query` and by the search tab (``app/search.py``), which has no chosen video.

    Raises:
        UserError: no audio, silence, over 30 s, corrupt file, empty or unspeakable sentence.
    """
    if source == SOURCE_AUDIO:
        if not audio_path:
            raise UserError("No audio: record a query with the microphone or upload a file first.")
        return SpokenQuery(_load_file(audio_path), source)
    if source == SOURCE_TTS:
        text = (typed_text or "").strip()
        if not text:
            raise UserError("No sentence: type what the piper voice should say.")
        if len(text) > MAX_TYPED_CHARS:
            raise UserError(f"The sentence is {len(text)} characters long; the limit is {MAX_TYPED_CHARS}.")
        try:
            text = check_speakable(text)  # NUL, escapes or no word at all never reach piper
        except UserInputError as err:
            raise UserError(f"Cannot speak this: {err}.") from None
        wave = backend.speak(text)
        return SpokenQuery(wave, source, reference=text)
    raise UserError(f"Unknown speech source {source!r}; choose one of {[SOURCE_AUDIO, SOURCE_TTS]}.")


def check_video(demo, video_id: str | None) -> None:
    """Raise UserError for a missing or unknown video id."""
    if not video_id:
        raise UserError("No video chosen: pick one of the demo videos.")
    try:
        demo.check_video(video_id)
    except KeyError as err:
        raise UserError(str(err.args[0])) from err


def add_noise(wave: np.ndarray, noise: NoiseSettings, esc50=None) -> tuple[np.ndarray, tuple[float, float]]:
    """Corrupt a query as the settings say (seeded; the global RNG is untouched).

    Args:
        wave: float32 [n] at 16 kHz.
        noise: the :class:`NoiseSettings`.
        esc50: a :class:`svg_core.noise.ESC50` reader for the ESC-50 kinds, or None.

    Returns:
        (noisy float32 [n] with peak <= 0.99, (start_sec, end_sec) of the covered part).
    """
    if not 0.0 <= noise.proportion <= 1.0:
        raise UserError(f"The noise proportion must be in [0, 1], found {noise.proportion}.")
    if noise.clean:
        return wave.astype(np.float32, copy=True), (0.0, 0.0)
    rng = np.random.default_rng(int(noise.seed))
    try:
        noise_wave = make_noise(noise.kind, wave.size, rng, esc50=esc50)
    except ValueError as err:
        raise UserError(str(err)) from err
    mixed, span = mix_noise(wave, noise_wave, float(noise.snr_db), float(noise.proportion), rng)
    peak = float(np.max(np.abs(mixed)))
    if peak > 0.99:  # low SNRs can clip on playback; a global gain changes neither model's input
        mixed = mixed * (0.99 / peak)
    return mixed.astype(np.float32), span


def _iou(pred: dict | None, gt_sec: tuple[float, float] | None) -> float | None:
    if pred is None or gt_sec is None:
        return None
    return float(iou_xx(np.array([pred["start_sec"], pred["end_sec"]]), np.array(gt_sec)))


@dataclass
class GroundingResult:
    """Everything one click shows.

    Attributes:
        video_id, duration_sec: the video.
        video_path: its mp4, or None.
        query: the clean :class:`SpokenQuery`.
        noisy_wave: float32 [n] at 16 kHz, what both paths heard.
        noise: the settings; noise_span_sec: the covered part (0, 0) when clean.
        e2e: the end-to-end grounder's ``localize`` dict; e2e_iou: IoU with the GT when known.
        transcript: the ASR text ("" when nothing was recognised); wer: vs the reference.
        cascade: the text grounder's dict on the transcript, None when the cascade understood no
            query (empty transcript, or no word the text model knows); cascade_message: why.
        latency_sec: "end_to_end", "asr", "text_grounding", "cascade" (asr + text) in seconds.
        device: where the end-to-end model ran.
        model_name, asr_engine: the choices.
        fake: which parts ran on the fake predictor/ASR ({"model", "asr", "text_grounder"}).
    """

    video_id: str
    duration_sec: float
    video_path: Path | None
    query: SpokenQuery
    noisy_wave: np.ndarray
    noise: NoiseSettings
    noise_span_sec: tuple[float, float]
    e2e: dict
    e2e_iou: float | None
    transcript: str
    wer: float | None
    cascade: dict | None
    cascade_iou: float | None
    cascade_message: str
    latency_sec: dict[str, float]
    device: str
    model_name: str
    asr_engine: str
    fake: dict[str, bool] = field(default_factory=dict)

    @property
    def any_fake(self) -> bool:
        """True when any part ran on a fake."""
        return any(self.fake.values())

    def summary(self) -> dict:
        """JSON-able numbers of the result (what the API and the CLI print)."""
        def seg(pred):
            return None if pred is None else [round(pred["start_sec"], 2), round(pred["end_sec"], 2)]

        return {
            "video_id": self.video_id,
            "query_id": self.query.query_id,
            "source": self.query.source,
            "ground_truth_sec": None if self.query.gt_sec is None else [round(x, 2) for x in self.query.gt_sec],
            "end_to_end_sec": seg(self.e2e),
            "end_to_end_iou": self.e2e_iou,
            "cascade_sec": seg(self.cascade),
            "cascade_iou": self.cascade_iou,
            "cascade_message": self.cascade_message,
            "transcript": self.transcript,
            "reference": self.query.reference,
            "wer": self.wer,
            "noise": {"kind": self.noise.kind, "snr_db": self.noise.snr_db, "proportion": self.noise.proportion,
                      "seed": self.noise.seed, "covered_sec": [round(x, 2) for x in self.noise_span_sec]},
            "latency_sec": {k: round(v, 3) for k, v in self.latency_sec.items()},
            "device": self.device,
            "model": self.model_name,
            "asr_engine": self.asr_engine,
            "fake": self.fake,
        }


def ground_end_to_end(backend, demo, query: SpokenQuery, video_id: str, noise: NoiseSettings,
                      model_name: str, asr_engine: str) -> GroundingResult:
    """Corrupt the query and ground it with the end-to-end model; the cascade fields stay empty
    (``cascade_message == "pending"``) until :func:`add_cascade`. Arguments as :func:`ground`."""
    check_video(demo, video_id)
    if model_name not in backend.model_names():
        raise UserError(f"Unknown model {model_name!r}; available: {backend.model_names()}.")
    if asr_engine not in ("whisper", "sphinx"):
        raise UserError(f"Unknown ASR engine {asr_engine!r}; choose 'whisper' or 'sphinx'.")
    feats = demo.video_features(video_id)
    duration_sec = demo.duration_sec(video_id)
    noisy, span = add_noise(query.wave, noise, backend.esc50() if noise.kind.startswith("esc50") else None)
    grounder = backend.grounder(model_name)
    begin = time.perf_counter()
    with backend.lock(f"model:{model_name}"):
        e2e = grounder.localize(feats, duration_sec, audio=noisy)
    e2e_sec = time.perf_counter() - begin
    return GroundingResult(
        video_id=video_id,
        duration_sec=duration_sec,
        video_path=demo.video_path(video_id),
        query=query,
        noisy_wave=noisy,
        noise=noise,
        noise_span_sec=span,
        e2e=e2e,
        e2e_iou=_iou(e2e, query.gt_sec),
        transcript="",
        wer=None,
        cascade=None,
        cascade_iou=None,
        cascade_message="pending",
        latency_sec={"end_to_end": e2e_sec},
        device=str(e2e.get("device", getattr(grounder, "device", "cpu"))),
        model_name=model_name,
        asr_engine=asr_engine,
        fake={"model": backend.is_fake(model_name), "asr": backend.asr_is_fake(),
              "text_grounder": backend.text_is_fake()},
    )


def add_cascade(backend, demo, result: GroundingResult) -> GroundingResult:
    """Run the ASR cascade on the same noisy query and fill the cascade fields of ``result``."""
    feats = demo.video_features(result.video_id)
    cascade = backend.cascade(result.asr_engine)
    with backend.lock(f"cascade:{result.asr_engine}"):  # ASR decoders keep state: one utterance at a time
        out = cascade.run(feats, result.duration_sec, result.noisy_wave, SAMPLE_RATE, reference=result.query.reference)
    # An empty transcript, or one without a word the text model knows, is a valid ASR result:
    # the cascade then understood no query and has no prediction.
    prediction = out["grounding"] if out["understood"] else None
    latency = {"end_to_end": result.latency_sec["end_to_end"], "asr": out["latency_sec"]["asr"],
               "text_grounding": out["latency_sec"]["grounding"], "cascade": out["latency_sec"]["total"]}
    return replace(result, transcript=out["transcript"].strip(), wer=out["wer"], cascade=prediction,
                   cascade_iou=_iou(prediction, result.query.gt_sec), cascade_message=out["message"],
                   latency_sec=latency)


def ground(backend, demo, query: SpokenQuery, video_id: str, noise: NoiseSettings,
           model_name: str, asr_engine: str) -> GroundingResult:
    """Ground one query with the end-to-end model and with the ASR cascade.

    Args:
        backend: :class:`app.resources.Backend`.
        demo: :class:`app.resources.DemoSet`.
        query: from :func:`load_query`.
        video_id: the video to search.
        noise: how to corrupt the query first.
        model_name: one of ``backend.model_names()``.
        asr_engine: "whisper" or "sphinx".

    Returns:
        A :class:`GroundingResult`.
    """
    result = ground_end_to_end(backend, demo, query, video_id, noise, model_name, asr_engine)
    return add_cascade(backend, demo, result)


def spectrogram(wave: np.ndarray) -> np.ndarray:
    """Normalised log-Mel of a query for display, float32 [frames, 128] (10 ms frames)."""
    return log_mel(wave).numpy()


@dataclass
class SweepResult:
    """IoU against SNR for both paths.

    Attributes:
        snr_db: the levels, in dB.
        e2e_iou, cascade_iou: one value per level (cascade 0 when nothing was understood).
        transcripts: the ASR text per level.
        reference: "ground truth", or "clean prediction" when the query has no annotation
            (then each path is scored against its own prediction on the clean query).
        kind, proportion: the noise used.
    """

    snr_db: list[float]
    e2e_iou: list[float]
    cascade_iou: list[float]
    transcripts: list[str]
    reference: str
    kind: str
    proportion: float


def robustness_sweep(backend, demo, query: SpokenQuery, video_id: str, noise: NoiseSettings, model_name: str,
                     asr_engine: str, snrs_db=SWEEP_SNR_DB, progress: Progress | None = None) -> SweepResult:
    """Ground the same query at each SNR (same noise clip, same covered part, same seed).

    When the current settings are clean the sweep uses pink noise over 60% of the query.
    """
    kind = noise.kind if noise.kind != "none" else SWEEP_FALLBACK_KIND
    proportion = noise.proportion if noise.proportion > 0 else PROPORTION_PRESETS["normal"]
    gt = query.gt_sec
    ref_e2e = ref_cascade = gt
    reference = "ground truth"
    if gt is None:
        clean = ground(backend, demo, query, video_id, NoiseSettings(), model_name, asr_engine)
        reference = "clean prediction"
        ref_e2e = (clean.e2e["start_sec"], clean.e2e["end_sec"])
        ref_cascade = None if clean.cascade is None else (clean.cascade["start_sec"], clean.cascade["end_sec"])
    out = SweepResult([], [], [], [], reference, kind, proportion)
    for i, snr_db in enumerate(snrs_db):
        if progress is not None:
            progress(i / len(snrs_db), f"SNR {snr_db:g} dB")
        settings = NoiseSettings(kind, float(snr_db), proportion, noise.seed)
        result = ground(backend, demo, query, video_id, settings, model_name, asr_engine)
        out.snr_db.append(float(snr_db))
        out.e2e_iou.append(_iou(result.e2e, ref_e2e) or 0.0)
        out.cascade_iou.append(_iou(result.cascade, ref_cascade) or 0.0)
        out.transcripts.append(result.transcript)
    return out


CASE_COLUMNS = ["query_id", "video_id", "sentence", "e2e_iou", "cascade_iou", "e2e_minus_cascade", "transcript", "wer"]
SORT_KEYS = {
    "end-to-end IoU (worst first)": ("e2e_iou", False),
    "end-to-end minus cascade (cascade better first)": ("e2e_minus_cascade", False),
    "end-to-end minus cascade (end-to-end better first)": ("e2e_minus_cascade", True),
    "cascade IoU (worst first)": ("cascade_iou", False),
}


def evaluate_demo_set(backend, demo, noise: NoiseSettings, model_name: str, asr_engine: str,
                      progress: Progress | None = None, limit: int | None = None,
                      skipped: list[tuple[str, str]] | None = None) -> list[dict]:
    """Ground every annotated query of the demo set (its own audio) with both paths.

    Query i uses noise seed ``noise.seed + i`` so the cases differ but are reproducible. A
    query whose own file is unusable (a corrupt wav) is left out, not fatal: its id and the
    reason go to ``skipped``.

    Returns:
        One dict per usable query with the keys of :data:`CASE_COLUMNS`.

    Raises:
        UserError: no query has audio, or none could be evaluated.
    """
    records = [r for r in demo.records if r.video_id in demo.video_ids and demo.audio_path(r) is not None]
    records = records[:limit] if limit is not None else records
    if not records:
        raise UserError(f"The demo set {demo.root} has no spoken queries with audio to evaluate.")
    rows = []
    for i, record in enumerate(records):
        if progress is not None:
            progress(i / len(records), f"query {i + 1}/{len(records)}")
        try:
            query = load_query(backend, demo, SOURCE_OWN, record.video_id, query_id=record.query_id)
        except UserInputError as err:
            if skipped is not None:
                skipped.append((record.query_id, str(err)))
            continue
        settings = NoiseSettings(noise.kind, noise.snr_db, noise.proportion, noise.seed + i)
        result = ground(backend, demo, query, record.video_id, settings, model_name, asr_engine)
        e2e_iou, cascade_iou = result.e2e_iou or 0.0, result.cascade_iou or 0.0
        rows.append({
            "query_id": record.query_id, "video_id": record.video_id, "sentence": record.sentence,
            "e2e_iou": round(e2e_iou, 3), "cascade_iou": round(cascade_iou, 3),
            "e2e_minus_cascade": round(e2e_iou - cascade_iou, 3), "transcript": result.transcript,
            "wer": None if result.wer is None else round(result.wer, 3),
        })
    if not rows:
        raise UserError(f"None of the {len(records)} spoken queries could be read"
                        + (f"; the first: {skipped[0][1]}" if skipped else "."))
    return rows


def sort_cases(rows: list[dict], by: str) -> list[dict]:
    """Rows sorted by one of :data:`SORT_KEYS` (ties broken by query id)."""
    if by not in SORT_KEYS:
        raise UserError(f"Unknown sort order {by!r}; choose one of {list(SORT_KEYS)}.")
    key, descending = SORT_KEYS[by]
    ordered = sorted(rows, key=lambda r: r["query_id"])
    return sorted(ordered, key=lambda r: r[key], reverse=descending)


def cases_table(rows: list[dict]) -> list[list]:
    """Rows as lists in :data:`CASE_COLUMNS` order (for a table widget)."""
    return [[row[c] for c in CASE_COLUMNS] for row in rows]
