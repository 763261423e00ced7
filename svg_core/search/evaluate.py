"""Search evaluation: video retrieval for spoken queries, and VCMR against two baselines.

For every query of a split (or the first ``limit``) and every video of that split:

- **video retrieval**: AVLnet ranks the videos by their best window (exact index): R@1/5/10
  and median rank of the query's own video.
- **VCMR** (video corpus moment retrieval, ranked (video, moment) pairs; R@1/10/100 at IoU 0.5
  and 0.7), three systems on the same queries:

  - ``avlnet+grounder``: the top ``top_videos`` videos of the retrieval, each grounded by the
    audio grounder (its ``spans_per_video`` best spans); a pair scores
    ``softmax_v(retrieval / video_temperature) * span score``.
  - ``grounder only``: the grounder scores every video; pairs ranked by span score alone.
  - ``asr+text``: the Whisper transcript (``svg_core.asr``; cached in a JSONL file) grounded in
    every video by the text model; pairs ranked by span score (a transcript with no known word
    gives no pair: a miss).

The two baselines also rank whole videos, each video by its best span score (a video of an
ASR transcript with no known word ranks last, as do tied videos: pessimistic), so video R@k is
compared on the same queries (``video_baselines`` in the summary).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from svg_core.audio.noise import noise_config_from_args
from svg_core.data.dataset import DatasetLayout, GroundingDataset
from svg_core.engine.metrics import retrieval_metrics, vcmr_metrics
from svg_core.errors import UserInputError
from svg_core.search.encode import Embedder, embed_collection
from svg_core.search.index import IndexSettings, WindowIndex

VCMR_KS = (1, 10, 100)
VCMR_IOUS = (0.5, 0.7)


@dataclass
class SearchEvalConfig:
    """What ``python -m svg_core.search evaluate`` runs (one field per flag)."""

    data: str  # dataset folder
    split: str = "test"
    checkpoint: str | None = None  # AVLnet checkpoint; None = untrained (seeded) model
    grounder: str | None = "checkpoints/base"  # audio grounder for VCMR; None skips VCMR
    text_checkpoint: str | None = "checkpoints/text"  # text grounder of the ASR baseline
    asr_engine: str = "whisper"  # "whisper" | "sphinx" | "oracle" (the caption) | "none" (skip the baseline)
    transcripts: str | None = None  # JSONL transcript cache; None = no cache
    limit: int | None = None  # first N queries
    noise: str = "clean"  # noise preset of the spoken queries
    seed: int = 0  # noise seed and untrained-model seed
    window_clips: int | None = None  # default: the checkpoint's config
    stride_clips: int | None = None
    top_videos: int = 10  # videos grounded per query in the AVLnet+grounder system
    spans_per_video: int = 10  # grounder spans kept per (query, video)
    video_temperature: float = 1.0  # softmax temperature of the retrieval scores
    progress: bool = True


def _softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = (x - x.max()) / temperature
    e = np.exp(z)
    return e / e.sum()


def _pairs(spans: list, video_id: str, weight: float = 1.0) -> list[list]:
    return [[video_id, float(s), float(e), float(weight * score)] for s, e, score in spans]


def _ranked(pairs: list[list], k: int = max(VCMR_KS)) -> list[list]:
    return sorted(pairs, key=lambda p: -p[3])[:k]


def evaluate_search(cfg: SearchEvalConfig) -> dict:
    """Run the evaluation; returns {"video": ..., "vcmr": {system: metrics}, counts, timings}."""
    layout = DatasetLayout.from_dir(cfg.data)
    if cfg.limit is not None and cfg.limit < 1:
        raise UserInputError(f"--limit must be >= 1, found {cfg.limit}")
    embedder = Embedder.from_checkpoint(cfg.checkpoint) if cfg.checkpoint else Embedder.untrained(seed=cfg.seed)
    all_records = layout.records(cfg.split)[0]
    records = all_records[: cfg.limit] if cfg.limit else all_records
    if not records:
        raise UserInputError(f"{cfg.data}: the {cfg.split} split has no queries")
    video_ids = sorted({r.video_id for r in all_records})
    durations = {r.video_id: r.duration_sec for r in all_records}
    window = cfg.window_clips or embedder.cfg.window_clips
    stride = cfg.stride_clips or embedder.cfg.stride_clips
    noise = noise_config_from_args(cfg.noise, None)
    dataset = GroundingDataset(layout, cfg.split, n_video_frames=embedder.cfg.n_video_frames, noise=noise,
                               seed=cfg.seed, records=records)
    began = time.perf_counter()
    vectors, windows = embed_collection(embedder, cfg.data, window, stride, video_ids, progress=cfg.progress)
    index = WindowIndex.build(vectors, windows, IndexSettings("flat", window_clips=window, stride_clips=stride,
                                                              checkpoint=cfg.checkpoint or ""))
    waves = [dataset.noisy_wave(i)[0] for i in range(len(records))]
    queries = np.concatenate([embedder.embed_waves(waves[i:i + 32]) for i in range(0, len(waves), 32)])
    rankings = [index.search_videos(q, top_videos=len(video_ids)) for q in queries]
    ranks = [1 + [h["video_id"] for h in hits].index(r.video_id) for hits, r in zip(rankings, records)]
    summary: dict = {"split": cfg.split, "n_queries": len(records), "n_videos": len(video_ids),
                     "n_windows": len(windows), "window_clips": window, "stride_clips": stride,
                     "checkpoint": cfg.checkpoint or "untrained (seeded) AVLnet", "synthetic": layout.synthetic,
                     "video": retrieval_metrics(ranks, ks=(1, 5, 10)), "vcmr": {}, "video_baselines": {},
                     "retrieval_sec": time.perf_counter() - began}
    if cfg.grounder is None:
        return summary
    summary["vcmr"], summary["video_baselines"] = _vcmr(cfg, dataset, records, waves, rankings, video_ids, durations)
    return summary


def video_rank(best_scores: dict[str, float], video_id: str, n_videos: int) -> int:
    """1-based rank of ``video_id`` among ``n_videos`` ranked by their best span score.

    Ties count against the true video (pessimistic); a video with no score (none of its spans
    kept, or a transcript with no known word: no spans at all) ranks last, ``n_videos``.

    >>> video_rank({"a": 0.9, "b": 0.5, "c": 0.5}, "b", 3)
    3
    >>> video_rank({"a": 0.9}, "b", 4)
    4
    >>> video_rank({}, "b", 4)
    4
    """
    if video_id not in best_scores:
        return n_videos
    own = best_scores[video_id]
    return 1 + sum(1 for v, s in best_scores.items() if v != video_id and s >= own)


def _best_scores(pairs: list[list]) -> dict[str, float]:
    best: dict[str, float] = {}
    for video_id, _start, _end, score in pairs:
        best[video_id] = max(score, best.get(video_id, -np.inf))
    return best


def _vcmr(cfg: SearchEvalConfig, dataset: GroundingDataset, records: list, waves: list, rankings: list,
          video_ids: list[str], durations: dict[str, float]) -> tuple[dict, dict]:
    """The three VCMR systems' metrics (see the module docstring), and the two baselines' video
    retrieval metrics."""
    from svg_core.engine.predictor import Grounder

    grounder = Grounder.from_checkpoint(cfg.grounder)
    if grounder.query_kind != "audio":
        raise UserInputError(f"--grounder must be a spoken-query grounder, {cfg.grounder} takes text")
    feats = {v: dataset.features.get(v) for v in video_ids}
    gt = [{"video_id": r.video_id, "gt_window_sec": [r.start_sec, r.end_sec]} for r in records]
    combined, alone, alone_ranks = [], [], []
    for qi in tqdm(range(len(records)), desc="VCMR grounding", unit="query", disable=not cfg.progress):
        spans = {v: grounder.localize(feats[v], durations[v], audio=waves[qi], top_k=cfg.spans_per_video)["top5_sec"]
                 for v in video_ids}  # every video: the grounder-only baseline needs them all
        every = [p for v in video_ids for p in _pairs(spans[v], v)]
        alone.append({**gt[qi], "pred_pairs": _ranked(every)})
        alone_ranks.append(video_rank(_best_scores(every), records[qi].video_id, len(video_ids)))
        hits = rankings[qi]
        probs = _softmax(np.array([h["score"] for h in hits]), cfg.video_temperature)
        top = [(h["video_id"], float(p)) for h, p in zip(hits, probs)][: cfg.top_videos]
        combined.append({**gt[qi], "pred_pairs": _ranked([p for v, w in top for p in _pairs(spans[v], v, w)])})
    out = {"avlnet+grounder": vcmr_metrics(combined, VCMR_KS, VCMR_IOUS),
           "grounder only": vcmr_metrics(alone, VCMR_KS, VCMR_IOUS)}
    video = {"grounder only": retrieval_metrics(alone_ranks, ks=(1, 5, 10))}
    if cfg.asr_engine != "none" and cfg.text_checkpoint:
        out["asr+text"], asr_ranks = _asr_baseline(cfg, dataset, records, waves, feats, durations, gt)
        video["asr+text"] = retrieval_metrics(asr_ranks, ks=(1, 5, 10))
    return out, video


def _asr_baseline(cfg: SearchEvalConfig, dataset: GroundingDataset, records: list, waves: list,
                  feats: dict, durations: dict, gt: list[dict]) -> tuple[dict, list[int]]:
    """Transcribe (cached), ground the transcript in every video with the text model.

    Returns (VCMR metrics, per query the 1-based rank of its video by best span score)."""
    from svg_core.asr.cascade import Cascade, TranscriptCache, _NoEngine, audio_digest
    from svg_core.asr.engines import get_engine
    from svg_core.engine.predictor import Grounder

    text = Grounder.from_checkpoint(cfg.text_checkpoint)
    cache = TranscriptCache(cfg.transcripts, cfg.asr_engine, cfg.noise, cfg.seed)
    oracle = cfg.asr_engine == "oracle"
    digests = [audio_digest(w) for w in waves]
    need_asr = not oracle and not cache.covers([r.query_id for r in records], digests)
    cascade = Cascade(get_engine(cfg.asr_engine, device="cpu") if need_asr else _NoEngine(), text)
    out, ranks = [], []
    for qi, rec in enumerate(tqdm(records, desc="ASR baseline", unit="query", disable=not cfg.progress)):
        if oracle:
            transcript = rec.sentence
        elif (hit := cache.get(rec.query_id, digests[qi])) is not None:
            transcript = hit["transcript"]
        else:
            heard = cascade.engine.transcribe(waves[qi], 16_000)
            transcript = heard.text
            cache.add(rec.query_id, transcript, heard.seconds, digests[qi])
        pairs = []
        if cascade.known_words(transcript):  # no known word: the text model understands nothing (a miss)
            for v in feats:
                pairs += _pairs(text.localize(feats[v], durations[v], text=transcript,
                                              top_k=cfg.spans_per_video)["top5_sec"], v)
        out.append({**gt[qi], "pred_pairs": _ranked(pairs)})
        ranks.append(video_rank(_best_scores(pairs), rec.video_id, len(feats)))
    return vcmr_metrics(out, VCMR_KS, VCMR_IOUS), ranks


def format_summary(summary: dict) -> str:
    """The printed report: one line of video retrieval, one line per VCMR system."""
    v = summary["video"]
    lines = [f"search evaluate on {summary['split']}: {summary['n_queries']} queries, {summary['n_videos']} videos, "
             f"{summary['n_windows']} windows ({summary['window_clips']} clips, stride {summary['stride_clips']}); "
             f"model {summary['checkpoint']}" + (" [synthetic data]" if summary["synthetic"] else ""),
             f"video retrieval: R@1 {v['R@1']:.2f}  R@5 {v['R@5']:.2f}  R@10 {v['R@10']:.2f}  median rank {v['MedR']:.1f}"]
    for system, b in summary.get("video_baselines", {}).items():
        lines.append(f"video retrieval, {system} (best span per video): R@1 {b['R@1']:.2f}  R@5 {b['R@5']:.2f}  "
                     f"R@10 {b['R@10']:.2f}  median rank {b['MedR']:.1f}")
    for system, m in summary["vcmr"].items():
        cells = "  ".join(f"R@{k} IoU{iou} {m[f'R@{k},IoU={iou}']:.2f}" for iou in VCMR_IOUS for k in VCMR_KS)
        lines.append(f"VCMR {system:<16} {cells}")
    return "\n".join(lines)


def default_transcripts(data: str, split: str) -> str:
    """Default transcript cache: ``DIR/search_transcripts_<split>.jsonl``."""
    return str(Path(data) / f"search_transcripts_{split}.jsonl")
