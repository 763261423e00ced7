"""Command line ``python -m svg_core.search``: spoken search across a video collection (AVLnet).

Evaluate on a split (video R@1/5/10, median rank; VCMR against two baselines)::

    python -m svg_core.search evaluate --data DIR --checkpoint runs/avlnet/best --split test --limit 200

Index your own folder (ActivityNet layout), then query it with a recording or typed text::

    python -m svg_core.search index --data DIR --checkpoint runs/avlnet/best --out runs/index
    python -m svg_core.search query --index runs/index --wav my_query.wav
    python -m svg_core.search query --index runs/index --text "a man throws a ball"

Latency at 1k and 100k indexed windows, exact vs IVF, with IVF recall@10::

    python -m svg_core.search bench
"""

from __future__ import annotations

import argparse
import json
import sys

from svg_core.errors import UserInputError, run_cli


def build_parser() -> argparse.ArgumentParser:
    """The command line (plain argparse, a help string on every flag)."""
    p = argparse.ArgumentParser(prog="python -m svg_core.search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="video retrieval and VCMR metrics on a split")
    ev.add_argument("--data", required=True, help="dataset folder (ActivityNet Speech layout)")
    ev.add_argument("--checkpoint", default=None, help="AVLnet checkpoint folder (default: an untrained, seeded model)")
    ev.add_argument("--split", default="test", help="split to search over (default test)")
    ev.add_argument("--grounder", default="checkpoints/base", help="audio grounder for VCMR (default checkpoints/base)")
    ev.add_argument("--no-vcmr", action="store_true", help="video retrieval only (no grounder, no baselines)")
    ev.add_argument("--text-checkpoint", default="checkpoints/text", help="text grounder of the ASR baseline")
    ev.add_argument("--asr-engine", default="whisper", choices=["whisper", "sphinx", "oracle", "none"],
                    help="ASR of the transcript baseline; oracle = the caption; none = skip the baseline")
    ev.add_argument("--transcripts", default="auto",
                    help="JSONL transcript cache (auto = DIR/search_transcripts_SPLIT.jsonl; none = no cache)")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N queries")
    ev.add_argument("--noise", default="clean", choices=["clean", "normal", "large"], help="noise preset of the queries")
    ev.add_argument("--seed", type=int, default=0, help="noise seed (and the untrained model's seed)")
    ev.add_argument("--window-clips", type=int, default=None, help="clips per window (default: the checkpoint's)")
    ev.add_argument("--stride-clips", type=int, default=None, help="window stride in clips (default: the checkpoint's)")
    ev.add_argument("--top-videos", type=int, default=10, help="videos grounded per query in AVLnet+grounder")
    ev.add_argument("--spans-per-video", type=int, default=10, help="grounder spans kept per (query, video)")
    ev.add_argument("--video-temperature", type=float, default=1.0, help="softmax temperature of retrieval scores")
    ev.add_argument("--json", default=None, help="also write the summary to this JSON file")
    ev.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default; 1 on a busy box)")
    ev.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    ix = sub.add_parser("index", help="embed a folder's videos as sliding windows into a faiss index")
    ix.add_argument("--data", required=True, help="folder in the ActivityNet layout (features + annotations)")
    ix.add_argument("--checkpoint", required=True, help="AVLnet checkpoint folder")
    ix.add_argument("--out", required=True, help="index folder to write")
    ix.add_argument("--kind", default="flat", choices=["flat", "ivf"], help="flat = exact inner product; ivf = IndexIVFFlat")
    ix.add_argument("--nlist", type=int, default=100, help="IVF cells")
    ix.add_argument("--nprobe", type=int, default=8, help="IVF cells visited per query")
    ix.add_argument("--window-clips", type=int, default=None, help="clips per window (default: the checkpoint's)")
    ix.add_argument("--stride-clips", type=int, default=None, help="window stride in clips (default: the checkpoint's)")
    ix.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    q = sub.add_parser("query", help="rank the indexed videos for one spoken or typed query")
    q.add_argument("--index", required=True, help="index folder from the index command")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--wav", help="spoken query (any format load_audio reads)")
    src.add_argument("--text", help="typed query, spoken by the TTS voice first")
    q.add_argument("--checkpoint", default=None, help="AVLnet checkpoint (default: the one the index was built with)")
    q.add_argument("--top", type=int, default=10, help="videos shown")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")

    b = sub.add_parser("bench", help="query latency, exact vs IVF, at 1k and 100k windows (synthetic vectors)")
    b.add_argument("--sizes", default="1000,100000", help="indexed windows per row, comma-separated")
    b.add_argument("--dim", type=int, default=256, help="embedding size")
    b.add_argument("--queries", type=int, default=100, help="queries timed per row")
    b.add_argument("--nprobe", dest="nprobes", default="8,64",
                   help="IVF cells visited per query, comma-separated: one row each (default 8,64)")
    b.add_argument("--seed", type=int, default=0, help="seed of the random vectors")
    b.add_argument("--faiss-threads", type=int, default=1,
                   help="faiss OpenMP threads (default 1: single-query latency, no contention on a busy box)")
    return p


def _evaluate(args: argparse.Namespace) -> None:
    from svg_core.search.evaluate import SearchEvalConfig, default_transcripts, evaluate_search, format_summary

    transcripts = {"auto": default_transcripts(args.data, args.split), "none": None}.get(args.transcripts, args.transcripts)
    cfg = SearchEvalConfig(
        data=args.data, split=args.split, checkpoint=args.checkpoint, grounder=None if args.no_vcmr else args.grounder,
        text_checkpoint=args.text_checkpoint, asr_engine=args.asr_engine, transcripts=transcripts, limit=args.limit,
        noise=args.noise, seed=args.seed, window_clips=args.window_clips, stride_clips=args.stride_clips,
        top_videos=args.top_videos, spans_per_video=args.spans_per_video, video_temperature=args.video_temperature,
        progress=not args.no_progress,
    )  # fmt: skip
    summary = evaluate_search(cfg)
    print(format_summary(summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, default=float)


def _index(args: argparse.Namespace) -> None:
    from svg_core.search.encode import Embedder, embed_collection
    from svg_core.search.index import IndexSettings, WindowIndex

    embedder = Embedder.from_checkpoint(args.checkpoint)
    window = args.window_clips or embedder.cfg.window_clips
    stride = args.stride_clips or embedder.cfg.stride_clips
    vectors, windows = embed_collection(embedder, args.data, window, stride, progress=not args.no_progress)
    settings = IndexSettings(args.kind, args.nlist, args.nprobe, window, stride, str(args.checkpoint),
                             notes={"data": str(args.data)})
    index = WindowIndex.build(vectors, windows, settings)
    note = ""
    if args.kind == "ivf":  # how much the IVF cells cost against exact search, on this collection
        from svg_core.search.index import ivf_recall_on_sample

        recall = ivf_recall_on_sample(index, vectors)
        index.settings.notes["ivf_recall@10_vs_exact"] = recall
        note = f"; IVF recall@10 vs exact {recall:.3f} (nprobe {args.nprobe})"
    index.save(args.out)
    print(f"indexed {index.n_videos} videos as {len(windows)} windows ({window} clips, stride {stride}; "
          f"{args.kind}) -> {args.out}{note}")


def _query(args: argparse.Namespace) -> None:
    from svg_core.search.encode import Embedder
    from svg_core.search.index import WindowIndex

    index = WindowIndex.load(args.index)
    checkpoint = args.checkpoint or index.settings.checkpoint
    if not checkpoint:
        raise UserInputError(f"{args.index} does not name its checkpoint: pass --checkpoint")
    embedder = Embedder.from_checkpoint(checkpoint)
    query = embedder.embed_wav_file(args.wav) if args.wav else embedder.embed_text(args.text)
    if query.shape[0] != index.index.d:
        raise UserInputError(f"the checkpoint embeds into {query.shape[0]} dims, the index holds {index.index.d}")
    hits = index.search_videos(query, top_videos=args.top)
    if args.json:
        print(json.dumps(hits, indent=2))
        return
    for rank, h in enumerate(hits, 1):
        print(f"{rank:>3}. {h['video_id']:<24} score {h['score']:9.3f}  best window {h['start_sec']:.1f}-{h['end_sec']:.1f} s")


def _positive_ints(flag: str, text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers, or one ``UserInputError`` naming ``flag``."""
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UserInputError(f"{flag} must be comma-separated integers, found {text!r}") from None
    if not values or min(values) < 1:
        raise UserInputError(f"{flag} must be positive, found {text!r}")
    return values


def _bench(args: argparse.Namespace) -> None:
    from svg_core.search.bench import format_bench, run_bench

    sizes, nprobes = _positive_ints("--sizes", args.sizes), _positive_ints("--nprobe", args.nprobes)
    import faiss

    faiss.omp_set_num_threads(args.faiss_threads)
    rows = run_bench(sizes, dim=args.dim, n_queries=args.queries, nprobes=nprobes, seed=args.seed)
    print(format_bench(rows))


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)
    for name in ("limit", "top_videos", "spans_per_video", "top", "nlist", "nprobe", "queries", "dim"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UserInputError(f"--{name.replace('_', '-')} must be >= 1, found {value}")
    {"evaluate": _evaluate, "index": _index, "query": _query, "bench": _bench}[args.command](args)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
