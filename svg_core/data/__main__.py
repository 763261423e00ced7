"""Command line for the data layer.

    python -m svg_core.data inspect PATH [--skip-bad]   statistics of an annotation file
    python -m svg_core.data cache DIR [--out FILE]       build the speech cache of a dataset folder
    python -m svg_core.data frontend-cache DIR --draws 4 --noise normal [--pool 2]
    python -m svg_core.data frontend-cache data/xe_piper --from data/synth_v4/frontend_cache_whisper_base_pool2_normal.h5
                                                         cache frozen Whisper encoder features for training
                                                         (~450 MB per 1000 training queries at 4 draws, pool 2;
                                                         see svg_core/data/frontend_cache.py)
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


def _frontend_cache(args: argparse.Namespace) -> int:
    from svg_core.audio.noise import noise_config_from_args, provenance_line
    from svg_core.audio.whisper_encoder import SpeechFeatures
    from svg_core.data.dataset import DatasetLayout
    from svg_core.data.frontend_cache import build_frontend_cache, default_cache_path

    import torch

    torch.set_num_threads(1)
    if args.draws < 1 or args.pool < 1:
        raise ValueError(f"--draws and --pool must be >= 1, found {args.draws} and {args.pool}")
    layout = DatasetLayout.from_dir(args.dir)
    if layout.audio_dir is None:
        raise ValueError(f"{layout.root}: no audio/ folder to encode")
    out = Path(args.out) if args.out else default_cache_path(layout, "whisper_base", args.pool, args.noise)
    if args.from_cache:  # a subset of a parent build (synth crossengine): copy its entries, no encoder
        from svg_core.data.frontend_cache import FrontendCache, subset_frontend_cache

        parent = FrontendCache(args.from_cache).version
        out = Path(args.out) if args.out else default_cache_path(
            layout, "whisper_base", parent["frontend"]["pool"], parent["noise"]["preset"])
        summary = subset_frontend_cache(args.from_cache, layout, out, progress=not args.no_progress)
        parts = [f"{split} {n} queries" for split, n in summary["queries"].items()]
        print(f"wrote {out} from {args.from_cache}: {', '.join(parts)}; {summary['file_bytes'] / 1e6:.1f} MB on disk")
        return 0
    noise = noise_config_from_args(args.noise, args.esc50)
    features = SpeechFeatures(pool=args.pool, device=args.device, cpu_threads=args.threads)
    print(f"encoder {features.describe()['name']} ({features.encoder.compute_type} on {features.encoder.device}), "
          f"pool {args.pool} ({features.frame_hz:g} Hz), {args.draws} draws per training query; "
          f"{provenance_line(noise, args.seed)}")
    summary = build_frontend_cache(layout, out, features, "whisper_base", noise, args.draws, seed=args.seed,
                                   splits=tuple(args.splits), progress=not args.no_progress)
    parts = [f"{split} {summary['queries'][split]} queries x {summary['draws'][split]} draws"
             for split in summary["queries"]]
    print(f"wrote {out}: {', '.join(parts)}; {summary['file_bytes'] / 1e6:.1f} MB on disk, "
          f"{summary['mb_per_1000_train_queries']:.0f} MB per 1000 training queries at {summary['draws'].get('train', 0)} "
          f"draws; median encode {summary['encode_ms_median']:.0f} ms per query"
          + (f"; {summary['resumed_queries']} queries resumed from an earlier stopped run"
             if summary["resumed_queries"] else ""))
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
    fc = sub.add_parser("frontend-cache", help="cache frozen Whisper base encoder features (K noise draws per "
                                               "training query) for training a speech front-end model; "
                                               "run it again after a stop to resume")
    fc.add_argument("dir", help="dataset folder (ActivityNet Speech layout)")
    fc.add_argument("--draws", type=int, default=4, help="noise draws per training query (K; val gets its one draw)")
    fc.add_argument("--noise", default="normal", choices=["clean", "normal", "large"],
                    help="noise preset, as python -m svg_core.train --noise (default normal)")
    fc.add_argument("--esc50", default=None, help="ESC-50 folder, or \"shared\" (default: the shipped ESC-10 "
                                                  "subset), as python -m svg_core.train --esc50")
    fc.add_argument("--seed", type=int, default=0, help="noise seed, as python -m svg_core.train --seed (default 0)")
    fc.add_argument("--pool", type=int, default=2,
                    help="encoder frames averaged before caching (the model's frontend_pool; 2 halves the disk)")
    fc.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"],
                    help="splits to cache (test is always encoded live)")
    fc.add_argument("--out", default=None, help="cache file (default: DIR/frontend_cache_whisper_base_pool<P>_<noise>.h5)")
    fc.add_argument("--from", dest="from_cache", default=None, metavar="CACHE",
                    help="copy the entries of a parent build's cache (e.g. data/synth_v4/frontend_cache_...h5 for "
                         "a synth crossengine folder made from it) instead of encoding; --draws/--noise/--pool are "
                         "the parent's")
    fc.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where the encoder runs (auto: CUDA when CTranslate2 sees a GPU)")
    fc.add_argument("--threads", type=int, default=1, help="CTranslate2 CPU threads (default 1)")
    fc.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    fc.set_defaults(func=_frontend_cache)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
