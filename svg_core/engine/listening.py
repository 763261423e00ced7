"""Does the model listen? Query-sensitivity diagnostics (docs/seed-systems.md, last section).

- within-video discrimination: over ordered pairs (i, j) of queries on the same video whose
  ground-truth moments overlap with IoU < 0.5, the share where the top-1 prediction for query i
  has a higher IoU with moment i than with moment j. Ties count one half (so a query-blind
  model, same prediction for every query of a video, scores exactly 50 %; an oracle 100 %).
- controls: the same metrics with a silent query, a query of another video, and (text) shuffled
  words; the drop from the real query is what the query contributes.
- one query (the app's "Does it listen?" panel): :func:`silent_query_prediction` and
  :func:`shuffled_words_prediction` run a control on one video, :func:`query_effect` says how far
  the real query moved the prediction away from the control's.

Torch-free at import; :class:`ControlDataset` imports the audio front end lazily.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

CONTROLS_AUDIO = ("silent", "other_video")
CONTROLS_TEXT = ("silent", "other_video", "shuffled_words")
# One query against its control: IoU of the two predictions below LISTENS_BELOW_IOU "listens",
# from IGNORES_FROM_IOU "does not listen" (the control gives about the same moment), "barely" between.
LISTENS_BELOW_IOU = 0.5
IGNORES_FROM_IOU = 0.9


def _iou(a, b) -> float:
    """Temporal IoU of two [start_sec, end_sec] windows."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def discrimination_pairs(records: list[dict], max_gt_iou: float = 0.5):
    """The ordered same-video pairs of :func:`within_video_discrimination` and each one's score.

    Yields:
        (record i, record j, score): 1 when the prediction for i overlaps moment i more than moment
        j, 0.5 for a tie, 0 otherwise; None when i has no prediction (counted, scored 0).
    """
    by_video = defaultdict(list)
    for rec in records:
        by_video[rec["video_id"]].append(rec)
    for recs in by_video.values():
        for i, ri in enumerate(recs):
            pred = ri["pred_windows_sec"][0][:2] if ri["pred_windows_sec"] else None
            for j, rj in enumerate(recs):
                if i == j or _iou(ri["gt_window_sec"], rj["gt_window_sec"]) >= max_gt_iou:
                    continue
                if pred is None:
                    yield ri, rj, None
                    continue
                own, other = _iou(pred, ri["gt_window_sec"]), _iou(pred, rj["gt_window_sec"])
                yield ri, rj, 1.0 if own > other else 0.5 if own == other else 0.0


def within_video_discrimination(records: list[dict], max_gt_iou: float = 0.5) -> dict:
    """Share of ordered same-video pairs whose prediction sits closer (IoU) to its own moment.

    Args:
        records: prediction records (``video_id``, ``gt_window_sec``, ``pred_windows_sec``).
        max_gt_iou: pairs whose moments overlap with IoU >= this are skipped.

    Returns:
        {"discrimination_pct": percent (nan without pairs), "n_pairs": ordered pairs,
         "n_ties": pairs scored one half}.
    """
    score, n_pairs, n_ties = 0.0, 0, 0
    for _, _, s in discrimination_pairs(records, max_gt_iou):
        n_pairs += 1
        score += s or 0.0
        n_ties += s == 0.5
    pct = score / n_pairs * 100.0 if n_pairs else float("nan")
    return {"discrimination_pct": pct, "n_pairs": n_pairs, "n_ties": n_ties}


def discrimination_by(records: list[dict], groups_of, max_gt_iou: float = 0.5) -> dict[str, dict]:
    """Within-video discrimination split into groups of pairs.

    Args:
        records: as for :func:`within_video_discrimination`.
        groups_of: (record i, record j) -> the names of the groups the pair counts in.

    Returns:
        {group: {"discrimination_pct", "n_pairs"}}, groups sorted by name.
    """
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for ri, rj, s in discrimination_pairs(records, max_gt_iou):
        for g in groups_of(ri, rj):
            sums[g][0] += s or 0.0
            sums[g][1] += 1
    return {g: {"discrimination_pct": 100.0 * v / n, "n_pairs": n} for g, (v, n) in sorted(sums.items())}


def control_drop(real_metrics: dict, control_metrics: dict[str, dict]) -> dict:
    """mIoU and R1@0.5 under each control and the drop from the real query (points)."""
    out = {"real": {"mIoU": real_metrics["mIoU"], "R1@0.5": real_metrics["R1@0.5"],
                    "drop_mIoU": 0.0, "drop_R1@0.5": 0.0}}
    for name, m in control_metrics.items():
        out[name] = {"mIoU": m["mIoU"], "R1@0.5": m["R1@0.5"],
                     "drop_mIoU": real_metrics["mIoU"] - m["mIoU"],
                     "drop_R1@0.5": real_metrics["R1@0.5"] - m["R1@0.5"]}
    return out


def other_video_donors(video_ids: list[str], seed: int) -> list[int]:
    """A seeded derangement: donor index for every item, always from a different video.

    Groups are laid out contiguously (seeded group and within-group order) and shifted by the
    largest group size, which moves every item out of its group when no video holds more than
    half the items.
    """
    n = len(video_ids)
    groups = defaultdict(list)
    for idx, vid in enumerate(video_ids):
        groups[vid].append(idx)
    largest = max((len(g) for g in groups.values()), default=0)
    if n == 0 or 2 * largest > n:
        raise ValueError(f"cannot give every query another video's query: {largest} of {n} items share a video")
    rng = np.random.default_rng(seed)
    keys = list(groups)
    order = [int(k) for k in rng.permutation(len(keys))]
    flat = []
    for k in order:
        members = groups[keys[k]]
        flat += [members[int(p)] for p in rng.permutation(len(members))]
    donors = [0] * n
    for pos, idx in enumerate(flat):
        donors[idx] = flat[(pos + largest) % n]
    return donors


def shuffle_words(sentence: str, rng: np.random.Generator) -> str:
    """The sentence's whitespace words in a seeded new order (differs when it can)."""
    words = sentence.split()
    perm = [words[int(p)] for p in rng.permutation(len(words))]
    if perm == words and len(set(words)) > 1:
        perm = words[1:] + words[:1]
    return " ".join(perm)


class ControlDataset:
    """A GroundingDataset with its queries replaced by a control; video and labels unchanged.

    Args:
        base: a ``GroundingDataset``.
        control: "silent" (zero waveform of the same length / empty sentence), "other_video"
            (the query of a seeded derangement donor from another video) or "shuffled_words".
        seed: seed of the derangement and of the word shuffles.
    """

    def __init__(self, base, control: str, seed: int = 0):
        if control not in CONTROLS_TEXT:
            raise ValueError(f"unknown control {control!r}; choose from {CONTROLS_TEXT}")
        self.base, self.control, self.seed = base, control, seed
        self.donors = (other_video_donors([r.video_id for r in base.records], seed)
                       if control == "other_video" else None)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.base[index])
        record = item["record"]
        if self.control == "silent":
            item["record"] = dataclasses.replace(record, sentence="")
            if "audio" in item:
                from svg_core.audio.frontend import log_mel
                n = len(self.base.clean_wave(record))
                encode = getattr(self.base, "frontend", None) or log_mel  # a speech front-end's encoder, else log-Mel
                item["audio"] = encode(np.zeros(n, np.float32))
        elif self.control == "other_video":
            donor = self.base[self.donors[index]]
            item["record"] = dataclasses.replace(record, sentence=donor["record"].sentence)
            if "audio" in item:
                item["audio"] = donor["audio"]
        else:
            rng = np.random.default_rng([self.seed, index])
            item["record"] = dataclasses.replace(record, sentence=shuffle_words(record.sentence, rng))
        return item


def listening_report(model, dataset, records: list[dict], seed: int = 0, batch_size: int = 32) -> dict:
    """Discrimination on ``records`` plus each control run through ``predict_split``."""
    from svg_core.engine.inference import predict_split
    from svg_core.engine.metrics import compute_metrics
    controls = CONTROLS_TEXT if not dataset.with_audio else CONTROLS_AUDIO
    control_metrics = {c: compute_metrics(predict_split(model, ControlDataset(dataset, c, seed),
                                                        batch_size=batch_size, progress=False))
                       for c in controls}
    return {"discrimination": within_video_discrimination(records),
            "controls": control_drop(compute_metrics(records), control_metrics)}


def silent_query_prediction(grounder, video_features: np.ndarray, duration_sec: float, n_samples: int) -> dict:
    """The grounder's prediction for a silent query of ``n_samples`` (the real query's length).

    Args:
        grounder: a :class:`svg_core.engine.predictor.Grounder` for spoken queries (or any
            object with its ``localize``).
        video_features: float32 [T, 500] of the video.
        duration_sec: the video's duration in seconds.
        n_samples: length of the silent query at 16 kHz (> 0), e.g. ``len(real_wave)``.

    Returns:
        ``grounder.localize(video_features, duration_sec, audio=zeros(n_samples))``.
    """
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive whole number of samples, found {n_samples!r}")
    return grounder.localize(video_features, duration_sec, audio=np.zeros(int(n_samples), np.float32))


def shuffled_words_prediction(grounder, video_features: np.ndarray, duration_sec: float, sentence: str,
                              seed: int = 0) -> tuple[str, dict] | None:
    """A text grounder's prediction for ``sentence`` with its words in a seeded new order.

    Returns:
        (the shuffled sentence, ``grounder.localize(..., text=shuffled)``), or None when the
        words cannot be reordered (fewer than two different words).
    """
    if len(set(sentence.split())) < 2:
        return None
    shuffled = shuffle_words(sentence, np.random.default_rng(seed))
    return shuffled, grounder.localize(video_features, duration_sec, text=shuffled)


def query_effect(prediction: dict, control: dict) -> dict:
    """How far the real query moved the prediction from a control query's.

    Args:
        prediction, control: ``localize`` results (``start_sec``, ``end_sec``).

    Returns:
        {"iou": IoU of the two top-1 windows, "shift_sec": mean of |start shift| and |end shift|
        in seconds, "verdict": "listens" / "barely listens" / "does not listen"
        (:data:`LISTENS_BELOW_IOU`, :data:`IGNORES_FROM_IOU`)}.
    """
    a = (float(prediction["start_sec"]), float(prediction["end_sec"]))
    b = (float(control["start_sec"]), float(control["end_sec"]))
    iou = _iou(a, b) if a != b else 1.0
    shift = 0.5 * (abs(a[0] - b[0]) + abs(a[1] - b[1]))
    verdict = ("listens" if iou < LISTENS_BELOW_IOU else
               "barely listens" if iou < IGNORES_FROM_IOU else "does not listen")
    return {"iou": iou, "shift_sec": shift, "verdict": verdict}


def format_listening(report: dict) -> str:
    """The "Does it listen?" block."""
    d = report["discrimination"]
    lines = ["Does it listen?",
             f"  within-video discrimination {d['discrimination_pct']:.2f} % over {d['n_pairs']} pairs"
             f" (chance 50, oracle 100; {d['n_ties']} ties)",
             f"  {'query':<16}{'mIoU':>8}{'R1@0.5':>8}{'drop mIoU':>11}{'drop R1':>9}"]
    for name, row in report["controls"].items():
        lines.append(f"  {name:<16}{row['mIoU']:8.2f}{row['R1@0.5']:8.2f}{row['drop_mIoU']:11.2f}{row['drop_R1@0.5']:9.2f}")
    return "\n".join(lines)
