"""Learning curve of one model: test figures and within-video discrimination against the number of
training queries (issue 19: is the text model's discrimination limited by the world's size?).

    python notebooks/learning_curve.py 1308=results/v4/learning_curve/text_n1308_s0 \
        2617=results/v4/learning_curve/text_n2617_s0 5233=results/v4/text_s0 \
        10430=results/v4x2/text_s0:results/v4x2/eval/text_s0_v4test_normal.metrics.json

Each argument is ``TRAIN_QUERIES=RUN[:METRICS]`` where RUN is an archived run folder (its
``summary.json``) and METRICS the test metrics JSON of ``svg_core.evaluate --listening
--metrics-out`` (default: ``RUN/../eval/<name>_normal.metrics.json``, the runner's layout).
Compare rows only when their METRICS score the same test queries. Prints one row per run, in
the order given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def metrics_path(run: Path) -> Path:
    """Where the runner keeps a run's test metrics with the listening block."""
    path = run.parent / "eval" / f"{run.name}_normal.metrics.json"
    if not path.exists():
        raise SystemExit(f"error: no test metrics at {path}; evaluate the run with --listening --metrics-out "
                         "or name the file: TRAIN_QUERIES=RUN:METRICS")
    return path


def row(train_queries: str, run: Path, metrics: Path | None = None) -> str:
    """One table row: training queries, best val epoch / epochs run, test R1@0.5, mIoU,
    discrimination (pairs), silent-query drop in mIoU."""
    summary = json.loads((run / "summary.json").read_text())
    m = json.loads((metrics or metrics_path(run)).read_text())
    disc = m["listening"]["discrimination"]
    silent = m["listening"]["controls"]["silent"]
    return (f"| {train_queries} | {run.name} | {summary['best_epoch']} / {summary['epochs_run']} "
            f"| {m['metrics']['R1@0.5']:.2f} | {m['metrics']['mIoU']:.2f} "
            f"| {disc['discrimination_pct']:.2f} ({disc['n_pairs']}) | {silent['drop_mIoU']:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="TRAIN_QUERIES=RUN[:METRICS]")
    args = parser.parse_args(argv)
    print("| training queries | run | best epoch / epochs | test R1@0.5 | test mIoU | discrimination % (pairs) "
          "| silent drop mIoU |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for spec in args.runs:
        if "=" not in spec:
            raise SystemExit(f"error: {spec!r} is not TRAIN_QUERIES=RUN[:METRICS]")
        n, rest = spec.split("=", 1)
        run, _, metrics = rest.partition(":")
        print(row(n, Path(run), Path(metrics) if metrics else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
