"""The training loop shared by grounding and pre-training: DDP, AMP, schedule, logs, resume.

What a run does (method-notes 2.9, with its test-split selection bug fixed):

- AdamW-style decoupled weight decay (``torch.optim.AdamW``: p <- p - lr*wd*p before the Adam
  step), betas (0.9, 0.999), eps 1e-8, wd 1e-5; global gradient-norm clipping at 5.
- fairseq inverse-sqrt LR: linear warm-up from 1e-7 to the peak, then peak*sqrt(warmup/step).
- One validation pass per epoch on rank 0; the best checkpoint is chosen on validation only
  (``Task.score``), never on test.
- ``--batch-size`` is the GLOBAL batch: under ``torchrun`` each of the W processes takes B/W
  items, and ``DistributedSampler`` interleaves one permutation, so the union of the W
  per-process batches at step k is exactly the single-process batch k (DDP averages gradients).
- Determinism: data order comes from ``DistributedSampler(seed).set_epoch(epoch)``, noise from
  ``dataset.set_epoch(epoch)``, and the global torch RNG (dropout, crops) is re-seeded from
  (seed, epoch, rank) at the start of every epoch; together with the optimizer, scheduler and
  scaler states saved after every epoch, a resumed run reaches the same weights as an
  uninterrupted one.

Run folder::

    OUT/log.csv            one row per epoch: losses, lr, val metrics, throughput
    OUT/steps.csv          one row per logged step: loss, lr
    OUT/tb/                TensorBoard events
    OUT/best/              best checkpoint on validation (model.safetensors, config.json, metrics.json)
    OUT/last/              latest checkpoint + training_state.pt (weights, optimizer, ...) for --resume
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from svg_core.engine.checkpoint import (
    TRAINING_STATE_NAME,
    load_training_state,
    model_state_for_saving,
    save_checkpoint,
    save_training_state,
    unwrap_model,
)

INIT_LR = 1e-7  # start of the warm-up (fairseq ``warmup_init_lr``)


class InverseSqrtSchedule:
    """LR factor of fairseq's inverse-sqrt schedule, for ``torch.optim.lr_scheduler.LambdaLR``.

    A class rather than a closure so that ``LambdaLR.state_dict()`` saves its (plain) fields.

    Args:
        warmup_steps: updates of linear warm-up (paper code: 800).
        init_factor: LR at step 0 divided by the peak LR.
    """

    def __init__(self, warmup_steps: int, init_factor: float):
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, found {warmup_steps}")
        self.warmup_steps = int(warmup_steps)
        self.init_factor = float(init_factor)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.init_factor + (1.0 - self.init_factor) * step / self.warmup_steps
        return math.sqrt(self.warmup_steps / step)


@dataclass
class DistEnv:
    """Where this process runs. ``world_size`` 1 means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def resolve_device(flag: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` fails clearly without a GPU."""
    if flag not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, found {flag!r}")
    if flag == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch.cuda.is_available() is False")
    if flag == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def init_distributed(device_flag: str = "auto") -> DistEnv:
    """Join the process group that ``torchrun`` describes (env RANK/WORLD_SIZE/LOCAL_RANK).

    gloo on CPU, nccl on CUDA. Without ``torchrun`` (WORLD_SIZE unset or 1) nothing is
    initialised.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_flag, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of the global torch RNG for one epoch of one process (dropout, random crops)."""
    return (seed * 1_000_003 + epoch * 10_007 + rank * 101) % (2**63 - 1)


class Task(Protocol):
    """What a training stage supplies to :func:`fit`.

    Attributes:
        model: the module to train (unwrapped).
        cfg: its config dataclass (saved in config.json).
        train_set: the training dataset; must have ``set_epoch(epoch)``.

    Methods ``collate(items) -> batch`` and ``move(batch, device) -> batch`` come from the task,
    so this loop knows no dataset's batch layout.
    """

    model: nn.Module
    cfg: Any
    train_set: Dataset

    def collate(self, items: list[dict]) -> dict: ...

    def move(self, batch: dict, device: torch.device) -> dict: ...

    def compute_loss(self, model: nn.Module, batch: dict, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        """Forward + loss of one batch; ``model`` may be DDP-wrapped; ``step`` is 0-based."""

    def evaluate(self, model: nn.Module) -> dict:
        """Validation metrics of the bare model (rank 0 only)."""

    def score(self, metrics: dict) -> tuple:
        """Higher is better; compares validation metrics for best-checkpoint selection."""


@dataclass
class FitConfig:
    """Optimisation and bookkeeping settings of :func:`fit` (see module docstring)."""

    out_dir: Path
    epochs: int
    batch_size: int  # global, over all processes
    lr: float = 5e-4
    weight_decay: float = 1e-5
    warmup_steps: int | None = None  # None: min(800, max(1, total_steps // 10))
    grad_clip: float = 5.0
    seed: int = 0
    amp: bool = False
    num_workers: int = 0
    resume: bool = False
    log_every: int = 10
    progress: bool = True
    extra: dict = field(default_factory=dict)  # saved into metrics.json (train args, notes)


def _append_csv(path: Path, row: dict) -> None:
    """Append one row; the header is the first row's keys (kept on later appends)."""
    exists = path.exists() and path.stat().st_size > 0
    if exists:
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
    else:
        header = list(row)
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        if not exists:
            writer.writeheader()
        writer.writerow(row)


def _truncate_csv(path: Path, keep_epochs_upto: int) -> None:
    """Drop rows logged after the checkpoint we resume from (a killed run may have written them)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        header = list(rows[0]) if rows else None
    if header is None:
        return
    kept = [r for r in rows if int(r["epoch"]) <= keep_epochs_upto]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(kept)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _autocast(device: torch.device, enabled: bool):
    # fp16 autocast on CUDA (with GradScaler); on CPU the flag is refused earlier.
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=enabled)


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups: weights of matrices and kernels decay; biases and norm gains do not.

    nanoGPT's rule: a trainable parameter with fewer than 2 dimensions (biases, LayerNorm and
    BatchNorm scales and shifts, scalar temperatures) gets no weight decay.

    Raises:
        ValueError: the model has no trainable parameters.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def fit(task: Task, config: FitConfig, env: DistEnv) -> dict:
    """Train ``task.model`` for ``config.epochs`` epochs; returns the best validation metrics.

    Args:
        task: model, datasets, loss and validation (see :class:`Task`).
        config: optimisation settings.
        env: the process's place in the (optional) process group.

    Returns:
        ``{"best_epoch", "best_val", "last_val", "epochs_run", "train_samples_per_sec"}``.
    """
    if config.batch_size % env.world_size != 0:
        raise ValueError(f"--batch-size {config.batch_size} must be divisible by the {env.world_size} processes")
    if config.amp and env.device.type != "cuda":
        raise ValueError("--amp needs CUDA (fp16 autocast + GradScaler); drop it on CPU")
    out_dir = Path(config.out_dir)
    model = task.model.to(env.device)
    sampler = DistributedSampler(task.train_set, num_replicas=env.world_size, rank=env.rank,
                                 shuffle=True, seed=config.seed, drop_last=False)
    loader = DataLoader(task.train_set, batch_size=config.batch_size // env.world_size, sampler=sampler,
                        num_workers=config.num_workers, collate_fn=task.collate,
                        pin_memory=env.device.type == "cuda", persistent_workers=False)
    steps_per_epoch = len(loader)
    total_steps = max(1, steps_per_epoch * config.epochs)
    warmup = config.warmup_steps or min(800, max(1, total_steps // 10))
    groups = decay_groups(model, config.weight_decay)
    params = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999),
                                  eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, InverseSqrtSchedule(warmup, INIT_LR / config.lr))
    scaler = torch.amp.GradScaler(env.device.type, enabled=config.amp)

    start_epoch, step = 1, 0
    best: dict = {"score": None, "epoch": None, "metrics": None}
    state_path = out_dir / "last" / TRAINING_STATE_NAME
    if config.resume:
        if not state_path.is_file():
            raise ValueError(f"--resume: no {state_path}; start without --resume")
        state = load_training_state(state_path)
        unwrap_model(model).load_state_dict({k: v.to(env.device) for k, v in state["model"].items()})
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and env.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], env.device)
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        best = {"score": tuple(state["best"]["score"]) if state["best"]["score"] is not None else None,
                "epoch": state["best"]["epoch"], "metrics": state["best"]["metrics"]}
        if state["batch_size"] != config.batch_size or state["steps_per_epoch"] != steps_per_epoch:
            raise ValueError(
                f"--resume with a different data/batch setup: saved batch {state['batch_size']}, "
                f"{state['steps_per_epoch']} steps/epoch; now {config.batch_size}, {steps_per_epoch}")
        if env.is_main:
            for name in ("log.csv", "steps.csv"):
                _truncate_csv(out_dir / name, start_epoch - 1)

    ddp_model: nn.Module = model
    if env.world_size > 1:
        # find_unused_parameters: optional branches (chunk trick, VGCL cross-attention) may not
        # receive gradients every step.
        ddp_model = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                                            find_unused_parameters=True)
    writer = None
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter  # imported late: heavy, rank 0 only

        writer = SummaryWriter(log_dir=str(out_dir / "tb"), purge_step=step if config.resume else None)

    last_val: dict = {}
    samples_per_sec = float("nan")
    for epoch in range(start_epoch, config.epochs + 1):
        sampler.set_epoch(epoch)
        task.train_set.set_epoch(epoch)
        torch.manual_seed(epoch_seed(config.seed, epoch, env.rank))
        model.train()
        sums: dict[str, float] = {}
        n_batches, n_samples, t0 = 0, 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                   disable=not (config.progress and env.is_main), leave=False)
        for batch in bar:
            batch = task.move(batch, env.device)
            with _autocast(env.device, config.amp):
                loss, logs = task.compute_loss(ddp_model, batch, step, total_steps)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at epoch {epoch}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            n_batches += 1
            n_samples += len(batch["query_id"])
            logs = {"loss": float(loss.detach()), "grad_norm": float(grad_norm), **logs}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if env.is_main:
                bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                if step % config.log_every == 0 or n_batches == steps_per_epoch:
                    lr_now = scheduler.get_last_lr()[0]
                    _append_csv(out_dir / "steps.csv", {"epoch": epoch, "step": step, "lr": lr_now, "loss": logs["loss"]})
                    for k, v in logs.items():
                        writer.add_scalar(f"train/{k}", v, step)
                    writer.add_scalar("train/lr", lr_now, step)
        epoch_sec = time.perf_counter() - t0
        samples_per_sec = n_samples * env.world_size / max(epoch_sec, 1e-9)
        train_means = {f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()}

        if env.is_main:
            last_val = task.evaluate(model)
            score = task.score(last_val)
            if best["score"] is None or score > best["score"]:
                best = {"score": score, "epoch": epoch, "metrics": last_val}
                save_checkpoint(out_dir / "best", model, task.cfg,
                                extra={"epoch": epoch, "step": step, "selected_on": "val", "val": last_val, **config.extra})
            row = {"epoch": epoch, "step": step, "lr": scheduler.get_last_lr()[0], **train_means,
                   **{f"val_{k}": v for k, v in last_val.items()},
                   "epoch_sec": round(epoch_sec, 3), "train_samples_per_sec": round(samples_per_sec, 2)}
            _append_csv(out_dir / "log.csv", row)
            for k, v in last_val.items():
                if isinstance(v, (int, float)):
                    writer.add_scalar(f"val/{k}", v, step)
            writer.flush()
            tqdm.write(f"epoch {epoch}: " + " ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                     if isinstance(v, float) and k != "lr"))
            save_checkpoint(out_dir / "last", model, task.cfg,
                            extra={"epoch": epoch, "step": step, "val": last_val, **config.extra})
            save_training_state(state_path, {
                "model": model_state_for_saving(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(env.device),
                "epoch": epoch,
                "step": step,
                "batch_size": config.batch_size,
                "steps_per_epoch": steps_per_epoch,
                "best": {"score": list(best["score"]) if best["score"] is not None else None,
                         "epoch": best["epoch"], "metrics": best["metrics"]},
            })
        env.barrier()
    if writer is not None:
        writer.close()
    return {"best_epoch": best["epoch"], "best_val": best["metrics"], "last_val": last_val,
            "epochs_run": config.epochs - start_epoch + 1, "train_samples_per_sec": samples_per_sec}
