"""The project's only metric code: R@n at IoU=m and mIoU over prediction records.

Prediction records (one JSON object per line in a ``.jsonl`` file)::

    {"query_id": "syn000001_test_1.wav", "video_id": "v_syn000001", "duration_sec": 118.0,
     "gt_window_sec": [12.0, 40.5], "pred_windows_sec": [[10.2, 38.0, 0.41], ...]}

``pred_windows_sec`` is ranked best first. IoU is the standard temporal IoU in seconds
(the SIL code's "+1 s smoothing" is not used; see method-notes 5.7). R@n,IoU=m counts a hit
when any of the top n windows has IoU >= m (VGCL uses >=). Values are percentages.

The command line around it is ``python -m svg_core.evaluate`` (``svg_core.engine.evaluation``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from svg_core.data.atomic_file import atomic_write
from svg_core.engine.spans import iou_xx
from svg_core.errors import UserInputError

IOU_THRESHOLDS = (0.1, 0.3, 0.5, 0.7)  # 0.1 is reported by the SIL paper (R@n, IoU=0.1)
RECALL_AT = (1, 5)


def compute_metrics(records: list[dict], thresholds=IOU_THRESHOLDS, recall_at=RECALL_AT) -> dict:
    """R@n,IoU=m (percent) and mIoU (percent, from the top-1 window).

    Args:
        records: prediction records (see module docstring).
        thresholds: IoU thresholds m.
        recall_at: the n of R@n.

    Returns:
        {"R1@0.3": ..., "R5@0.7": ..., "mIoU": ..., "n_queries": N}.

    >>> r = [{"gt_window_sec": [0, 10], "pred_windows_sec": [[0, 5, 0.9], [0, 10, 0.1]]}]
    >>> m = compute_metrics(r)
    >>> m["R1@0.5"], m["R1@0.7"], m["R5@0.7"], m["mIoU"]
    (100.0, 0.0, 100.0, 50.0)
    """
    if not records:
        raise ValueError("no prediction records to evaluate")
    top_n = max(recall_at)
    ious = np.zeros((len(records), top_n))
    for row, rec in enumerate(records):
        gt = np.asarray(rec["gt_window_sec"], dtype=np.float64)
        preds = rec["pred_windows_sec"]
        if len(preds) == 0:
            continue  # no prediction counts as a miss
        windows = np.asarray([p[:2] for p in preds[:top_n]], dtype=np.float64)
        ious[row, : len(windows)] = iou_xx(windows, gt[None, :])
    metrics = {}
    for n in recall_at:
        best = ious[:, :n].max(axis=1)
        for m in thresholds:
            metrics[f"R{n}@{m}"] = float(np.mean(best >= m) * 100.0)
    metrics["mIoU"] = float(np.mean(ious[:, 0]) * 100.0)
    metrics["n_queries"] = len(records)
    return metrics


def format_metrics(metrics: dict, title: str = "") -> str:
    """One header line and one value line: R@1 and R@5 at each IoU, then mIoU."""
    keys = [k for k in metrics if k.startswith("R")] + ["mIoU"]
    header = " ".join(f"{k:>8}" for k in keys)
    values = " ".join(f"{metrics[k]:8.2f}" for k in keys)
    prefix = f"{title}\n" if title else ""
    return f"{prefix}{header}\n{values}\n(n = {metrics['n_queries']} queries)"


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"{what} must be a finite number, found {value!r}")
    return float(value)


def validate_record(rec) -> dict:
    """Check one prediction record; raises UserInputError naming the bad field."""
    if not isinstance(rec, dict):
        raise UserInputError(f"expected a JSON object, found {type(rec).__name__}")
    for key in ("gt_window_sec", "pred_windows_sec"):
        if key not in rec:
            raise UserInputError(f"missing key {key!r} (a record needs gt_window_sec and pred_windows_sec)")
    duration = rec.get("duration_sec")
    if duration is not None and _finite(duration, "duration_sec") <= 0:
        raise UserInputError(f"duration_sec must be positive, found {duration!r}")
    gt = rec["gt_window_sec"]
    if not isinstance(gt, list) or len(gt) != 2:
        raise UserInputError(f"gt_window_sec must be [start_sec, end_sec] (2 numbers), found {gt!r}")
    windows = [("gt_window_sec", gt)]
    preds = rec["pred_windows_sec"]
    if not isinstance(preds, list):
        raise UserInputError(f"pred_windows_sec must be a list of [start_sec, end_sec, score], found {preds!r}")
    for i, p in enumerate(preds):
        if not isinstance(p, list) or len(p) < 2:
            raise UserInputError(f"pred_windows_sec[{i}] must be [start_sec, end_sec(, score)], found {p!r}")
        for j, v in enumerate(p[2:], 2):
            _finite(v, f"pred_windows_sec[{i}][{j}]")
        windows.append((f"pred_windows_sec[{i}]", p))
    for name, (start, end, *_) in windows:
        start, end = _finite(start, f"{name} start"), _finite(end, f"{name} end")
        if start < 0 or start >= end:
            raise UserInputError(f"{name} needs 0 <= start < end, found [{start}, {end}]")
        if duration is not None and end > float(duration) + 1e-6:
            raise UserInputError(f"{name} ends at {end} s, past duration_sec {duration}")
    return rec


def read_predictions(path: str | Path) -> list[dict]:
    """Records from a jsonl file; a malformed line raises UserInputError naming its line number."""
    records = []
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rec = validate_record(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as err:
                raise UserInputError(f"{path} line {line_no}: not valid JSON ({err})") from err
            except UserInputError as err:
                raise UserInputError(f"{path} line {line_no}: {err}; fix or drop that record") from err
            records.append(rec)
    return records


def write_predictions(records: list[dict], path: str | Path) -> None:
    """Write records as jsonl, atomically: a run killed while writing leaves no half file."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            for rec in records:
                handle.write(json.dumps(rec) + "\n")

    atomic_write(Path(path), write)


# ---------------------------------------------------------------------------------------------
# Retrieval across a collection (AVLnet search, VCMR)
# ---------------------------------------------------------------------------------------------


def retrieval_metrics(ranks: list[int], ks=(1, 5, 10)) -> dict:
    """Recall@k (percent) and median rank from the 1-based rank of each query's positive.

    >>> retrieval_metrics([1, 2, 7, 30], ks=(1, 5))
    {'R@1': 25.0, 'R@5': 50.0, 'MedR': 4.5, 'n': 4}
    """
    if not ranks:
        raise UserInputError("no queries to score")
    arr = np.asarray(ranks, dtype=np.int64)
    if (arr < 1).any():
        raise ValueError(f"ranks are 1-based, found {int(arr.min())}")
    out = {f"R@{k}": float(100.0 * (arr <= k).mean()) for k in ks}
    return {**out, "MedR": float(np.median(arr)), "n": int(arr.size)}


def vcmr_metrics(records: list[dict], ks=(1, 10, 100), thresholds=(0.5, 0.7)) -> dict:
    """Video corpus moment retrieval R@k at IoU m (percent) over ranked (video, moment) pairs.

    Args:
        records: one per query: ``video_id`` and ``gt_window_sec`` [start, end] of the truth, and
            ``pred_pairs`` [[video_id, start_sec, end_sec, score], ...] best first. A hit at k
            when one of the top k pairs is in the right video with IoU >= m.

    >>> vcmr_metrics([{"video_id": "a", "gt_window_sec": [0, 10],
    ...                "pred_pairs": [["b", 0, 10, 0.9], ["a", 1, 10, 0.5]]}], ks=(1, 2), thresholds=(0.5,))
    {'R@1,IoU=0.5': 0.0, 'R@2,IoU=0.5': 100.0, 'n': 1}
    """
    if not records:
        raise UserInputError("no queries to score")
    out = {}
    for m in thresholds:
        for k in ks:
            hits = [any(v == r["video_id"] and iou_xx((s, e), tuple(r["gt_window_sec"])) >= m
                        for v, s, e, _ in r["pred_pairs"][:k]) for r in records]
            out[f"R@{k},IoU={m}"] = float(100.0 * np.mean(hits))
    return {**out, "n": len(records)}
