"""Evaluation: run a checkpoint over a split and score it with the one evaluator.

Usage:
    python -m svg_core.evaluate --pred preds.jsonl
    python -m svg_core.evaluate --checkpoint DIR --data DIR [--split test] [--noise normal] [--out preds.jsonl]

The metric code itself is ``svg_core.engine.metrics`` (torch-free); this module adds the
checkpoint path (heavy imports happen only when ``--checkpoint`` is given).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from svg_core.errors import run_cli
from svg_core.engine.metrics import compute_metrics, format_metrics, read_predictions, write_predictions


def evaluate_checkpoint(args) -> tuple[list[dict], str]:
    """What ``python -m svg_core.evaluate --checkpoint DIR --data DIR`` runs.

    Args:
        args: the evaluate CLI namespace: ``checkpoint``, ``data``, ``split``, ``noise``,
            ``esc50``, ``seed``, ``batch_size``, ``device`` (auto = CUDA when available), ``threads``.

    Returns:
        the prediction records and a title line naming the checkpoint, split and noise.
    """
    from svg_core.engine.checkpoint import load_checkpoint
    from svg_core.data.dataset import DatasetLayout, GroundingDataset, SpeechCache
    from svg_core.models import BaseConfig, FSANConfig, SILConfig, TextConfig
    from svg_core.audio.noise import noise_config_from_args, provenance_line

    import torch

    from svg_core.engine.inference import predict_split

    requested = getattr(args, "device", "auto")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    model, cfg, meta = load_checkpoint(args.checkpoint, device=device)
    layout = DatasetLayout.from_dir(args.data)
    noise = noise_config_from_args(args.noise, args.esc50)
    cache_path = layout.root / "speech_cache.h5"  # from `python -m svg_core.data cache DIR`, if built
    frontend = None  # a speech front-end model: the frozen encoder runs live on each noisy query (never a cache)
    if isinstance(cfg, (BaseConfig, FSANConfig, SILConfig)) and cfg.audio_frontend != "logmel":
        from svg_core.audio.whisper_encoder import SpeechFeatures

        frontend = SpeechFeatures(pool=cfg.frontend_pool, device=device, cpu_threads=max(1, getattr(args, "threads", 0)))
    dataset = GroundingDataset(layout, args.split, n_video_frames=cfg.n_video_frames, noise=noise,
                               seed=args.seed, with_audio=not (isinstance(cfg, TextConfig) or (isinstance(cfg, FSANConfig) and cfg.query == "text")),
                               speech_cache=SpeechCache(cache_path) if cache_path.exists() else None,
                               frontend=frontend)
    records = predict_split(model, dataset, batch_size=args.batch_size)
    if getattr(args, "listening", False):  # discrimination + silent / other-video / shuffled-word controls
        from svg_core.engine.listening import listening_report

        args.listening_report = listening_report(model, dataset, records, seed=args.seed, batch_size=args.batch_size)
    tags = ["SYNTHETIC data" if layout.synthetic else "", f"noise={args.noise}"]
    title = (f"checkpoint {args.checkpoint} on {args.data} [{args.split}, {len(records)} queries,"
             f" {', '.join(t for t in tags if t)}, device={device}]")
    return records, f"{title}\n{provenance_line(noise, args.seed)}"


def main(argv: list[str] | None = None) -> int:
    """The command line; bad input prints one ``error: ...`` line and exits 2."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m svg_core.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", help="predictions jsonl to score")
    parser.add_argument("--checkpoint", help="checkpoint folder to run (instead of --pred)")
    parser.add_argument("--data", help="dataset folder (ActivityNet Speech layout), with --checkpoint")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument("--noise", default="normal", choices=["clean", "normal", "large"],
                        help="noise preset mixed into the spoken queries (default normal)")
    parser.add_argument("--esc50", default=None, help="ESC-50 folder for the noise, or \"shared\" for ../shared/data/esc50 (default: the shipped ESC-10 subset assets/noise/esc10)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=32, help="evaluation batch size")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to run the checkpoint (auto = CUDA when available)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU intra-op threads (0 = torch default; 1 is fastest on a busy 2-core box)")
    parser.add_argument("--out", help="write the predictions jsonl here")
    parser.add_argument("--listening", action="store_true",
                        help="also print the listening diagnostics: within-video discrimination and the"
                             " silent / other-video (audio) or shuffled-words (text) controls, with --checkpoint")
    parser.add_argument("--metrics-out", help="write the metrics (and the listening diagnostics) here as JSON")
    args = parser.parse_args(argv)
    if args.pred:
        records = read_predictions(args.pred)
        title = f"predictions {args.pred}"
    elif args.checkpoint and args.data:
        records, title = evaluate_checkpoint(args)  # bad input raises; run_cli prints its one line
    else:
        parser.error("give --pred FILE, or --checkpoint DIR with --data DIR")
    if args.out:
        write_predictions(records, args.out)
    metrics = compute_metrics(records)
    print(format_metrics(metrics, title))
    report = getattr(args, "listening_report", None)
    if report is not None:
        from svg_core.engine.listening import format_listening

        print(format_listening(report))
    if args.metrics_out:
        import json

        Path(args.metrics_out).write_text(json.dumps({"metrics": metrics, "listening": report}, indent=2) + "\n",
                                          encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
