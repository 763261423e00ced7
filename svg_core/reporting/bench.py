"""Benchmarks (commands, not tests).

    python -m svg_core.bench train [--preset small] [--models base vslnet text vgcl] [--batch-size 16]
    python -m svg_core.bench train --models base --compare-speed --threads 1
    python -m svg_core.bench latency [--data assets/demo_bundle] [--audio-checkpoint DIR] [--frontend-checkpoint DIR]
                                     [--text-checkpoint DIR]
    python -m svg_core.bench asr [--data data/synth_default] [--split val] [--queries 40] [--noise normal]

``train`` measures training throughput (samples per second: forward, loss, backward and one
AdamW step with clipping, as ``svg_core.train`` does them) on random batches shaped like the
real data (N_v = 64 video frames x 500, queries of 3-8 s), on CPU and, when present, on CUDA
in fp32 and with fp16 autocast. Data loading is excluded: it is measured by the training logs
(``train_samples_per_sec`` in log.csv). With ``--compare-speed`` every audio model gets three
rows, timed in alternating steps, and a ratio column: its config with ``audio_subsample=1`` (the
v2 configuration of the shipped checkpoints), with the new-config default (4 log-Mel frames per
step), and on the pre-trained speech front-end's cached encoder features (the encoder's one-off
cost is the cache build, not a training step). ``latency`` times one query at a time (batch size 1): the end-to-end audio grounder
(log-Mel, and the speech front-end model whose frozen Whisper base encoder runs inside each call)
against each ASR cascade (Whisper base / PocketSphinx + the text grounder), median and p90, on CPU
and on CUDA when present. ``asr`` compares Whisper's
decoding modes on the same noisy queries: WER and median seconds of the standard 30 s window
(beam 5 and greedy) and of the app's short window. Each sub-command is one
``add_*`` function that registers its parser and its handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Callable

import torch

from svg_core.models import (
    BaseConfig,
    CPCConfig,
    CPCPretrainModel,
    TextConfig,
    VSLNetConfig,
    build_model,
    build_vocab,
    legacy_defaults,
)
from svg_core.models.speech_frontend import WHISPER_BASE_DIM, input_frames
from svg_core.errors import run_cli

BENCH_MODELS = ("base", "vslnet", "text", "vgcl")
_WORDS = "a man woman dog ball plays runs jumps the in on with water field table kitchen".split()


def synthetic_batch(batch_size: int, n_video_frames: int = 64, min_frames: int = 300, max_frames: int = 800,
                    seed: int = 0, audio_frontend: str = "logmel", frontend_pool: int = 2) -> dict:
    """A batch with the keys and shapes of ``collate_batch`` and random content.

    Args:
        batch_size: B.
        n_video_frames: N_v.
        min_frames, max_frames: range of query lengths in 10 ms log-Mel frames (3-8 s).
        seed: seed of every draw.
        audio_frontend, frontend_pool: what ``batch["audio"]`` holds: log-Mels [B, T_a, 128] at
            100 Hz, or cached Whisper base encoder features [B, T_e, 512] at 50 / pool Hz.

    Returns:
        the batch dict (CPU tensors).
    """
    g = torch.Generator().manual_seed(seed)
    min_frames, max_frames = (input_frames(n, audio_frontend, frontend_pool) for n in (min_frames, max_frames))
    audio_dim = 128 if audio_frontend == "logmel" else WHISPER_BASE_DIM
    lengths = torch.randint(min_frames, max_frames + 1, (batch_size,), generator=g)
    t_a = int(lengths.max())
    mask = torch.arange(t_a)[None, :] < lengths[:, None]
    start = torch.rand(batch_size, generator=g) * n_video_frames * 0.7
    end = torch.minimum(start + 4 + torch.rand(batch_size, generator=g) * n_video_frames * 0.3,
                         torch.tensor(float(n_video_frames)))
    start_label = start.floor().long()
    end_label = torch.maximum(end.ceil().long() - 1, start_label)
    frames = torch.arange(n_video_frames)[None, :]
    words = torch.randint(len(_WORDS), (batch_size, 10), generator=g).tolist()
    return {
        "video": torch.randn(batch_size, n_video_frames, 500, generator=g),
        "video_mask": torch.ones(batch_size, n_video_frames, dtype=torch.bool),
        "audio": torch.randn(batch_size, t_a, audio_dim, generator=g) * mask[..., None],
        "audio_lengths": lengths, "audio_mask": mask,
        "start_idx": start, "end_idx": end, "start_label": start_label, "end_label": end_label,
        "inside": ((frames >= start_label[:, None]) & (frames <= end_label[:, None])).float(),
        "duration_sec": torch.full((batch_size,), 120.0, dtype=torch.float64),
        "start_sec": (start / n_video_frames * 120.0).double(), "end_sec": (end / n_video_frames * 120.0).double(),
        "noise_span_sec": torch.zeros(batch_size, 2), "snr_db": torch.full((batch_size,), float("nan")),
        "video_id": [f"v_{i}" for i in range(batch_size)], "query_id": [f"q_{i}.wav" for i in range(batch_size)],
        "sentence": [" ".join(_WORDS[w] for w in ws) for ws in words],
    }  # fmt: skip


def bench_config(name: str, preset: str):
    """The config benchmarked for a model name (``vgcl`` = VGCL pre-training)."""
    pick = (lambda cls: cls.small) if preset == "small" else (lambda cls: cls.paper)
    if name == "base":
        return pick(BaseConfig)()
    if name == "vslnet":
        return pick(VSLNetConfig)()
    if name == "text":
        return pick(TextConfig)(vocab=build_vocab(_WORDS))
    if name == "vgcl":
        return pick(CPCConfig)(video_guided=True)
    raise ValueError(f"model must be one of {BENCH_MODELS}, found {name!r}")


def speed_variants(name: str, cfg) -> list[tuple[str, object]]:
    """``--compare-speed`` rows of one model: (label, config) with ``audio_subsample`` = its v2
    value (``LEGACY_DEFAULTS``, 1), its new-config default (4), and the pre-trained speech
    front-end on cached encoder features (``audio_frontend="whisper_base"``: the frozen encoder
    ran once, before training, in ``python -m svg_core.data frontend-cache``); one row for models
    without an audio front-end (text)."""
    if not isinstance(cfg, (BaseConfig, CPCConfig)):
        return [(name, cfg)]
    v2 = legacy_defaults(type(cfg))["audio_subsample"]
    new = next(f.default for f in dataclasses.fields(cfg) if f.name == "audio_subsample")
    return [(f"{name} v2 (audio_subsample={v2})", dataclasses.replace(cfg, audio_subsample=v2)),
            (f"{name} new (audio_subsample={new})", dataclasses.replace(cfg, audio_subsample=new)),
            (f"{name} whisper_base, cached features", dataclasses.replace(cfg, audio_frontend="whisper_base"))]


def make_train_step(cfg, device: torch.device, amp: bool, batch_size: int,
                    total_steps: int) -> Callable[[int], float]:
    """A model of ``cfg`` with its AdamW and a fixed synthetic batch; the returned function runs
    training step ``step`` (forward, loss, backward, clipping, AdamW, as ``svg_core.train``) and
    returns its wall seconds."""
    from svg_core.engine.inference import move_batch

    torch.manual_seed(0)
    model = build_model(cfg).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    frontend = getattr(cfg, "audio_frontend", "logmel")
    batch = move_batch(synthetic_batch(batch_size, audio_frontend=frontend, frontend_pool=getattr(cfg, "frontend_pool", 2)),
                       device)

    def run(step: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        if isinstance(model, CPCPretrainModel):
            model.set_progress(step, total_steps)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            loss, _ = model.loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    return run


def train_throughputs(cfgs: list, device: torch.device, amp: bool, batch_size: int, steps: int,
                      warmup: int) -> list[float]:
    """Training samples per second of each config on one device.

    The configs are timed in rounds of one step each (``warmup`` untimed rounds first), so a
    change of load on a shared machine hits every config alike and their ratio stays fair.
    """
    runs = [make_train_step(cfg, device, amp, batch_size, warmup + steps) for cfg in cfgs]
    timed = [0.0] * len(runs)
    for step in range(warmup + steps):
        for i, run in enumerate(runs):
            seconds = run(step)
            if step >= warmup:
                timed[i] += seconds
    return [batch_size * steps / t for t in timed]


def train_throughput(name: str, preset: str, device: torch.device, amp: bool, batch_size: int,
                     steps: int, warmup: int) -> float:
    """Training samples per second of one model on one device (``warmup`` untimed steps first)."""
    return train_throughputs([bench_config(name, preset)], device, amp, batch_size, steps, warmup)[0]


def run_train(args: argparse.Namespace) -> int:
    """``bench train``: a table of samples/second, one row per model, one column per device
    (``--compare-speed``: two rows per audio model and a ratio column per device)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    columns = [("cpu", torch.device("cpu"), False)]
    if torch.cuda.is_available() and not args.cpu_only:
        columns += [("cuda fp32", torch.device("cuda"), False), ("cuda amp", torch.device("cuda"), True)]
    cpu_steps = args.steps if args.cpu_steps is None else args.cpu_steps
    groups = [speed_variants(name, bench_config(name, args.preset)) if args.compare_speed
              else [(name, bench_config(name, args.preset))] for name in args.models]
    width = max(8, *(len(label) + 2 for group in groups for label, _ in group))
    ratio_heads = [f"x v2 {c[0]}" if len(columns) > 1 else "x v2" for c in columns] if args.compare_speed else []
    print(f"training samples/s, preset={args.preset}, batch={args.batch_size}, "
          f"cpu threads={torch.get_num_threads()}" + (f", gpu={torch.cuda.get_device_name()}" if len(columns) > 1 else ""))
    if args.compare_speed:
        print("rows of one model are timed in alternating steps; x v2 = samples/s / the v2 row's samples/s")
    print(f"{'model':<{width}}" + "".join(f"{c[0]:>12}" for c in columns) + "".join(f"{h:>14}" for h in ratio_heads))
    for group in groups:
        table = []  # table[device][row]
        for _, device, amp in columns:
            steps = cpu_steps if device.type == "cpu" else args.steps
            table.append(train_throughputs([cfg for _, cfg in group], device, amp, args.batch_size, steps, args.warmup))
        for row, (label, _) in enumerate(group):
            ratios = "".join(f"{col[row] / col[0]:13.2f}x" for col in table) if len(group) > 1 else ""
            print(f"{label:<{width}}" + "".join(f"{col[row]:12.1f}" for col in table) + ratios, flush=True)
    return 0


def add_train(subparsers) -> None:
    """Register ``bench train``."""
    p = subparsers.add_parser("train", help="training samples/second on CPU (and CUDA when present)",
                              description=run_train.__doc__)
    p.add_argument("--preset", default="small", choices=["small", "paper"], help="model size preset")
    p.add_argument("--models", nargs="+", default=["base", "vgcl"], choices=BENCH_MODELS,
                   help="models to time (vgcl = VGCL pre-training)")
    p.add_argument("--batch-size", type=int, default=16, help="items per step")
    p.add_argument("--steps", type=int, default=10, help="timed steps per model and device")
    p.add_argument("--cpu-steps", type=int, default=None, help="timed steps on CPU (default: --steps)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--cpu-only", action="store_true", help="skip the CUDA columns even when a GPU is present")
    p.add_argument("--compare-speed", action="store_true",
                   help="two rows per audio model, audio_subsample=1 (v2 configuration) and the new default, "
                        "timed in alternating steps, with their ratio")
    p.set_defaults(func=run_train)


SIL_ANCHOR = ("Anchor: SIL (ACL 2023) Table 2, batch size 1 on a GPU: end-to-end SIL 0.044 s vs the ASR "
              "cascades ASR-Base 0.090 s and ASR-RTBPN 0.094 s per query (cascade/E2E 2.0-2.1x; their ASR is "
              "wav2vec 2.0 and pre-processing is excluded). Here both sides include pre-processing: log-Mel "
              "for the end-to-end model, resampling + VAD + decoding for the ASR.")


def _latency_grounder(checkpoint: str | None, kind: str, sentences: list[str], device: torch.device):
    """A Grounder from a checkpoint, or an untrained small-preset one (latency does not depend on weights)."""
    from svg_core.engine.predictor import Grounder

    if checkpoint:
        grounder = Grounder.from_checkpoint(checkpoint, device=device)
        found = "frontend" if grounder.query_kind == "audio" and grounder.audio_frontend != "logmel" else grounder.query_kind
        if found != kind:
            raise ValueError(f"{checkpoint} holds a {found} grounder, expected a {kind} one")
        return grounder
    torch.manual_seed(0)
    if kind == "text":
        cfg = TextConfig.small(vocab=build_vocab(sentences))
    else:  # "audio": log-Mel; "frontend": frozen Whisper base encoder + adapter
        cfg = BaseConfig.small(**({"audio_frontend": "whisper_base"} if kind == "frontend" else {}))
    return Grounder(build_model(cfg), cfg, device=device)


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    import numpy as np

    return float(np.median(seconds)), float(np.percentile(seconds, 90))


def latency_rows(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Per-query wall time (batch 1) of the end-to-end model and of each cascade on one device.

    Every method sees the same queries: the first ``--queries`` items of the split (cycled
    when the split is shorter), with the dataset's own seeded noise (``GroundingDataset.noisy_wave``),
    and the raw video features (each ``localize`` call resamples them, as the app does).
    The first ``--warmup`` queries of each method are run untimed.

    Returns:
        one dict per method: ``method``, ``device``, ``median_s``, ``p90_s``, ``parts`` (median
        ASR and text-grounding seconds for cascades).
    """
    from svg_core.asr.engines import get_engine, whisper_cuda_available
    from svg_core.asr.cascade import Cascade
    from svg_core.data.dataset import DatasetLayout, GroundingDataset
    from svg_core.audio.noise import noise_config_from_args

    layout = DatasetLayout.from_dir(args.data)
    noise = noise_config_from_args(args.noise, getattr(args, "esc50", None))
    dataset = GroundingDataset(layout, args.split, noise=noise, seed=args.seed)
    if len(dataset) == 0:
        raise ValueError(f"{args.data} has no {args.split} queries")
    order = [i % len(dataset) for i in range(args.warmup + args.queries)]
    queries = {i: dataset.noisy_wave(i)[0] for i in sorted(set(order))}
    videos = {r.video_id: dataset.features.get(r.video_id) for r in dataset.records}
    sentences = [r.sentence for r in dataset.records]
    audio_grounder = _latency_grounder(args.audio_checkpoint, "audio", sentences, device)
    frontend_grounder = _latency_grounder(getattr(args, "frontend_checkpoint", None), "frontend", sentences, device)
    text_grounder = _latency_grounder(args.text_checkpoint, "text", sentences, device)

    def timed(run) -> tuple[list[float], list]:
        """Wall seconds of ``run(record, index)`` per query past the warm-up, with its outputs."""
        seconds, outputs = [], []
        for step, index in enumerate(order):
            began = time.perf_counter()
            out = run(dataset.records[index], index)
            if step >= args.warmup:
                seconds.append(time.perf_counter() - began)
                outputs.append(out)
        return seconds, outputs

    rows = []
    times, _ = timed(lambda rec, i: audio_grounder.localize(videos[rec.video_id], rec.duration_sec,
                                                             audio=queries[i]))  # localize syncs CUDA
    rows.append({"method": f"end-to-end audio ({type(audio_grounder.model).__name__})", "device": str(device),
                 "times": times, "parts": ""})
    # The speech front-end model: the frozen Whisper base encoder runs inside localize (never decodes text).
    frontend_grounder.localize(videos[dataset.records[0].video_id], dataset.records[0].duration_sec,
                               audio=queries[order[0]])  # loads the encoder (~2 s) outside the timing
    times, _ = timed(lambda rec, i: frontend_grounder.localize(videos[rec.video_id], rec.duration_sec,
                                                                audio=queries[i]))
    encoder = frontend_grounder.speech_features().encoder
    rows.append({"method": "end-to-end, Whisper base encoder + adapter", "device": str(device), "times": times,
                 "parts": f"encoder {encoder.compute_type} on {encoder.device}"})
    # The cascades' second stage alone: the reference caption, no ASR (a lower bound for any engine).
    times, _ = timed(lambda rec, i: text_grounder.localize(videos[rec.video_id], rec.duration_sec, text=rec.sentence))
    rows.append({"method": "text grounding alone (caption, no ASR)", "device": str(device), "times": times,
                 "parts": ""})
    for engine_name in args.engines:
        # Whisper follows the grounders onto the GPU when CTranslate2 has CUDA; else it stays on the CPU.
        engine = get_engine(engine_name, "cuda" if device.type == "cuda" and whisper_cuda_available() else "cpu")
        cascade = Cascade(engine, text_grounder)
        times, outs = timed(lambda rec, i: cascade.run(videos[rec.video_id], rec.duration_sec, queries[i], 16_000))
        asr_s = [out["latency_sec"]["asr"] for out in outs]
        text_s = [out["latency_sec"]["grounding"] for out in outs]
        rows.append({"method": f"{engine_name} ({engine.device}) + text grounding", "device": str(device),
                     "times": times,
                     "parts": f"asr {_percentiles(asr_s)[0]:.3f} + text {_percentiles(text_s)[0]:.4f}"})
    for row in rows:
        row["median_s"], row["p90_s"] = _percentiles(row.pop("times"))
    return rows


def run_latency(args: argparse.Namespace) -> int:
    """``bench latency``: per-query latency, end-to-end audio model vs ASR cascades, median and p90."""
    if args.queries < 50:
        print(f"note: {args.queries} queries (< 50): medians and p90 are rough", file=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    given = (("audio", args.audio_checkpoint), ("front-end", args.frontend_checkpoint), ("text", args.text_checkpoint))
    weights = ("checkpoints: " + ", ".join(f"{k}={v}" for k, v in given if v)) if any(v for _, v in given) else ""
    untrained = [k for k, v in given if not v]
    print(f"latency per query, batch size 1, {args.queries} timed queries ({args.warmup} warm-up) from "
          f"{args.data} [{args.split}, noise={args.noise}], cpu threads={torch.get_num_threads()}"
          + (f", gpu={torch.cuda.get_device_name()}" if len(devices) > 1 else ""))
    if weights:
        print(weights)
    if untrained:
        print(f"untrained small-preset grounders ({', '.join(untrained)}): latency only, no accuracy")
    print(f"{'device':<6} {'method':<44} {'median s':>9} {'p90 s':>8} {'x E2E':>7}  parts (median s)")
    for device in devices:
        rows = latency_rows(args, device)
        e2e = rows[0]["median_s"]
        for row in rows:
            print(f"{device.type:<6} {row['method']:<44} {row['median_s']:9.4f} {row['p90_s']:8.4f} "
                  f"{row['median_s'] / e2e:6.1f}x  {row['parts']}", flush=True)
    print("PocketSphinx runs on the CPU in every row (it has no GPU path); ratio = median / end-to-end median.")
    print(SIL_ANCHOR)
    return 0


def add_latency(subparsers) -> None:
    """Register ``bench latency``."""
    from svg_core.asr.engines import ENGINES

    p = subparsers.add_parser("latency", help="per-query latency: end-to-end audio model vs ASR cascades",
                              description=run_latency.__doc__)
    p.add_argument("--data", default="assets/demo_bundle", help="dataset folder with a split of spoken queries")
    p.add_argument("--split", default="test", help="split to draw queries from (default test)")
    p.add_argument("--audio-checkpoint", default=None,
                   help="end-to-end audio grounder checkpoint (default: untrained BaseConfig.small)")
    p.add_argument("--frontend-checkpoint", default=None,
                   help="speech front-end (audio_frontend=whisper_base) checkpoint (default: untrained "
                        "BaseConfig.small with the Whisper base encoder)")
    p.add_argument("--text-checkpoint", default=None,
                   help="text grounder checkpoint for the cascades (default: untrained TextConfig.small)")
    p.add_argument("--engines", nargs="*", default=list(ENGINES), choices=ENGINES,
                   help="ASR engines to time (none: only the end-to-end and text-alone rows)")
    p.add_argument("--queries", type=int, default=50, help="timed queries per method (>= 50 for the report)")
    p.add_argument("--warmup", type=int, default=3, help="untimed queries per method first")
    p.add_argument("--noise", default="clean", choices=["clean", "normal", "large"], help="noise preset of the queries")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--cpu-only", action="store_true", help="skip the CUDA rows even when a GPU is present")
    p.set_defaults(func=run_latency)


ASR_MODES = (("standard 30 s window, beam 5 (evaluation)", dict(beam_size=5)),
             ("standard 30 s window, greedy", dict(beam_size=1)),
             ("short window, greedy (the app)", dict(beam_size=1, short_window=True)))


def run_asr(args: argparse.Namespace) -> int:
    """``bench asr``: Whisper decoding modes side by side, WER and median time on the same queries."""
    from svg_core.asr.engines import WhisperEngine
    from svg_core.asr.cascade import word_error_rate
    from svg_core.data.dataset import DatasetLayout, GroundingDataset
    from svg_core.audio.noise import noise_config_from_args

    layout = DatasetLayout.from_dir(args.data)
    noise = noise_config_from_args(args.noise, getattr(args, "esc50", None))
    dataset = GroundingDataset(layout, args.split, noise=noise, seed=args.seed, with_audio=False)
    step = max(1, len(dataset) // args.queries)
    picks = list(range(0, len(dataset), step))[: args.queries]
    waves = [dataset.noisy_wave(i)[0] for i in picks]
    refs = [dataset.records[i].sentence for i in picks]
    tag = "SYNTHETIC " if layout.synthetic else ""
    print(f"Whisper base on CPU ({args.threads} threads), {len(picks)} {tag}{args.split} queries of {args.data}, "
          f"noise={args.noise}, seed={args.seed}")
    print(f"{'mode':<42} {'WER %':>6} {'median s':>9} {'p90 s':>7} {'x std':>6}")
    base = None
    for label, kwargs in ASR_MODES:
        engine = WhisperEngine(device="cpu", cpu_threads=args.threads, **kwargs)
        engine.transcribe(waves[0], 16_000)  # warm-up
        hyps, seconds = [], []
        for wave in waves:
            out = engine.transcribe(wave, 16_000)
            hyps.append(out.text)
            seconds.append(out.seconds)
        median, p90 = _percentiles(seconds)
        base = base or median
        print(f"{label:<42} {100 * word_error_rate(refs, hyps):6.1f} {median:9.3f} {p90:7.3f} {median / base:5.2f}x",
              flush=True)
    print("x std = median time / the first row's median (one run, same queries, same machine load)")
    return 0


def add_asr(subparsers) -> None:
    """Register ``bench asr``."""
    p = subparsers.add_parser("asr", help="Whisper decoding modes: WER and time side by side", description=run_asr.__doc__)
    p.add_argument("--data", default="data/synth_default", help="dataset folder with spoken queries")
    p.add_argument("--split", default="val", help="split to draw queries from (default val)")
    p.add_argument("--queries", type=int, default=40, help="queries, spread evenly over the split")
    p.add_argument("--noise", default="normal", choices=["clean", "normal", "large"], help="noise preset")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads")
    p.set_defaults(func=run_asr)


def build_parser() -> argparse.ArgumentParser:
    """``python -m svg_core.bench SUBCOMMAND``; add a benchmark with one more ``add_*`` call."""
    parser = argparse.ArgumentParser(prog="python -m svg_core.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train(subparsers)
    add_latency(subparsers)
    add_asr(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
