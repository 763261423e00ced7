"""Command line: ``python -m svg_core.synth build|refeature|stats|bundle``.

    python -m svg_core.synth build --out data/synth_default --workers 2
    python -m svg_core.synth build --out /tmp/tiny --videos 6 --workers 1 --no-piper --mp4 none
    python -m svg_core.synth refeature data/synth_default --workers 2   # after an extractor change
    python -m svg_core.synth stats data/synth_default
    python -m svg_core.synth bundle --out assets/demo_bundle --videos 16 --overwrite
    python -m svg_core.synth probe --videos 120             # linear probe: are (colour, shape, action) events readable?
    python -m svg_core.synth crossengine data/synth_default --heldout piper --out data/xe_piper  # unseen TTS engine in test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from svg_core.errors import run_cli
from svg_core.synth.worlds import DEFAULT_WORLD, EXTRACTORS, WORLDS


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m svg_core.synth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a synthetic dataset folder")
    b.add_argument("--out", required=True, type=Path, help="output folder (must be empty unless --overwrite)")
    b.add_argument("--videos", type=int, default=2000, help="number of videos (default 2000, ~7,300 queries)")
    b.add_argument("--seed", type=int, default=0, help="master seed; the same seed gives the same files")
    b.add_argument("--workers", type=int, default=2, help="worker processes (1 = in this process)")
    b.add_argument("--mp4", choices=["all", "demo", "none"], default="demo",
                   help="write mp4s for all videos, the first 16 test videos (default), or none")
    b.add_argument("--fps", type=float, default=8.0, help="frames per second (>= 4; features: one row per 8 frames)")
    b.add_argument("--frame-size", type=int, default=128, help="frame height = width in pixels (multiple of 32)")
    b.add_argument("--no-piper", action="store_true", help="leave out the piper voice (faster; espeak/flite only)")
    b.add_argument("--overwrite", action="store_true", help="delete a non-empty --out folder first")
    b.add_argument("--world", type=int, default=DEFAULT_WORLD, choices=sorted(WORLDS),
                   help=f"world version: scene generator + feature extractor (default {DEFAULT_WORLD}; see worlds.py)")

    r = sub.add_parser("refeature", help="recompute the features of a built folder with the current extractor")
    r.add_argument("dir", type=Path, help="dataset folder made by build")
    r.add_argument("--workers", type=int, default=2, help="worker processes (1 = in this process)")
    r.add_argument("--extractor", default=None, choices=sorted(EXTRACTORS),
                   help="extractor to use (default: the one of the folder's world)")

    s = sub.add_parser("stats", help="print statistics beside ActivityNet's and the blind-prior baseline")
    s.add_argument("dir", type=Path, help="dataset folder")
    s.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")

    d = sub.add_parser("bundle", help="write the demo bundle (the first test videos of the default build)")
    d.add_argument("--out", type=Path, default=Path("assets/demo_bundle"), help="bundle folder")
    d.add_argument("--videos", type=int, default=16, help="number of test videos (default 16)")
    d.add_argument("--seed", type=int, default=0, help="seed of the default build it mirrors")
    d.add_argument("--workers", type=int, default=2, help="worker processes")
    d.add_argument("--overwrite", action="store_true", help="delete a non-empty --out folder first")
    d.add_argument("--world", type=int, default=DEFAULT_WORLD, choices=sorted(WORLDS),
                   help=f"world version (default {DEFAULT_WORLD})")

    pr = sub.add_parser("probe", help="linear probe: which (colour, shape, action) events the features reveal")
    pr.add_argument("--videos", type=int, default=120, help="probe scenes (70%% fit, 30%% scored; default 120)")
    pr.add_argument("--seed", type=int, default=9091, help="seed of the probe scenes (not the benchmark's)")
    pr.add_argument("--world", type=int, default=DEFAULT_WORLD, choices=sorted(WORLDS),
                    help="scene generator of this world (default %(default)s)")
    pr.add_argument("--max-sec", type=float, default=90.0, help="seconds rendered per scene (default 90)")
    pr.add_argument("--extractors", nargs="+", default=sorted(EXTRACTORS), choices=sorted(EXTRACTORS),
                    help="extractors scored side by side (default: all)")

    x = sub.add_parser("crossengine", help="a folder whose test split is spoken only by a TTS engine never heard "
                                          "in its train/val splits (svg_core/synth/crossengine.py)")
    x.add_argument("dir", type=Path, help="synthetic dataset folder made by build (needs its scenes.json)")
    x.add_argument("--heldout", required=True, choices=["piper", "espeak", "flite"],
                   help="TTS engine left out of train/val and the only one in test")
    x.add_argument("--out", required=True, type=Path, help="output folder (must be empty unless --overwrite)")
    x.add_argument("--no-resynth", action="store_true",
                   help="keep only the test queries the held-out engine already spoke (default: re-voice the rest)")
    x.add_argument("--copy", action="store_true", help="copy wavs and features instead of symlinking them")
    x.add_argument("--seed", type=int, default=0, help="seed of the held-out voice chosen per re-voiced query")
    x.add_argument("--overwrite", action="store_true", help="delete a non-empty --out folder first")

    args = parser.parse_args(argv)
    if args.command == "build":
        from svg_core.synth.build import BuildConfig, build

        cfg = BuildConfig(args.out, n_videos=args.videos, seed=args.seed, workers=args.workers, mp4=args.mp4,
                          fps=args.fps, frame_size=args.frame_size, use_piper=not args.no_piper,
                          overwrite=args.overwrite, world=args.world)
        manifest = build(cfg)
        print(f"wrote {args.out}: " + ", ".join(f"{k} {v['videos']} videos / {v['queries']} queries"
                                             for k, v in manifest["counts"].items()))
        print((args.out / "BUILD_DONE").read_text().strip())
        from svg_core.synth.stats import main_stats

        main_stats(args.out)  # the achieved figures beside ActivityNet's, and the blind prior
    elif args.command == "refeature":
        from svg_core.synth.build import refeature

        manifest = refeature(args.dir, workers=args.workers, extractor_name=args.extractor)
        print(f"rewrote {args.dir}/sub_activitynet_v1-3.c3d.hdf5 with {manifest['extractor']['name']} "
              f"in {manifest['refeatured_wall_sec']:.0f} s")
    elif args.command == "probe":
        from svg_core.synth.probe import format_probe, run_probe

        print(format_probe(run_probe(args.videos, args.seed, args.world, max_sec=args.max_sec,
                                     extractors=tuple(args.extractors))))
    elif args.command == "crossengine":
        from svg_core.synth.crossengine import build_crossengine

        block = build_crossengine(args.dir, args.out, args.heldout, resynth=not args.no_resynth, copy=args.copy,
                                  seed=args.seed, overwrite=args.overwrite)
        c = block["counts"]
        print(f"wrote {args.out}: " + ", ".join(
            f"{split} {c[split]['queries']} queries ({c[split]['dropped']} dropped"
            + (f", {c[split]['resynthesised']} re-voiced" if split == "test" else "") + ")" for split in c))
        engines = ", ".join(block["train_engines"]) or "none (no train/val split)"
        print(f"train/val engines {engines}; test engine {block['heldout_engine']} only, "
              f"voices {', '.join(block['test_voices'])}")
    elif args.command == "stats":
        from svg_core.synth.stats import main_stats

        main_stats(args.dir, args.json)
    else:
        from svg_core.synth.bundle import build_bundle, folder_bytes

        build_bundle(args.out, n_videos=args.videos, seed=args.seed, workers=args.workers, overwrite=args.overwrite,
                     world=args.world)
        print(f"wrote {args.out} ({folder_bytes(args.out) / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
