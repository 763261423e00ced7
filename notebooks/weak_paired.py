"""Paired differences of weakly supervised runs against the blind prior and against each other.

Writes the blind prior's test predictions next to the runs' (``--prior-out``), then prints, for
each ``A:B`` pair, the mean difference A - B on the same test queries with a 95 % bootstrap
interval clustered by video (``svg_core.reporting.paired``). Used for docs/RESULTS.md "Weak
supervision" (issues 21, 23)::

    python notebooks/weak_paired.py --data data/synth_v4 --prior-out runs/w4/eval/prior_test.jsonl \\
        runs/w4/eval/fsan_text_omeanrecon_p8_s0_normal.jsonl:prior \\
        runs/w4/eval/fsan_whisper_omeanrecon_s0_normal.jsonl:prior \\
        runs/w4/eval/fsan_whisper_omeanrecon_s0_normal.jsonl:runs/w4/eval/sil_whisper_gate_hadamard_s0_normal.jsonl

``prior`` on either side of a pair stands for the prior's prediction file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, as the other notebooks

from svg_core.engine.metrics import write_predictions  # noqa: E402
from svg_core.reporting.paired import paired_difference  # noqa: E402
from svg_core.synth.stats import prior_predictions  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset folder (e.g. data/synth_v4)")
    p.add_argument("--prior-out", required=True, type=Path, help="where to write the prior's test predictions")
    p.add_argument("pairs", nargs="+", help="A:B prediction files (jsonl), 'prior' for the blind prior")
    args = p.parse_args()
    preds, a, b = prior_predictions(args.data, "test")
    write_predictions(preds, args.prior_out)
    print(f"blind prior: [{a:.2f}, {b:.2f}] x duration, {len(preds)} test queries -> {args.prior_out}")
    for pair in args.pairs:
        left, right = (args.prior_out if x == "prior" else Path(x) for x in pair.split(":"))
        for metric in ("R1@0.5", "mIoU"):
            r = paired_difference({0: left}, {0: right}, metric)
            print(f"{left.name} - {right.name}  {metric:7s} {r['diff']:+6.2f}  95% [{r['ci_low']:+6.2f}, {r['ci_high']:+6.2f}]"
                  f"  ({r['n_queries']} queries, {r['n_videos']} videos)")


if __name__ == "__main__":
    main()
