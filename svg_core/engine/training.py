"""Train a grounding model, or pre-train the CPC/VGCL audio encoder.

Grounding (the best checkpoint is chosen on the VAL split, never on test)::

    python -m svg_core.train --data data/synth --model base --preset small --out runs/base_small
    python -m svg_core.train --data data/synth --model vgcl_base --preset small \\
        --pretrained-encoder runs/vgcl_small/encoder --out runs/vgcl_base_small
    torchrun --nproc_per_node 2 -m svg_core.train --data data/synth --model base --out runs/ddp

Pre-training (paper 5.1-5.3; writes OUT/encoder/ for --pretrained-encoder)::

    python -m svg_core.train --stage pretrain --model vgcl --data data/synth --preset small \\
        --pacing linear --kappa 10 --out runs/vgcl_small

SIL, weakly supervised (never reads a moment's timestamps; ``svg_core.engine.sil_training``)::

    python -m svg_core.train --stage pretrain --model sil_asp --data data/synth --out runs/sil_asp
    python -m svg_core.train --model sil --data data/synth --pretrained-encoder runs/sil_asp/encoder \
        --out runs/sil

FSAN, weakly supervised, text words or speech steps as tokens (``svg_core.engine.fsan_training``)::

    python -m svg_core.train --model fsan_text --data data/synth --out runs/fsan_text
    python -m svg_core.train --model fsan_speech --data data/synth --out runs/fsan_speech

Models: ``base`` (ResDAVEnet audio encoder), ``vslnet`` (VSLNet-audio), ``vgcl_base`` / ``cpc_base``
(Base whose first audio stage is a VGCL / CPC pre-trained encoder, given by
``--pretrained-encoder``), ``text`` (the same network on the caption text), ``sil`` (weakly supervised SIL), ``avlnet``
(query/clip embeddings for search across videos; ``svg_core.engine.avlnet_training``). Pre-training
models: ``cpc`` (audio only), ``vgcl`` (video-guided curriculum), ``sil_asp`` (SIL's ASP).

Outputs: see ``svg_core.trainer`` (log.csv, steps.csv, tb/, best/, last/).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from svg_core.engine.checkpoint import build_with_pretrained, save_checkpoint, unwrap_model, warm_start
from svg_core.data.dataset import DatasetLayout, GroundingDataset, collate_batch
from svg_core.engine.metrics import compute_metrics
from svg_core.engine.inference import move_batch, predict_split
from svg_core.models import (
    BaseConfig,
    CPCConfig,
    TextConfig,
    VSLNetConfig,
    build_model,
    build_vocab,
)
from svg_core.engine.loop import DistEnv, FitConfig, fit, init_distributed
# the run's datasets and --set parsing live in run_data.py, which the weak trainers share without a circle
from svg_core.engine.run_data import make_datasets, parse_overrides
from svg_core.engine.text_teacher import distill_loss, init_from_teacher, load_text_teacher
from svg_core.errors import UserInputError, run_cli

GROUNDING_MODELS = ("base", "vslnet", "vgcl_base", "cpc_base", "text", "sil", "avlnet", "fsan_text", "fsan_speech")
SUPERVISED_MODELS = ("base", "vslnet", "vgcl_base", "cpc_base", "text")  # trained on the moments (--crop-prob)
PRETRAIN_MODELS = ("cpc", "vgcl", "sil_asp")


def build_parser() -> argparse.ArgumentParser:
    """The command line (plain argparse, a help string on every flag)."""
    p = argparse.ArgumentParser(prog="python -m svg_core.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder in the ActivityNet Speech layout")
    p.add_argument("--model", required=True, choices=GROUNDING_MODELS + PRETRAIN_MODELS,
                   help="grounding: base|vslnet|vgcl_base|cpc_base|text|sil|fsan_text|fsan_speech (weakly supervised); avlnet (search); "
                        "--stage pretrain: cpc|vgcl|sil_asp")
    p.add_argument("--stage", default="ground", choices=["ground", "pretrain"],
                   help="ground = train a grounding model (default); pretrain = CPC/VGCL encoder pre-training")
    p.add_argument("--preset", default="small", choices=["small", "paper"],
                   help="model size: small (trains on a 2-core CPU) or paper (D = 1024)")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/NAME (created)")
    p.add_argument("--epochs", type=int, default=10, help="most training epochs (paper: 49 grounding)")
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping: stop after N epochs without a better val score (default: run all --epochs)")
    p.add_argument("--min-epochs", type=int, default=0,
                   help="early stopping never stops before this epoch (default 0)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="GLOBAL batch size (split over torchrun processes; paper: 64)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate after warm-up (released code: 5e-4)")
    p.add_argument("--weight-decay", type=float, default=1e-5, help="decoupled (AdamW) weight decay")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="linear warm-up updates before inverse-sqrt decay (default min(800, total/10))")
    p.add_argument("--grad-clip", type=float, default=5.0, help="global gradient-norm clip")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order, noise and dropout")
    p.add_argument("--noise", default="normal", choices=["clean", "normal", "large"],
                   help="noise preset mixed into the spoken queries for train and val (paper Fig. 4; "
                        "default normal, as python -m svg_core.evaluate)")
    p.add_argument("--speech-cache", default="auto",
                   help="speech cache file from `python -m svg_core.data cache DIR`; auto = DIR/speech_cache.h5 "
                        "when it exists; none = decode the wavs every epoch")
    p.add_argument("--frontend-cache", default="auto",
                   help="speech front-end models (--set audio_frontend=whisper_base): cached encoder features from "
                        "`python -m svg_core.data frontend-cache DIR`; auto = DIR's default cache file when it "
                        "exists, else the encoder runs live; none = always live; or a file")
    p.add_argument("--esc50", default=None, help="ESC-50 folder for the noise, or \"shared\" for ../shared/data/esc50 (default: the shipped ESC-10 subset assets/noise/esc10)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last/training_state.pt")
    p.add_argument("--pretrained-encoder", default=None,
                   help="CPC/VGCL encoder checkpoint folder (OUT/encoder of a pretrain run) replacing the first audio stage;"
                        " for --model sil the ASP speech encoder (OUT/encoder of --model sil_asp), frozen by default")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="keep the pretrained encoder frozen (default: fine-tune it)")
    p.add_argument("--crop-prob", type=float, default=0.0,
                   help="supervised grounding: cut a training item's video to a random span around its moment "
                        "with this probability (augmentation; default 0 = off; weak models and pre-training refuse it)")
    p.add_argument("--max-train-items", type=int, default=None, help="use only the first N training items")
    p.add_argument("--max-val-items", type=int, default=None, help="use only the first N validation items")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto = CUDA when available")
    p.add_argument("--amp", action="store_true", help="fp16 mixed precision (autocast + GradScaler), CUDA only")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU intra-op threads (0 = torch default; 1 is fastest on a busy 2-core box)")
    p.add_argument("--eval-batch-size", type=int, default=32, help="batch size of the per-epoch validation")
    p.add_argument("--log-every", type=int, default=10, help="write steps.csv / TensorBoard every N steps")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one field of the model config, e.g. --set chunk_num=2 --set attn_layers=2 "
                        "(repeatable; tuples as 128,256)")
    p.add_argument("--init-from-text", default=None, metavar="CK",
                   help="spoken models: start the video encoder, attention and heads from this text-model checkpoint "
                        "(svg_core.engine.text_teacher; its --set model_dim / n_video_frames must match)")
    p.add_argument("--init-from", default=None, metavar="CK",
                   help="warm start: every weight from this checkpoint of the same --model and --set (e.g. a run's "
                        "best/ carried to a new machine); optimizer, schedule and early stopping start afresh")
    p.add_argument("--distill-from", default=None, metavar="CK",
                   help="spoken models: add --distill-weight x the KL to this frozen text model's predictions on the "
                        "item's caption (training only; the student still hears speech alone)")
    p.add_argument("--distill-weight", type=float, default=1.0, help="weight of the --distill-from loss (default 1)")
    p.add_argument("--boundary-loss", default=None, choices=["ce", "kl"],
                   help="boundary loss: ce (paper) or kl (released code's smoothed KL); default: the config's")
    # pre-training (paper 5.2-5.3)
    p.add_argument("--pacing", default="linear", choices=["linear", "exponential", "logarithmic"],
                   help="curriculum pacing function over the pre-training steps")
    p.add_argument("--kappa", type=int, default=10, help="curriculum stages (paper default 10; Table 4 tries 5)")
    p.add_argument("--no-curriculum", action="store_true", help="ablation: whole video from the first step")
    p.add_argument("--no-entire-video", action="store_true", help="ablation: drop the un-masked video copy")
    p.add_argument("--no-self-attention", action="store_true", help="ablation: drop the video self-attention")
    p.add_argument("--crop-frames", type=int, default=256, choices=[128, 256],
                   help="audio crop in log-Mel frames for pre-training (paper 256; ablation 128)")
    return p


# ---------------------------------------------------------------------------------------------
# Config and data construction
# ---------------------------------------------------------------------------------------------


def grounding_config(args: argparse.Namespace, train_sentences: list[str]) -> Any:
    """The model-family config for a grounding ``--model`` and ``--preset`` (plus ``--set`` overrides)."""
    family = TextConfig if args.model == "text" else VSLNetConfig if args.model == "vslnet" else BaseConfig
    overrides: dict[str, Any] = parse_overrides(getattr(args, "overrides", []) or [], family)
    if args.boundary_loss is not None:
        overrides["boundary_loss"] = args.boundary_loss
    if args.model == "text":
        if args.pretrained_encoder:
            raise ValueError("--pretrained-encoder is for audio models, not --model text")
        factory = TextConfig.small if args.preset == "small" else TextConfig.paper
        cfg = factory(**overrides)
        return replace(cfg, vocab=build_vocab(train_sentences, cfg.min_count))
    if args.model in ("vgcl_base", "cpc_base") and not args.pretrained_encoder:
        raise ValueError(f"--model {args.model} needs --pretrained-encoder DIR (the encoder/ of a pretrain run)")
    if args.pretrained_encoder:
        overrides.update(pretrained_encoder=str(args.pretrained_encoder), freeze_pretrained=args.freeze_encoder)
    return (family.small if args.preset == "small" else family.paper)(**overrides)


def pretrain_config(args: argparse.Namespace) -> CPCConfig:
    """The ``CPCConfig`` of a ``--stage pretrain`` run (``cpc`` = audio only, ``vgcl`` = video-guided)."""
    factory = CPCConfig.small if args.preset == "small" else CPCConfig.paper
    from_flags = dict(
        video_guided=args.model == "vgcl", pacing=args.pacing, kappa=args.kappa,
        use_curriculum=not args.no_curriculum, use_entire_video=not args.no_entire_video,
        use_self_attention=not args.no_self_attention, crop_frames=args.crop_frames, seed=args.seed,
    )  # fmt: skip
    overrides = parse_overrides(getattr(args, "overrides", []) or [], CPCConfig)
    clash = sorted(set(overrides) & set(from_flags))
    if clash:
        raise ValueError(f"--set {', '.join(clash)}: set by its own flag (see --help), not by --set")
    return factory(**overrides, **from_flags)


class _GroundingBatches:
    """How both training stages batch the grounding dataset (``Task.collate`` / ``Task.move``)."""

    def collate(self, items: list[dict]) -> dict:
        """The grounding batch dict (``svg_core.data.dataset.collate_batch``)."""
        return collate_batch(items)

    def move(self, batch: dict, device: torch.device) -> dict:
        """Tensors of the batch onto ``device``."""
        return move_batch(batch, device)


@dataclass
class GroundingTask(_GroundingBatches):
    """Supervised grounding: ``model.loss``; validation R@n/mIoU; best on (R1@0.5, mIoU)."""

    model: nn.Module
    cfg: Any
    train_set: GroundingDataset
    val_set: GroundingDataset
    eval_batch_size: int = 32
    progress: bool = True
    teacher: nn.Module | None = None  # frozen text grounder (--distill-from), run on batch["sentence"]
    distill_weight: float = 0.0
    run_notes: dict = field(default_factory=dict)  # written into summary.json (the teacher used)

    def compute_loss(self, model: nn.Module, batch: dict, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        out = model(batch)
        loss, logs = unwrap_model(model).loss(out, batch)
        logs = {k: v for k, v in logs.items() if k != "loss"}
        if self.teacher is not None and self.distill_weight > 0:
            self.teacher.to(out["start_prob"].device)
            with torch.no_grad():
                teacher_out = self.teacher(batch)
            distill = distill_loss(out, teacher_out)
            loss = loss + self.distill_weight * distill
            logs["distill_loss"] = distill.detach()
        return loss, logs

    def evaluate(self, model: nn.Module) -> dict:
        records = predict_split(model, self.val_set, batch_size=self.eval_batch_size, progress=self.progress)
        return compute_metrics(records)

    def score(self, metrics: dict) -> tuple:
        return (metrics["R1@0.5"], metrics["mIoU"])


@dataclass
class PretrainTask(_GroundingBatches):
    """CPC/VGCL pre-training: InfoNCE; validation = InfoNCE on centred crops, whole video."""

    model: nn.Module
    cfg: CPCConfig
    train_set: GroundingDataset
    val_set: GroundingDataset
    eval_batch_size: int = 32
    progress: bool = True

    def compute_loss(self, model: nn.Module, batch: dict, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        bare = unwrap_model(model)
        bare.set_progress(step, total_steps)  # curriculum stage + this step's crop/gamma seed
        out = model(batch)
        loss, logs = bare.loss(out, batch)
        return loss, {k: v for k, v in logs.items() if k != "loss"}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict:
        from torch.utils.data import DataLoader

        from svg_core.data.dataset import collate_batch
        from svg_core.engine.inference import model_device, move_batch

        was_training = model.training
        model.eval()
        loader = DataLoader(self.val_set, batch_size=self.eval_batch_size, collate_fn=collate_batch)
        sums: dict[str, float] = {}
        n = 0
        for batch in loader:
            batch = move_batch(batch, model_device(model))
            _, logs = model.loss(model(batch), batch)
            size = len(batch["query_id"])
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v) * size
            n += size
        model.train(was_training)
        return {k: v / max(n, 1) for k, v in sums.items() if k != "curriculum_stage"}

    def score(self, metrics: dict) -> tuple:
        return (-metrics["loss"],)


def build_task(args: argparse.Namespace) -> GroundingTask | PretrainTask:
    """Model, config and datasets of a run (the model initialised from ``--seed``)."""
    crop = args.crop_prob
    if crop and (args.stage == "pretrain" or args.model not in SUPERVISED_MODELS):
        raise ValueError(f"--crop-prob is for supervised grounding (it reads the moment), not --model {args.model}"
                         f"{' --stage pretrain' if args.stage == 'pretrain' else ''}")
    if args.model in ("sil", "sil_asp"):  # weak grounding / ASP pre-training: own file
        from svg_core.engine.sil_training import build_sil_task

        return build_sil_task(args)
    if args.model in ("fsan_text", "fsan_speech"):  # weak grounding by an alignment map: own file
        from svg_core.engine.fsan_training import build_fsan_task

        return build_fsan_task(args)
    if args.model == "avlnet":  # spoken search embeddings: own file
        from svg_core.engine.avlnet_training import build_avlnet_task

        return build_avlnet_task(args)
    if args.stage == "pretrain":
        if args.model not in PRETRAIN_MODELS:
            raise ValueError(f"--stage pretrain takes --model cpc, vgcl or sil_asp, found {args.model!r}")
        cfg = pretrain_config(args)
        train_set, val_set = make_datasets(args, with_audio=True, n_video_frames=cfg.n_video_frames,
                                           audio_frontend=cfg.audio_frontend, frontend_pool=cfg.frontend_pool)
        torch.manual_seed(args.seed)
        model = build_model(cfg)
        return PretrainTask(model, cfg, train_set, val_set, args.eval_batch_size, not args.no_progress)
    if args.model not in GROUNDING_MODELS:
        raise ValueError(f"--model {args.model!r} is a pre-training model; add --stage pretrain")
    layout_records = DatasetLayout.from_dir(args.data).records("train")[0]
    if args.max_train_items is not None:
        layout_records = layout_records[: args.max_train_items]
    cfg = grounding_config(args, [r.sentence for r in layout_records])
    frontend = (cfg.audio_frontend, cfg.frontend_pool) if isinstance(cfg, BaseConfig) else ("logmel", 1)
    train_set, val_set = make_datasets(args, with_audio=args.model != "text", n_video_frames=cfg.n_video_frames,
                                       audio_frontend=frontend[0], frontend_pool=frontend[1], crop_prob=crop)
    torch.manual_seed(args.seed)
    model = build_with_pretrained(cfg)
    if args.model in ("vgcl_base", "cpc_base"):
        want_video = args.model == "vgcl_base"
        if model.cfg.cpc.video_guided != want_video:
            kind = "VGCL (video-guided)" if want_video else "plain CPC"
            raise ValueError(f"--model {args.model} needs a {kind} encoder; {args.pretrained_encoder} is not one")
    teacher, notes = _text_teacher(args, model, cfg)
    # model.cfg has the pretrained stage's architecture filled in: the checkpoint reloads without it.
    return GroundingTask(model, getattr(model, "cfg", cfg), train_set, val_set, args.eval_batch_size,
                         not args.no_progress, teacher, args.distill_weight, notes)


def _text_teacher(args: argparse.Namespace, model: nn.Module, cfg: Any) -> tuple[nn.Module | None, dict]:
    """The --init-from-text / --distill-from teacher of a spoken grounder, and notes for summary.json."""
    init_from, distill_from = getattr(args, "init_from_text", None), getattr(args, "distill_from", None)
    if not (init_from or distill_from):
        return None, {}
    if args.model == "text":
        raise UserInputError("--init-from-text and --distill-from teach a spoken model, not --model text")
    loaded: dict[str, nn.Module] = {}  # both flags usually name one checkpoint: read it once

    def teacher_at(path: str) -> nn.Module:
        if str(path) not in loaded:
            loaded[str(path)] = load_text_teacher(path, cfg)
        return loaded[str(path)]

    notes: dict = {}
    if init_from:
        copied = init_from_teacher(model, teacher_at(init_from))
        notes["init_from_text"] = {"checkpoint": str(init_from), "tensors_copied": len(copied)}
    teacher = None
    if distill_from:
        teacher = teacher_at(distill_from)
        notes["distill_from"] = {"checkpoint": str(distill_from), "weight": args.distill_weight}
    return teacher, notes


def run(args: argparse.Namespace, env: DistEnv | None = None) -> dict:
    """Train as ``args`` says; returns :func:`svg_core.trainer.fit`'s summary (rank 0 writes files)."""
    env = env or init_distributed(args.device)
    if getattr(args, "init_from", None) and getattr(args, "init_from_text", None):  # before the datasets are read
        raise UserInputError("--init-from and --init-from-text both set the weights: give one")
    task = build_task(args)
    if getattr(args, "init_from", None):
        try:
            copied = warm_start(task.model, task.cfg, args.init_from)
        except ValueError as err:
            raise UserInputError(str(err)) from err
        task.run_notes = {**getattr(task, "run_notes", {}), "init_from": {"checkpoint": str(args.init_from),
                                                                          "tensors_copied": copied}}
    extra = {"train_args": {k: v for k, v in vars(args).items()}, "world_size": env.world_size,
             "synthetic_data": DatasetLayout.from_dir(args.data).synthetic,
             # which noise files the run used (metrics.json + summary.json), not just the --esc50 flag
             "noise_source": task.train_set.noise.provenance(task.train_set.seed) if task.train_set.noise else None,
             **getattr(task, "run_notes", {})}  # SIL: supervision and how the best epoch was chosen
    config = FitConfig(
        out_dir=Path(args.out), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, grad_clip=args.grad_clip,
        seed=args.seed, amp=args.amp, num_workers=args.num_workers, resume=args.resume,
        log_every=args.log_every, progress=not args.no_progress, patience=args.patience,
        min_epochs=args.min_epochs, extra=extra,
    )  # fmt: skip
    summary = fit(task, config, env)
    if env.is_main:
        out = Path(args.out)
        if args.stage == "pretrain":
            # The encoder to plug into grounding is the one at the end of the curriculum (the
            # paper's model-188 is likewise the last stage), not the lowest val loss.
            save_checkpoint(out / "encoder", task.model, task.cfg, extra={"stage": "pretrain", **extra,
                                                                          "last_val": summary["last_val"]})
        summary = {**summary, "noise_source": extra["noise_source"], **getattr(task, "run_notes", {})}
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = init_distributed(args.device)
    try:
        summary = run(args, env)
    finally:
        if env.world_size > 1:
            torch.distributed.destroy_process_group()
    if env.is_main:
        best = summary["best_val"] or {}
        took = (f"stopped early after epoch {summary['last_epoch']} (patience {summary['patience']})"
                if summary["stopped_early"] else f"ran to epoch {summary['last_epoch']}")
        print(f"{took}; best epoch {summary['best_epoch']} (selected on val): "
              + " ".join(f"{k}={v:.2f}" for k, v in best.items() if isinstance(v, float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
