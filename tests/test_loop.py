"""The generic training loop's steps: early stopping, no per-step host sync, DDP-averaged logs."""

from __future__ import annotations

import csv
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from svg_core.engine import loop
from svg_core.engine.loop import DistEnv, FitConfig, fit


class _Points(Dataset):
    """``n`` items of a fixed linear problem; ``set_epoch`` is what the loop asks of a dataset."""

    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "query_id": f"q{i}"}


@dataclass
class _LineTask:
    """A linear regression with a scripted validation score per epoch (the loop is the subject)."""

    n_items: int = 8
    val_scores: list = field(default_factory=lambda: [1.0] * 50)
    model: nn.Module = field(default_factory=lambda: nn.Linear(4, 1))
    cfg: object = None
    evaluated: int = 0

    def __post_init__(self):
        self.train_set = _Points(self.n_items)

    def collate(self, items):
        return {"x": torch.stack([i["x"] for i in items]), "y": torch.stack([i["y"] for i in items]),
                "query_id": [i["query_id"] for i in items]}

    def move(self, batch, device):
        return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def compute_loss(self, model, batch, step, total_steps):
        err = model(batch["x"]).squeeze(-1) - batch["y"]
        return (err**2).mean(), {"abs_err": err.abs().mean().detach()}

    def evaluate(self, model):
        self.evaluated += 1
        return {"score": float(self.val_scores[self.evaluated - 1])}

    def score(self, metrics):
        return (metrics["score"],)


@pytest.fixture(autouse=True)
def _no_checkpoint_files(monkeypatch):
    """The loop's checkpoint writer needs a model-family config; these tests only count epochs."""
    monkeypatch.setattr(loop, "save_checkpoint", lambda *a, **k: None)


def _config(tmp_path: Path, **kw) -> FitConfig:
    return FitConfig(out_dir=tmp_path, **{"epochs": 20, "batch_size": 4, "progress": False, **kw})


def test_early_stopping_stops_on_a_plateau_and_records_the_epochs(tmp_path):
    # val improves for 3 epochs, then stays flat: with patience 2 the run stops after epoch 5
    task = _LineTask(val_scores=[0.1, 0.2, 0.3] + [0.3] * 20)
    summary = fit(task, _config(tmp_path, patience=2), DistEnv())
    assert (summary["best_epoch"], summary["last_epoch"], summary["stopped_early"]) == (3, 5, True)
    assert summary["epochs_run"] == 5 and task.evaluated == 5
    with open(tmp_path / "log.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3", "4", "5"]


def test_min_epochs_holds_early_stopping_off_through_an_early_plateau(tmp_path):
    # flat for 4 epochs (the video prior), then better: patience 2 alone would stop after epoch 3
    task = _LineTask(val_scores=[0.3] * 4 + [0.5, 0.6] + [0.6] * 20)
    summary = fit(task, _config(tmp_path, patience=2, min_epochs=5), DistEnv())
    assert (summary["best_epoch"], summary["last_epoch"], summary["stopped_early"]) == (6, 8, True)
    with pytest.raises(ValueError, match="--min-epochs must be >= 0"):
        fit(_LineTask(val_scores=[0.5]), _config(tmp_path / "neg", patience=1, min_epochs=-1), DistEnv())


def test_without_patience_every_epoch_runs(tmp_path):
    summary = fit(_LineTask(), _config(tmp_path, epochs=4), DistEnv())
    assert (summary["last_epoch"], summary["stopped_early"], summary["best_epoch"]) == (4, False, 1)


def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path):
    fit(_LineTask(val_scores=[0.5] * 20), _config(tmp_path, patience=1), DistEnv())
    resumed = fit(_LineTask(val_scores=[0.9] * 20), _config(tmp_path, patience=1, resume=True), DistEnv())
    assert (resumed["epochs_run"], resumed["stopped_early"], resumed["last_epoch"]) == (0, True, 2)


def test_patience_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--patience must be >= 1"):
        fit(_LineTask(), _config(tmp_path, patience=0), DistEnv())


def _count_loop_syncs(task, tmp_path, **kw) -> int:
    """Reads of tensor values (item, float, bool, tolist) made by loop.py itself during fit."""
    calls = {"n": 0}
    loop_file = loop.__file__
    with pytest.MonkeyPatch.context() as patch:
        for name in ("item", "__float__", "__bool__", "tolist"):
            original = getattr(torch.Tensor, name)

            def counted(self, *a, _original=original, **k):
                if sys._getframe(1).f_code.co_filename == loop_file:
                    calls["n"] += 1
                return _original(self, *a, **k)

            patch.setattr(torch.Tensor, name, counted)
        fit(task, _config(tmp_path, **kw), DistEnv())
    return calls["n"]


def test_no_host_sync_per_step(tmp_path):
    # 2 steps or 16 steps in the epoch, logged once at the end: the loop reads tensors equally often
    few = _count_loop_syncs(_LineTask(n_items=8), tmp_path / "few", epochs=1, log_every=1000)
    many = _count_loop_syncs(_LineTask(n_items=64), tmp_path / "many", epochs=1, log_every=1000)
    assert few == many and few > 0
    # logging every step costs one read per step
    every = _count_loop_syncs(_LineTask(n_items=64), tmp_path / "every", epochs=1, log_every=1)
    assert every == many + 15


def _reduce_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        env = DistEnv(rank=rank, world_size=2)
        sums: dict = {}
        # rank 0 saw losses 1, 3; rank 1 saw 5, 7 (and a part only rank 1 logged twice)
        for value in ((1.0, 3.0) if rank == 0 else (5.0, 7.0)):
            loop._add_parts(sums, {"loss": torch.tensor(value), "stage": 2.0}, torch.device("cpu"))
        means = loop._mean_over_ranks(sums, env)
        Path(out, f"rank{rank}.txt").write_text(f"{means['loss']} {means['stage']}")
    finally:
        dist.destroy_process_group()


def test_logged_means_are_all_reduced_across_ranks(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_reduce_worker, args=(port, str(tmp_path)), nprocs=2, join=True, start_method="fork")
    # both ranks log the mean over all four steps of both processes, not their own half
    assert (tmp_path / "rank0.txt").read_text() == (tmp_path / "rank1.txt").read_text() == "4.0 2.0"
