"""Command line for the data layer.

    python -m svg_core.data inspect PATH [--skip-bad]   statistics of an annotation file
    python -m svg_core.data cache DIR [--out FILE]       build the speech cache of a dataset folder
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from svg_core.errors import run_cli
from svg_core.data.annotations import QueryRecord, load_annotations


def annotation_stats(records: list[QueryRecord]) -> dict:
    """Summary statistics of a list of records (the figures of the ActivityNet README table)."""
    if not records:
        raise ValueError("no records to summarise")
    durations = {}
    for r in records:
        durations[r.video_id] = r.duration_sec
    dur = np.array(list(durations.values()))
    length_frac = np.array([(r.end_sec - r.start_sec) / r.duration_sec for r in records])
    start_frac = np.array([r.start_sec / r.duration_sec for r in records])
    words = [re.findall(r"[a-z']+", r.sentence.lower()) for r in records]
    n_words = np.array([len(w) for w in words])
    quant = (0.10, 0.25, 0.50, 0.75, 0.90)
    return {
        "items": len(records),
        "videos": len(durations),
        "duration_sec": {"mean": dur.mean(), "median": float(np.median(dur)), "min": dur.min(), "max": dur.max()},
        "length_frac": {"mean": length_frac.mean(), **{f"q{int(q*100)}": float(np.quantile(length_frac, q)) for q in quant}},
        "start_frac": {f"q{int(q*100)}": float(np.quantile(start_frac, q)) for q in quant},
        "start_at_zero": float(np.mean([r.start_sec <= 1e-6 for r in records])),
        "end_at_end": float(np.mean([r.duration_sec - r.end_sec <= 1e-6 for r in records])),
        "words_mean": n_words.mean(),
        "words_median": float(np.median(n_words)),
        "vocabulary": len({w for ws in words for w in ws}),
        "queries_per_video": len(records) / len(durations),
        "with_wav": sum(r.wav_name is not None for r in records),
    }


def format_stats(stats: dict) -> str:
    """Human-readable lines for :func:`annotation_stats`."""
    d, lf, sf = stats["duration_sec"], stats["length_frac"], stats["start_frac"]
    lines = [
        f"items              {stats['items']:,}",
        f"videos             {stats['videos']:,}",
        f"queries per video  {stats['queries_per_video']:.2f}",
        f"video duration s   mean {d['mean']:.1f}  median {d['median']:.1f}  min {d['min']:.1f}  max {d['max']:.1f}",
        "moment length/dur  mean {:.2f}  q10 {:.2f}  q25 {:.2f}  q50 {:.2f}  q75 {:.2f}  q90 {:.2f}".format(
            lf["mean"], lf["q10"], lf["q25"], lf["q50"], lf["q75"], lf["q90"]),
        "moment start/dur   q10 {:.2f}  q25 {:.2f}  q50 {:.2f}  q75 {:.2f}  q90 {:.2f}".format(
            sf["q10"], sf["q25"], sf["q50"], sf["q75"], sf["q90"]),
        f"start at 0 / end at end  {stats['start_at_zero']:.0%} / {stats['end_at_end']:.0%}",
        f"words per sentence mean {stats['words_mean']:.1f}  median {stats['words_median']:.0f}  vocabulary {stats['vocabulary']:,}",
        f"items with a wav   {stats['with_wav']:,}",
    ]
    return "\n".join(lines)


def _inspect(args: argparse.Namespace) -> int:
    records, report = load_annotations(args.path, on_error="skip" if args.skip_bad else "raise")
    print(f"file               {report.path}")
    print(format_stats(annotation_stats(records)))
    print(f"repairs            {report.n_end_clipped} end clipped to the duration")
    print(f"skipped            {len(report.skipped)} invalid items")
    for index, reason in report.skipped[:10]:
        print(f"  item {index}: {reason}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from svg_core.data.dataset import DatasetLayout, build_speech_cache

    import torch

    torch.set_num_threads(1)  # many tiny STFTs: more threads only contend (20x slower on 2 busy cores)
    layout = DatasetLayout.from_dir(args.dir)
    out = Path(args.out) if args.out else layout.root / "speech_cache.h5"
    print(f"wrote {build_speech_cache(layout, out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line; bad input prints one ``error: ...`` line and exits 2."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m svg_core.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="print the statistics of an annotation file")
    inspect.add_argument("path", help="ActivityNet Speech annotation JSON (4- or 5-field items)")
    inspect.add_argument("--skip-bad", action="store_true", help="skip and list invalid items instead of failing")
    inspect.set_defaults(func=_inspect)
    cache = sub.add_parser("cache", help="decode all spoken queries of a dataset folder into an HDF5 cache")
    cache.add_argument("dir", help="dataset folder (ActivityNet Speech layout)")
    cache.add_argument("--out", default=None, help="cache file (default: DIR/speech_cache.h5)")
    cache.set_defaults(func=_cache)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
