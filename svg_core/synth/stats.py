"""Statistics of a dataset folder next to ActivityNet Speech's, and the blind-prior baseline.

The blind prior predicts, for every test query, the same normalised moment: the (start, end)
fractions that maximise the mean IoU over the training queries (grid step 0.01). It uses
neither the query nor the video, so every model result should be read against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from svg_core.data.dataset import DatasetLayout
from svg_core.engine.metrics import compute_metrics

# ActivityNet Speech test split (shared/data/activitynet_speech/README.md)
ANET = {
    "video duration mean / median (s)": "122 / 122",
    "video duration min / max (s)": "2.3 / 745",
    "moment length / duration, mean": "0.35",
    "moment length / duration, q10 q25 q50 q75 q90": "0.06 0.14 0.29 0.47 0.81",
    "moment start / duration, q10 q25 q50 q75 q90": "0.00 0.00 0.19 0.57 0.76",
    "moments starting at 0 / ending at the end": "28% / 26%",
    "words per sentence, mean / median": "12.0 / 11",
    "vocabulary (words)": "7,571",
    "queries per video": "3.5",
    "spoken query length, mean (s)": "5.7-6.4",
    "speakers": "58",
}
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def _words(sentence: str) -> list[str]:
    return [w.strip(".,!?;:\"'").lower() for w in sentence.split() if w.strip(".,!?;:\"'")]


def dataset_stats(root: str | Path, speech: bool = True) -> dict:
    """Figures of the ActivityNet table, computed over every split of ``root``.

    Args:
        root: dataset folder.
        speech: also read the wav headers for the spoken-query lengths.

    Returns:
        {figure: formatted value} in the order of ``ANET``, plus "_counts".
    """
    layout = DatasetLayout.from_dir(root)
    records = []
    counts = {}
    for split in layout.annotations:
        recs, _ = layout.records(split)
        records += recs
        counts[split] = {"videos": len({r.video_id for r in recs}), "queries": len(recs)}
    if not records:
        raise ValueError(f"{root}: no annotation records")
    durations = np.array(list({r.video_id: r.duration_sec for r in records}.values()))
    dur = np.array([r.duration_sec for r in records])
    start = np.array([r.start_sec for r in records]) / dur
    end = np.array([r.end_sec for r in records]) / dur
    length = end - start
    words = [_words(r.sentence) for r in records]
    n_words = np.array([len(w) for w in words])
    vocab = {w for ws in words for w in ws}
    q = lambda x: " ".join(f"{v:.2f}" for v in np.quantile(x, QUANTILES))  # noqa: E731
    out = {
        "video duration mean / median (s)": f"{durations.mean():.0f} / {np.median(durations):.0f}",
        "video duration min / max (s)": f"{durations.min():.1f} / {durations.max():.0f}",
        "moment length / duration, mean": f"{length.mean():.2f}",
        "moment length / duration, q10 q25 q50 q75 q90": q(length),
        "moment start / duration, q10 q25 q50 q75 q90": q(start),
        "moments starting at 0 / ending at the end": f"{np.mean(start <= 1e-6):.0%} / {np.mean(end >= 1 - 1e-4):.0%}",
        "words per sentence, mean / median": f"{n_words.mean():.1f} / {np.median(n_words):.0f}",
        "vocabulary (words)": f"{len(vocab):,}",
        "queries per video": f"{len(records) / len(durations):.2f}",
    }
    if speech and layout.audio_dir is not None:
        secs = [sf.info(str(layout.audio_dir / r.wav_name)).duration for r in records if r.wav_name]
        out["spoken query length, mean (s)"] = f"{np.mean(secs):.2f}" if secs else "n/a"
    voices = layout.manifest.get("voices_used")
    if voices:
        out["speakers"] = " / ".join(f"{s} {len(v)}" for s, v in voices.items()) + " voices (disjoint)"
    out["_counts"] = counts
    return out


def best_prior(train_fracs: np.ndarray, step: float = 0.01) -> tuple[float, float]:
    """The (start, end) fractions maximising the mean IoU with the given training moments.

    Args:
        train_fracs: float [n, 2] normalised (start, end) of training moments.
        step: grid step.

    Returns:
        (start_frac, end_frac).
    """
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    keep = b > a
    cand = np.stack([a[keep], b[keep]], axis=1)  # [m, 2]
    s, e = train_fracs[:, 0][None, :], train_fracs[:, 1][None, :]
    best, best_iou = (0.0, 1.0), -1.0
    for i in range(0, len(cand), 256):  # chunks bound the [m, n] matrices
        cs, ce = cand[i : i + 256, 0:1], cand[i : i + 256, 1:2]
        inter = np.clip(np.minimum(ce, e) - np.maximum(cs, s), 0, None)
        union = np.maximum(ce, e) - np.minimum(cs, s)
        miou = (inter / np.maximum(union, 1e-9)).mean(axis=1)
        j = int(np.argmax(miou))
        if miou[j] > best_iou:
            best_iou, best = float(miou[j]), (float(cs[j, 0]), float(ce[j, 0]))
    return best


def prior_predictions(root: str | Path, eval_split: str = "test") -> tuple[list[dict], float, float]:
    """The blind prior's prediction records on ``eval_split`` (prior fitted on train), in the
    evaluator's record format, and the (start, end) fractions it predicts for every query."""
    layout = DatasetLayout.from_dir(root)
    train, _ = layout.records("train")
    fracs = np.array([[r.start_sec / r.duration_sec, r.end_sec / r.duration_sec] for r in train])
    a, b = best_prior(fracs)
    test, _ = layout.records(eval_split)
    preds = [
        {
            "query_id": r.query_id,
            "video_id": r.video_id,
            "duration_sec": r.duration_sec,
            "gt_window_sec": [r.start_sec, r.end_sec],
            "pred_windows_sec": [[a * r.duration_sec, b * r.duration_sec, 1.0]],
        }
        for r in test
    ]
    return preds, a, b


def blind_prior(root: str | Path, eval_split: str = "test") -> dict:
    """Blind-prior metrics on ``eval_split`` (prior fitted on train; see module docstring)."""
    preds, a, b = prior_predictions(root, eval_split)
    metrics = compute_metrics(preds)
    return {"prior_start_frac": a, "prior_end_frac": b, "split": eval_split, **metrics}


def action_counts(root: str | Path) -> dict[str, dict[str, int]] | None:
    """Queries per action of their event, per split, from a synthetic build's ``scenes.json``
    (None for a folder without one, e.g. real ActivityNet data). Rare actions are the ones a
    model sees least in training (docs/RESULTS.md, "World 4 at twice the size")."""
    path = Path(root) / "scenes.json"
    if not path.is_file():
        return None
    counts: dict[str, dict[str, int]] = {}
    for scene in json.loads(path.read_text()):
        split = counts.setdefault(scene["split"], {})
        for q in scene.get("queries", []):
            action = scene["events"][q["event"]]["action"]
            split[action] = split.get(action, 0) + 1
    return {split: dict(sorted(c.items(), key=lambda kv: (kv[1], kv[0]))) for split, c in counts.items()}


def format_report(stats: dict, prior: dict | None, actions: dict | None = None) -> str:
    """The two tables as text."""
    lines = [f"{'figure':48s} {'ActivityNet Speech':>26s}   {'this dataset':>26s}"]
    for key, ref in ANET.items():
        lines.append(f"{key:48s} {ref:>26s}   {stats.get(key, 'n/a'):>26s}")
    lines.append("counts: " + ", ".join(f"{s} {c['videos']} videos / {c['queries']} queries" for s, c in stats["_counts"].items()))
    if actions and "train" in actions:
        lines.append("train queries per action (rarest first): "
                     + " ".join(f"{a} {n}" for a, n in actions["train"].items()))
    if prior is not None:
        lines.append("")
        lines.append(
            f"blind prior on {prior['split']} ({prior['n_queries']} queries): predict "
            f"[{prior['prior_start_frac']:.2f}, {prior['prior_end_frac']:.2f}] x duration for every query"
        )
        lines.append(f"{'R@1 IoU=0.3':>12s} {'R@1 IoU=0.5':>12s} {'R@1 IoU=0.7':>12s} {'mIoU':>8s}")
        lines.append(f"{prior['R1@0.3']:12.2f} {prior['R1@0.5']:12.2f} {prior['R1@0.7']:12.2f} {prior['mIoU']:8.2f}")
    return "\n".join(lines)


def main_stats(root: str | Path, json_out: str | Path | None = None) -> str:
    """Compute, print and optionally save both tables; returns the text."""
    stats = dataset_stats(root)
    layout = DatasetLayout.from_dir(root)
    prior = blind_prior(root) if {"train", "test"} <= set(layout.annotations) else None
    actions = action_counts(root)
    text = format_report(stats, prior, actions)
    print(text)
    if json_out is not None:
        Path(json_out).write_text(json.dumps({"stats": stats, "blind_prior": prior, "actions": actions}, indent=1))
    return text
