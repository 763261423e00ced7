"""Where within-video discrimination fails: pairs split by what the query's event is and what its caption must name.

    python -m svg_core.reporting.discrimination results/v3/eval/text_s0_normal.jsonl --scenes data/synth_v3/scenes.json
    python -m svg_core.reporting.discrimination A.jsonl --interval [--against B.jsonl]

Reads a predictions file of ``svg_core.evaluate`` and the ``scenes.json`` of a synthetic build
(each query's event and the caption's ``needs``), and prints the discrimination of the pairs
grouped by the own query's action, by its needs, by whether the two moments belong to one
object, and by the number of events (queries) in the video. Synthetic data only: real
ActivityNet folders have no scenes.json.

``--interval`` prints the overall discrimination with a 95 % bootstrap interval that resamples
whole videos (every pair lies inside one video), and with ``--against B.jsonl`` the paired
difference A - B on the same queries; it works on any predictions file, real or synthetic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from svg_core.engine.listening import discrimination_by
from svg_core.engine.metrics import read_predictions
from svg_core.errors import MissingInputError, UserInputError, run_cli


def query_events(scenes: list[dict]) -> dict[str, dict]:
    """wav name -> {"action", "obj", "needs", "n_events"} of the query's event (from scenes.json
    records; ``n_events``: the events of its video)."""
    out = {}
    for scene in scenes:
        for q in scene.get("queries", []):
            ev = scene["events"][q["event"]]
            out[q["wav_name"]] = {"action": ev["action"], "obj": ev["obj"], "needs": sorted(q.get("needs", [])),
                                  "n_events": len(scene["events"])}
    return out


def groups(events: dict[str, dict]):
    """The grouping function for :func:`discrimination_by` over query ids (wav names)."""
    def groups_of(ri: dict, rj: dict) -> list[str]:
        ei, ej = events.get(ri["query_id"]), events.get(rj["query_id"])
        if ei is None or ej is None:
            return ["unknown query"]
        return ["all", f"action: {ei['action']}", "needs: " + ("+".join(ei["needs"]) or "none"),
                "same object" if ei["obj"] == ej["obj"] else "other object", f"video events: {ei['n_events']}"]
    return groups_of


def format_groups(table: dict[str, dict]) -> str:
    lines = [f"{'pairs (own query)':44s} {'discrimination %':>16s} {'pairs':>7s}"]
    order = sorted(table, key=lambda g: (g != "all", g.split(":")[0], g))
    lines += [f"{g:44s} {table[g]['discrimination_pct']:16.1f} {table[g]['n_pairs']:7d}" for g in order]
    return "\n".join(lines)


def video_scores(records: list[dict]) -> dict[str, tuple[float, int]]:
    """video id -> (sum of its pairs' scores, its number of pairs): :func:`discrimination_by`
    grouped by video (a missing prediction scores 0)."""
    per_video = discrimination_by(records, lambda ri, rj: [str(ri["video_id"])])
    return {v: (g["discrimination_pct"] * g["n_pairs"] / 100.0, g["n_pairs"]) for v, g in per_video.items()}


def discrimination_interval(records: list[dict], against: list[dict] | None = None, n_boot: int = 10000,
                            seed: int = 0) -> dict:
    """Discrimination (or A - B with ``against``) in percent with a 95 % interval clustered by video.

    The pairs of one video share its scene and its predictions, so the bootstrap resamples whole
    videos with replacement (``scipy.stats.bootstrap``, percentile method, seeded) and the statistic
    is the pooled share: sum of the resampled videos' pair scores / their number of pairs.

    Args:
        records: prediction records of A (``video_id``, ``query_id``, ``gt_window_sec``, ``pred_windows_sec``).
        against: B's records on the same queries, or None for A alone.

    Returns:
        {"pct", "ci_low", "ci_high", "n_pairs", "n_videos"} (pct = A's share or A - B in points).

    Raises:
        UserInputError: B does not score the same queries, or the pairs lie in fewer than two videos.
    """
    from scipy.stats import bootstrap  # heavy to import; only this report needs it

    a = video_scores(records)
    if against is not None:
        if {r["query_id"] for r in records} != {r["query_id"] for r in against}:
            raise UserInputError("the two prediction files do not score the same queries: are they from one build and split?")
        b = video_scores(against)
        a = {v: (a[v][0] - b[v][0], a[v][1]) for v in a}  # same ground truth, so the same pairs per video
    videos = sorted(a)
    if len(videos) < 2:
        raise UserInputError(f"the pairs lie in {len(videos)} video(s): a video-clustered interval needs two")
    sums = np.array([a[v][0] for v in videos])  # [V] summed pair scores (A - B with against)
    counts = np.array([a[v][1] for v in videos], dtype=float)  # [V] pairs per video
    pct = 100.0 * sums.sum() / counts.sum()
    if np.ptp(sums / counts) == 0.0:  # every video scores alike: the interval is that point
        low = high = pct
    else:
        res = bootstrap((sums, counts), lambda s, n, axis=-1: 100.0 * s.sum(axis=axis) / n.sum(axis=axis),
                        paired=True, vectorized=True, n_resamples=n_boot, method="percentile",
                        random_state=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return {"pct": float(pct), "ci_low": low, "ci_high": high, "n_pairs": int(counts.sum()), "n_videos": len(videos)}


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m svg_core.reporting.discrimination", description=__doc__.splitlines()[0])
    p.add_argument("predictions", type=Path, help="predictions jsonl written by svg_core.evaluate --out")
    p.add_argument("--scenes", type=Path, help="scenes.json of the synthetic build it was scored on (the split by action)")
    p.add_argument("--interval", action="store_true", help="the overall figure with a 95 %% interval (videos resampled)")
    p.add_argument("--against", type=Path, help="with --interval: a second predictions file B; prints A - B")
    args = p.parse_args(argv)
    if args.scenes is None and not args.interval:
        raise UserInputError("give --scenes (the split by action and needs) and/or --interval")
    if args.against is not None and not args.interval:
        raise UserInputError("--against needs --interval")
    for path in (args.predictions, args.scenes, args.against):
        if path is not None and not path.is_file():
            raise MissingInputError(f"{path} is not a file")
    records = read_predictions(args.predictions)
    if args.interval:
        against = read_predictions(args.against) if args.against is not None else None
        r = discrimination_interval(records, against)
        what, sign = (f"{args.predictions.name} - {args.against.name}", "+") if against is not None \
            else (args.predictions.name, "")
        print(f"discrimination {what}: {r['pct']:{sign}.2f} % 95% [{r['ci_low']:{sign}.2f}, {r['ci_high']:{sign}.2f}] "
              f"({r['n_pairs']} pairs, {r['n_videos']} videos resampled)")
        if args.scenes is None:
            return 0
    try:
        scenes = json.loads(args.scenes.read_text())
    except json.JSONDecodeError as err:
        raise UserInputError(f"{args.scenes} is not JSON ({err}); pass the scenes.json of a synthetic build") from None
    events = query_events(scenes)
    print(format_groups(discrimination_by(records, groups(events))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
