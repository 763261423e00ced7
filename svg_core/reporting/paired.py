"""Paired differences of two runs on the same test queries, with a bootstrap interval clustered
by video (the PAIRED, Table 3/4 and weak-table intervals of ``svg_core.results``).

Per-query scores come from :func:`svg_core.engine.metrics.compute_metrics` on one-query lists, so
there is still one evaluator.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from svg_core.engine.metrics import compute_metrics, read_predictions


@functools.lru_cache(maxsize=32)
def _scores_by_query(path: str, mtime_ns: int) -> dict[str, dict]:
    """Every metric of each query alone; cached by path and modification time so that a paired
    table asking for two metrics reads each prediction file once (a rewritten file is re-read)."""
    return {rec["query_id"]: compute_metrics([rec]) for rec in read_predictions(path)}


def per_query(path: str | Path, metric: str) -> dict[str, float]:
    """``{query_id: metric of that query alone}`` (0 or 100 for a recall, the IoU in % for mIoU),
    each from :func:`compute_metrics` on a one-query list, so there is still one evaluator."""
    path = Path(path)
    return {q: scores[metric] for q, scores in _scores_by_query(str(path), path.stat().st_mtime_ns).items()}


def _video_of_query(path: str | Path) -> dict[str, str]:
    """``{query_id: video_id}`` of a prediction file (a record without ``video_id`` is its own video)."""
    path = Path(path)
    return {q: video for q, video in _videos_by_query(str(path), path.stat().st_mtime_ns).items()}


@functools.lru_cache(maxsize=32)
def _videos_by_query(path: str, mtime_ns: int) -> dict[str, str]:
    return {rec["query_id"]: str(rec.get("video_id", rec["query_id"])) for rec in read_predictions(path)}


def paired_difference(files_a: dict[int, Path], files_b: dict[int, Path], metric: str = "R1@0.5",
                      n_boot: int = 10000, seed: int = 0) -> dict:
    """Mean of ``metric`` for A minus B on the same queries, with a 95 % paired bootstrap interval
    clustered by video.

    Each query's value is averaged over the seeds that A and B both have. The queries of one video
    are not independent (one scene, often overlapping moments), so the bootstrap resamples whole
    videos with replacement (seeded; ``scipy.stats.bootstrap``, percentile method) and the
    statistic is the mean over the resampled videos' queries. The interval reflects which videos
    the test split happens to hold, not the training seeds (whose spread the tables' ± shows).

    Args:
        files_a, files_b: ``{seed: prediction file}`` (see :func:`seed_files`).

    Returns:
        ``{"diff", "ci_low", "ci_high", "seeds", "n_queries", "n_videos"}``, differences in
        percentage points.

    Raises:
        ValueError: no common seed, neither file's queries contain the other's (a file of the first
        N queries is compared on those N; ``n_queries`` says how many), or the queries come
        from fewer than two videos (no interval can be clustered by video).
    """
    from scipy.stats import bootstrap  # scipy is heavy to import; only the paired tables need it

    seeds = sorted(set(files_a) & set(files_b))
    if not seeds:
        raise ValueError(f"no seed in common: {sorted(files_a)} and {sorted(files_b)}")
    per_seed = [(per_query(files_a[s], metric), per_query(files_b[s], metric)) for s in seeds]
    # a run evaluated on the first N queries only (a cascade's --limit) is compared on those N: the
    # other side's query set must contain them; anything else is a mismatch, never a silent overlap
    ids = sorted(min((set(x) for pair in per_seed for x in pair), key=len))
    for a, b in per_seed:
        if not (set(ids) <= set(a) and set(ids) <= set(b)) or (set(a) != set(ids) and set(b) != set(ids)):
            raise ValueError("the prediction files do not score the same queries: are they from one build and split?")
    diffs = np.array([np.mean([a[q] - b[q] for a, b in per_seed]) for q in ids])  # [Q]
    video_of = _video_of_query(files_a[seeds[0]])
    videos = sorted({video_of[q] for q in ids})
    if len(videos) < 2:
        raise ValueError(f"the {len(ids)} queries come from {len(videos)} video: a video-clustered interval needs two")
    index = {v: i for i, v in enumerate(videos)}
    cluster = np.array([index[video_of[q]] for q in ids])
    sums = np.bincount(cluster, weights=diffs, minlength=len(videos))  # [V] sum of the video's query differences
    counts = np.bincount(cluster, minlength=len(videos)).astype(float)  # [V] its number of queries
    if np.ptp(diffs) == 0.0:  # every query differs by the same amount: the interval is that point
        low = high = float(diffs[0])
    else:
        res = bootstrap((sums, counts), lambda s, n, axis=-1: s.sum(axis=axis) / n.sum(axis=axis), paired=True,
                        vectorized=True, n_resamples=n_boot, method="percentile", random_state=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return {"diff": float(diffs.mean()), "ci_low": low, "ci_high": high,
            "seeds": seeds, "n_queries": len(ids), "n_videos": len(videos)}
