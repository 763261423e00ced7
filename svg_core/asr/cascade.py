"""The ASR cascade baseline: noisy speech -> ASR -> text-query grounding ("Base+text(ASR)").

The VGCL paper (Table 2) compares grounding straight from noisy speech with transcribing it
first and grounding the transcript with a text model trained on clean captions; its "original
caption" row (Base+text(Ori)) feeds the reference sentence instead of the transcript::

    cascade = Cascade("whisper", Grounder.from_checkpoint("checkpoints/text_small"))
    result = cascade.run(video_features, duration_sec, waveform, sample_rate, reference="...")
    result["transcript"], result["understood"], result["grounding"]["start_sec"], result["latency_sec"]

Command line (synthetic or real ActivityNet Speech folder)::

    python -m svg_core.cascade evaluate --data DIR --checkpoint TEXT_CKPT --engine whisper --noise normal
    python -m svg_core.cascade evaluate --data DIR --checkpoint TEXT_CKPT --oracle     # original captions

WER text normalisation (both sides, :data:`WER_TRANSFORM`): lowercase, strip punctuation
(apostrophes and hyphens included, so "man's" -> "mans" on both sides), collapse spaces. Numbers
are not spelled out: Whisper writing "2" for "two" counts as an error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import jiwer
import numpy as np

from svg_core.asr.engines import ENGINES, ASREngine, get_engine
from svg_core.errors import UserInputError, run_cli

NO_QUERY = "no query understood"
WER_TRANSFORM = jiwer.Compose([
    jiwer.ToLowerCase(),
    jiwer.RemovePunctuation(),
    jiwer.RemoveMultipleSpaces(),
    jiwer.Strip(),
    jiwer.ReduceToListOfListOfWords(),
])


def normalize_text(text: str) -> str:
    """The WER normalisation as a string: ``"A man's dog, running."`` -> ``"a mans dog running"``."""
    return " ".join(WER_TRANSFORM(text)[0])


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (jiwer) after :data:`WER_TRANSFORM` normalisation.

    Args:
        references: reference sentences (each with at least one word after normalisation).
        hypotheses: transcripts, same length; "" is allowed (all words deleted).

    Returns:
        total (substitutions + deletions + insertions) / total reference words.
    """
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"need as many hypotheses as references (> 0), found {len(references)} and {len(hypotheses)}")
    refs = [normalize_text(r) for r in references]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(f"reference {empty[0]} has no words after normalisation: {references[empty[0]]!r}")
    # Normalise here and hand jiwer plain strings: its own transform rejects an empty hypothesis list.
    return float(jiwer.wer(refs, [normalize_text(h) for h in hypotheses]))


class Cascade:
    """ASR engine followed by a text grounder.

    Args:
        engine: an :class:`~svg_core.asr.ASREngine` or its name ("whisper", "sphinx").
        text_grounder: a :class:`~svg_core.predictor.Grounder` wrapping a text model
            (``query_kind == "text"``), trained on clean captions.
    """

    def __init__(self, engine: ASREngine | str, text_grounder) -> None:
        self.engine = get_engine(engine) if isinstance(engine, str) else engine
        if text_grounder.query_kind != "text":
            raise ValueError(f"the cascade needs a text grounder, found a {text_grounder.query_kind} one")
        self.grounder = text_grounder
        self.vocab = frozenset(text_grounder.cfg.vocab[2:])  # without <pad>, <unk>

    def known_words(self, text: str) -> list[str]:
        """Words of ``text`` (the text model's tokenizer) that are in the model's vocabulary."""
        from svg_core.models.text import tokenize

        return [w for w in tokenize(text) if w in self.vocab]

    def ground_text(self, video_features: np.ndarray, duration_sec: float, text: str) -> dict:
        """Ground a typed (or transcribed) query; the "original caption" path.

        Returns:
            dict with ``query``, ``known_words``, ``understood``, ``message`` and ``grounding``
            (the ``Grounder.localize`` result, or None when no word of the query is known).
        """
        known = self.known_words(text)
        if not known:
            shown = repr(text) if text.strip() else "an empty transcript"
            return {"query": text, "known_words": [], "understood": False,
                    "message": f"{NO_QUERY}: {shown} has no word the text model knows", "grounding": None}
        grounding = self.grounder.localize(video_features, duration_sec, text=text)
        return {"query": text, "known_words": known, "understood": True, "message": "", "grounding": grounding}

    def run(self, video_features: np.ndarray, duration_sec: float, waveform: np.ndarray, sample_rate: int,
            reference: str | None = None) -> dict:
        """Transcribe a spoken query and ground the transcript.

        Args:
            video_features: float [T, 500] C3D features of the whole video.
            duration_sec: video duration in seconds.
            waveform: mono float32 [n] at ``sample_rate`` Hz.
            sample_rate: Hz (resampled to 16 kHz by the engine).
            reference: the caption that was spoken, for the WER (optional).

        Returns:
            dict with ``engine``, ``transcript``, ``known_words``, ``understood`` (False when the
            transcript has no known word: then ``message`` starts with "no query understood" and
            ``grounding`` is None), ``grounding`` (``Grounder.localize`` output: ``start_sec``,
            ``end_sec``, ``top5_sec``...), ``wer`` (None without a reference), ``reference`` and
            ``latency_sec`` {"asr", "grounding", "total"} in seconds.
        """
        began = time.perf_counter()
        transcript = self.engine.transcribe(waveform, sample_rate)
        grounding_began = time.perf_counter()
        result = self.ground_text(video_features, duration_sec, transcript.text)
        ended = time.perf_counter()
        result.pop("query")
        result.update(
            engine=transcript.engine,
            transcript=transcript.text,
            reference=reference,
            wer=word_error_rate([reference], [transcript.text]) if reference is not None else None,
            latency_sec={"asr": transcript.seconds, "grounding": ended - grounding_began, "total": ended - began},
        )
        return result


def evaluate_cascade(args: argparse.Namespace) -> dict:
    """What ``python -m svg_core.cascade evaluate`` runs; returns WER, metrics and counts."""
    from tqdm import tqdm

    from svg_core.data.dataset import DatasetLayout, GroundingDataset
    from svg_core.engine.metrics import compute_metrics
    from svg_core.audio.noise import noise_config_from_args
    from svg_core.engine.predictor import Grounder

    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)
    grounder = Grounder.from_checkpoint(args.checkpoint, device=args.device)
    layout = DatasetLayout.from_dir(args.data)
    noise = noise_config_from_args(args.noise, args.esc50)
    dataset = GroundingDataset(layout, args.split, n_video_frames=grounder.cfg.n_video_frames, noise=noise,
                               seed=args.seed, with_audio=not args.oracle)
    n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    cache = TranscriptCache(getattr(args, "transcripts", None), args.engine, args.noise, args.seed)
    # what each query's recogniser hears, named by its samples (the cache is keyed by it); the waves
    # are remade on a miss rather than kept (a whole split of waves is hundreds of MB)
    digests = [] if args.oracle else [audio_digest(dataset.noisy_wave(i)[0]) for i in range(n)]
    engine: ASREngine | _NoEngine
    if args.oracle:
        engine = _NoEngine()
    elif cache.covers([dataset.records[i].query_id for i in range(n)], digests):
        engine = _NoEngine()  # every transcript is cached: do not load the ASR model
    else:
        engine = get_engine(args.engine, device="cpu" if getattr(args, "threads", 0) else "auto",
                            cpu_threads=getattr(args, "threads", 0))
    cascade = Cascade(engine, grounder)
    records, refs, hyps, not_understood, asr_sec = [], [], [], 0, []
    for index in tqdm(range(n), desc="cascade", unit="query", leave=False):
        rec = dataset.records[index]
        video = dataset.features.get(rec.video_id)
        cached = None if args.oracle else cache.get(rec.query_id, digests[index])
        if args.oracle:
            result = cascade.ground_text(video, rec.duration_sec, rec.sentence)
            hyps.append(rec.sentence)
        elif cached is not None:
            result = cascade.ground_text(video, rec.duration_sec, cached["transcript"])
            hyps.append(cached["transcript"])
            asr_sec.append(cached["asr_sec"])
        else:
            wave, _span, _snr = dataset.noisy_wave(index)
            result = cascade.run(video, rec.duration_sec, wave, 16_000)
            hyps.append(result["transcript"])
            asr_sec.append(result["latency_sec"]["asr"])
            cache.add(rec.query_id, result["transcript"], result["latency_sec"]["asr"], digests[index])
        refs.append(rec.sentence)
        not_understood += not result["understood"]
        windows = result["grounding"]["top5_sec"] if result["understood"] else []  # no query = a miss
        records.append({"query_id": rec.query_id, "video_id": rec.video_id, "duration_sec": rec.duration_sec,
                        "gt_window_sec": [rec.start_sec, rec.end_sec], "pred_windows_sec": windows})
    if getattr(args, "out", None):
        from pathlib import Path

        from svg_core.engine.metrics import write_predictions

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_predictions(records, args.out)
    return {
        "engine": "oracle (original caption)" if args.oracle else args.engine,
        "noise": "n/a" if args.oracle else args.noise,
        "synthetic": layout.synthetic,
        "n_queries": n,
        "wer": word_error_rate(refs, hyps),
        "not_understood": not_understood,
        "asr_sec_median": float(np.median(asr_sec)) if asr_sec else 0.0,
        "metrics": compute_metrics(records),
    }


def audio_digest(wave: np.ndarray) -> str:
    """A digest of the exact samples the recogniser hears (hex, 32 characters)."""
    return hashlib.blake2b(np.ascontiguousarray(wave, dtype=np.float32).tobytes(), digest_size=16).hexdigest()


class TranscriptCache:
    """Transcripts of an evaluation kept in a JSONL file, so that ASR runs once per query and setting.

    Each line is ``{"query_id", "engine", "noise", "seed", "transcript", "asr_sec", "audio"}``; only
    lines of this cache's (engine, noise preset, noise seed) are used, and a line is used for a query
    only when its ``audio`` digest (:func:`audio_digest` of the noisy wave) is the query's: two
    builds with the same wav names (``synth crossengine`` re-voices the test split under the same
    names) never share a transcript. Lines written before the digest existed carry none and are
    taken on the query id alone. New transcripts are appended as they come, so an interrupted run
    loses nothing. With ``path=None`` the cache is off.
    """

    def __init__(self, path: str | None, engine: str, noise: str, seed: int) -> None:
        from pathlib import Path

        self.path = Path(path) if path else None
        self.key = (engine, noise, int(seed))
        self.entries: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            for number, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    key = (item["engine"], item["noise"], int(item["seed"]))
                    entry = {"transcript": str(item["transcript"]), "asr_sec": float(item["asr_sec"]),
                             "audio": item.get("audio")}
                    query_id = str(item["query_id"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{self.path} line {number} is not a transcript record ({exc}); "
                                     "delete the file to recompute the transcripts") from None
                if key == self.key:
                    self.entries[query_id] = entry

    def covers(self, query_ids: list[str], digests: list[str]) -> bool:
        """True when every query has a usable transcript (``digests``: :func:`audio_digest` of each)."""
        return self.path is not None and all(self.get(q, d) is not None for q, d in zip(query_ids, digests, strict=True))

    def get(self, query_id: str, digest: str) -> dict | None:
        """The cached transcript of this query's audio, or None (none, or one of other audio)."""
        entry = self.entries.get(query_id)
        if entry is None or entry["audio"] not in (None, digest):
            return None
        return entry

    def add(self, query_id: str, transcript: str, asr_sec: float, digest: str) -> None:
        if self.path is None:
            return
        engine, noise, seed = self.key
        self.entries[query_id] = {"transcript": transcript, "asr_sec": asr_sec, "audio": digest}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"query_id": query_id, "engine": engine, "noise": noise, "seed": seed,
                                "transcript": transcript, "asr_sec": round(asr_sec, 4), "audio": digest}) + "\n")


class _NoEngine:
    """Placeholder engine for ``--oracle``: the reference caption is grounded, nothing is heard."""

    name = "none"
    device = "cpu"

    def transcribe(self, waveform: np.ndarray, sample_rate: int):  # pragma: no cover - never called
        raise RuntimeError("this cascade grounds given text (original captions or cached transcripts); it has no ASR")


def _print_summary(summary: dict, args: argparse.Namespace) -> None:
    from svg_core.engine.metrics import format_metrics

    tag = "SYNTHETIC data, " if summary["synthetic"] else ""
    print(f"cascade {summary['engine']} -> text grounder {args.checkpoint} on {args.data} "
          f"[{args.split}, {summary['n_queries']} queries, {tag}noise={summary['noise']}, seed={args.seed}]")
    print(f"WER {summary['wer'] * 100:.1f}%  (jiwer; lowercase, punctuation stripped)   "
          f"no query understood: {summary['not_understood']}/{summary['n_queries']}   "
          f"median ASR time {summary['asr_sec_median']:.2f} s")
    print(format_metrics(summary["metrics"]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m svg_core.cascade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="WER and grounding metrics of ASR -> text grounding on a split")
    ev.add_argument("--data", required=True, help="dataset folder (ActivityNet Speech layout)")
    ev.add_argument("--checkpoint", required=True, help="text grounder checkpoint folder (trained on captions)")
    ev.add_argument("--engine", default="whisper", choices=ENGINES, help="ASR engine (default whisper)")
    ev.add_argument("--noise", default="clean", choices=["clean", "normal", "large"],
                    help="noise preset mixed into the spoken queries, as the dataset does (default clean)")
    ev.add_argument("--oracle", action="store_true",
                    help="feed the original caption instead of the transcript (the paper's Base+text(Ori) row)")
    ev.add_argument("--split", default="test", help="split to evaluate (default test)")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N queries")
    ev.add_argument("--seed", type=int, default=0, help="noise seed (default 0, as svg_core.evaluate)")
    ev.add_argument("--esc50", default=None, help="ESC-50 folder for the noise, or \"shared\" for ../shared/data/esc50 (default: the shipped ESC-10 subset assets/noise/esc10)")
    ev.add_argument("--device", default="cpu", help="device of the text grounder (default cpu)")
    ev.add_argument("--threads", type=int, default=0,
                    help="CPU threads for the grounder and Whisper (0 = library defaults; 1 on a busy 2-core box)")
    ev.add_argument("--transcripts", default=None,
                    help="JSONL transcript cache: reused for queries already in it, new ones appended "
                         "(lets several text models share one ASR pass)")
    ev.add_argument("--out", default=None, help="write the per-query predictions here (JSONL, as python -m svg_core.evaluate --out writes)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise UserInputError(f"--limit must be >= 1, found {args.limit}")
    _print_summary(evaluate_cascade(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
