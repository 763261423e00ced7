"""The training loop shared by grounding and pre-training: DDP, AMP, schedule, logs, resume.

What a run does (method-notes 2.9, with its test-split selection bug fixed):

- AdamW-style decoupled weight decay (``torch.optim.AdamW``: p <- p - lr*wd*p before the Adam
  step), betas (0.9, 0.999), eps 1e-8, wd 1e-5; global gradient-norm clipping at 5.
- fairseq inverse-sqrt LR: linear warm-up from 1e-7 to the peak, then peak*sqrt(warmup/step).
- One validation pass per epoch on rank 0; the best checkpoint is chosen on validation only
  (``Task.score``), never on test. With ``patience`` the run stops after that many epochs
  without a better validation score (early stopping); the summary records the epochs it took.
- No host sync per step: loss parts stay tensors on the device and are read back every
  ``log_every`` steps; under DDP the logged means are all-reduced over the processes.
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
    patience: int | None = None  # stop after this many epochs without a better val score; None: run all
    # never stop early before this epoch: the audio models sit on the video prior for several epochs
    # before the query starts to count (world 3, Base, patience 4: stopped at epoch 5, best epoch 1, deaf)
    min_epochs: int = 0
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


@dataclass
class RunState:
    """What one :func:`fit` carries between its steps: the objects built once and the counters.

    ``step`` counts optimizer updates; ``best`` holds the validation ``score``/``epoch``/``metrics``
    of the best epoch so far; ``epochs_since_best`` drives early stopping.
    """

    model: nn.Module
    ddp_model: nn.Module
    sampler: DistributedSampler
    loader: DataLoader
    params: list
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    steps_per_epoch: int
    total_steps: int
    out_dir: Path
    start_epoch: int = 1
    step: int = 0
    best: dict = field(default_factory=lambda: {"score": None, "epoch": None, "metrics": None})
    epochs_since_best: int = 0
    writer: Any = None
    last_val: dict = field(default_factory=dict)
    samples_per_sec: float = float("nan")

    @property
    def state_path(self) -> Path:
        return self.out_dir / "last" / TRAINING_STATE_NAME


def setup_run(task: Task, config: FitConfig, env: DistEnv) -> RunState:
    """Build the loader, optimizer, schedule and scaler; with ``config.resume`` restore them.

    Raises:
        ValueError: the batch does not split over the processes, ``--amp`` without CUDA, or a
            resume whose saved state is missing or was made with another data/batch setup.
    """
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, found {config.batch_size}")
    if config.batch_size % env.world_size != 0:
        raise ValueError(f"--batch-size {config.batch_size} must be divisible by the {env.world_size} processes")
    if config.amp and env.device.type != "cuda":
        raise ValueError("--amp needs CUDA (fp16 autocast + GradScaler); drop it on CPU")
    if config.patience is not None and config.patience < 1:
        raise ValueError(f"--patience must be >= 1 epoch, found {config.patience}")
    if config.min_epochs < 0:
        raise ValueError(f"--min-epochs must be >= 0, found {config.min_epochs}")
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
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    run = RunState(
        model=model, ddp_model=model, sampler=sampler, loader=loader,
        params=[p for group in groups for p in group["params"]], optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, InverseSqrtSchedule(warmup, INIT_LR / config.lr)),
        scaler=torch.amp.GradScaler(env.device.type, enabled=config.amp),
        steps_per_epoch=steps_per_epoch, total_steps=total_steps, out_dir=Path(config.out_dir),
    )  # fmt: skip
    if config.resume:
        _restore(run, config, env)
    if env.world_size > 1:
        # find_unused_parameters: optional branches (chunk trick, VGCL cross-attention) may not
        # receive gradients every step.
        run.ddp_model = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                                                find_unused_parameters=True)
    if env.is_main:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter  # imported late: heavy, rank 0 only

        run.writer = SummaryWriter(log_dir=str(run.out_dir / "tb"), purge_step=run.step if config.resume else None)
    return run


def _restore(run: RunState, config: FitConfig, env: DistEnv) -> None:
    """Load OUT/last/training_state.pt into ``run`` and cut the logs back to its epoch."""
    if not run.state_path.is_file():
        raise ValueError(f"--resume: no {run.state_path}; start without --resume")
    state = load_training_state(run.state_path)
    unwrap_model(run.model).load_state_dict({k: v.to(env.device) for k, v in state["model"].items()})
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and env.device.type == "cuda":
        torch.cuda.set_rng_state(state["rng"]["cuda"], env.device)
    run.start_epoch, run.step = int(state["epoch"]) + 1, int(state["step"])
    saved = state["best"]
    run.best = {"score": tuple(saved["score"]) if saved["score"] is not None else None,
                "epoch": saved["epoch"], "metrics": saved["metrics"]}
    run.epochs_since_best = int(state.get("epochs_since_best", 0))
    if state["batch_size"] != config.batch_size or state["steps_per_epoch"] != run.steps_per_epoch:
        raise ValueError(
            f"--resume with a different data/batch setup: saved batch {state['batch_size']}, "
            f"{state['steps_per_epoch']} steps/epoch; now {config.batch_size}, {run.steps_per_epoch}")
    if env.is_main:
        for name in ("log.csv", "steps.csv"):
            _truncate_csv(run.out_dir / name, run.start_epoch - 1)


def _add_parts(sums: dict[str, list], parts: dict, device: torch.device) -> None:
    """Add one step's loss parts to ``sums[k] = [tensor sum, count]`` without reading them back."""
    for k, v in parts.items():
        v = torch.as_tensor(v, dtype=torch.float32, device=device).detach().reshape(())
        if k in sums:
            sums[k][0] = sums[k][0] + v
            sums[k][1] += 1
        else:
            sums[k] = [v, 1]


def _mean_over_ranks(sums: dict[str, list], env: DistEnv) -> dict[str, float]:
    """Per-key means of :func:`_add_parts` sums over all processes: one all-reduce, one host sync.

    Every process logs the same keys (the same model and loss); a part a step did not log
    (CPC's k with no future step) is averaged over the steps that did.
    """
    if not sums:
        return {}
    names = sorted(sums)
    values = torch.stack([sums[k][0] for k in names])
    counts = torch.tensor([float(sums[k][1]) for k in names], device=values.device)
    both = torch.cat([values, counts])
    if env.world_size > 1:
        dist.all_reduce(both, op=dist.ReduceOp.SUM)
    read = both.tolist()  # the one host sync
    totals, n = read[: len(names)], read[len(names):]
    return {k: t / max(c, 1.0) for k, t, c in zip(names, totals, n)}


def train_epoch(run: RunState, task: Task, config: FitConfig, env: DistEnv, epoch: int) -> dict:
    """One pass over the training data; returns the epoch's mean losses (over all ranks) and speed.

    The loss parts stay on the device: they are summed as tensors and read back (one host sync,
    one all-reduce under DDP) only every ``log_every`` steps and at the end of the epoch, where a
    non-finite loss in the window is also caught.

    Raises:
        FloatingPointError: a non-finite training loss.
    """
    run.sampler.set_epoch(epoch)
    task.train_set.set_epoch(epoch)
    torch.manual_seed(epoch_seed(config.seed, epoch, env.rank))
    run.model.train()
    epoch_sums: dict[str, list] = {}
    window: dict[str, list] = {}
    window_start, n_batches, n_samples, t0 = run.step, 0, 0, time.perf_counter()
    bar = tqdm(run.loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch",
               disable=not (config.progress and env.is_main), leave=False)
    for batch in bar:
        batch = task.move(batch, env.device)
        with _autocast(env.device, config.amp):
            loss, logs = task.compute_loss(run.ddp_model, batch, run.step, run.total_steps)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(run.params, config.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        run.step += 1
        n_batches += 1
        n_samples += len(batch["query_id"])
        parts = {"loss": loss.detach(), "grad_norm": grad_norm.detach(), **logs}
        _add_parts(epoch_sums, parts, env.device)
        _add_parts(window, parts, env.device)
        if run.step % config.log_every == 0 or n_batches == run.steps_per_epoch:
            means = _mean_over_ranks(window, env)
            if not math.isfinite(means["loss"]):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}, "
                                         f"steps {window_start + 1}-{run.step}")
            window, window_start = {}, run.step
            if env.is_main:
                lr_now = run.scheduler.get_last_lr()[0]
                bar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{lr_now:.2e}")
                _append_csv(run.out_dir / "steps.csv", {"epoch": epoch, "step": run.step, "lr": lr_now,
                                                        "loss": means["loss"]})
                for k, v in means.items():
                    run.writer.add_scalar(f"train/{k}", v, run.step)
                run.writer.add_scalar("train/lr", lr_now, run.step)
    epoch_sec = time.perf_counter() - t0
    run.samples_per_sec = n_samples * env.world_size / max(epoch_sec, 1e-9)
    means = _mean_over_ranks(epoch_sums, env)
    return {**{f"train_{k}": v for k, v in means.items()}, "epoch_sec": round(epoch_sec, 3),
            "train_samples_per_sec": round(run.samples_per_sec, 2)}


def validate_and_save(run: RunState, task: Task, config: FitConfig, env: DistEnv, epoch: int,
                      train_stats: dict) -> bool:
    """Validate (rank 0), keep the best checkpoint, log the epoch, save OUT/last for resume.

    Returns:
        True when training should stop early: ``config.patience`` epochs in a row without a
        better validation score (the same answer on every rank).
    """
    stop = False
    if env.is_main:
        run.last_val = task.evaluate(run.model)
        score = task.score(run.last_val)
        if run.best["score"] is None or score > run.best["score"]:
            run.best = {"score": score, "epoch": epoch, "metrics": run.last_val}
            run.epochs_since_best = 0
            save_checkpoint(run.out_dir / "best", run.model, task.cfg,
                            extra={"epoch": epoch, "step": run.step, "selected_on": "val", "val": run.last_val,
                                   **config.extra})
        else:
            run.epochs_since_best += 1
        stop = config.patience is not None and run.epochs_since_best >= config.patience and epoch >= config.min_epochs
        row = {"epoch": epoch, "step": run.step, "lr": run.scheduler.get_last_lr()[0],
               **{k: v for k, v in train_stats.items() if k.startswith("train_") and k != "train_samples_per_sec"},
               **{f"val_{k}": v for k, v in run.last_val.items()},
               "epoch_sec": train_stats["epoch_sec"], "train_samples_per_sec": train_stats["train_samples_per_sec"]}
        _append_csv(run.out_dir / "log.csv", row)
        for k, v in run.last_val.items():
            if isinstance(v, (int, float)):
                run.writer.add_scalar(f"val/{k}", v, run.step)
        run.writer.flush()
        tqdm.write(f"epoch {epoch}: " + " ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                 if isinstance(v, float) and k != "lr"))
        save_checkpoint(run.out_dir / "last", run.model, task.cfg,
                        extra={"epoch": epoch, "step": run.step, "val": run.last_val, **config.extra})
        save_training_state(run.state_path, {
            "model": model_state_for_saving(run.model),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "rng": _rng_state(env.device),
            "epoch": epoch,
            "step": run.step,
            "batch_size": config.batch_size,
            "steps_per_epoch": run.steps_per_epoch,
            "best": {"score": list(run.best["score"]) if run.best["score"] is not None else None,
                     "epoch": run.best["epoch"], "metrics": run.best["metrics"]},
            "epochs_since_best": run.epochs_since_best,
        })
    if env.world_size > 1:
        flag = torch.tensor([1.0 if stop else 0.0], device=env.device)
        dist.broadcast(flag, src=0)  # every rank leaves the epoch loop together
        stop = bool(flag.item())
    env.barrier()
    return stop


def fit(task: Task, config: FitConfig, env: DistEnv) -> dict:
    """Train ``task.model`` for up to ``config.epochs`` epochs; returns the best validation metrics.

    The three steps are :func:`setup_run` (build, or restore with ``config.resume``),
    :func:`train_epoch` and :func:`validate_and_save` (which also decides early stopping).

    Args:
        task: model, datasets, loss and validation (see :class:`Task`).
        config: optimisation settings.
        env: the process's place in the (optional) process group.

    Returns:
        ``{"best_epoch", "best_val", "last_val", "epochs_run", "last_epoch", "stopped_early",
        "patience", "train_samples_per_sec"}``; ``epochs_run`` counts this call's epochs.
    """
    run = setup_run(task, config, env)
    epoch, stopped = run.start_epoch - 1, False
    if config.patience is not None and run.epochs_since_best >= config.patience and epoch >= config.min_epochs:
        stopped = True  # a resumed run that had already stopped early
    while not stopped and epoch < config.epochs:
        epoch += 1
        stats = train_epoch(run, task, config, env, epoch)
        stopped = validate_and_save(run, task, config, env, epoch, stats)
    if run.writer is not None:
        run.writer.close()
    return {"best_epoch": run.best["epoch"], "best_val": run.best["metrics"], "last_val": run.last_val,
            "epochs_run": epoch - run.start_epoch + 1, "last_epoch": epoch, "stopped_early": stopped,
            "patience": config.patience, "train_samples_per_sec": run.samples_per_sec}
