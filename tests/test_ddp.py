"""Two-process DistributedDataParallel training (gloo, CPU) against the same run in one process.

The test starts two processes with the environment ``torchrun`` gives its workers (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) by forking this process, which saves re-importing
torch on a 2-core box; ``python -m torch.distributed.run --standalone --nproc_per_node 2
tests/test_ddp.py DATA OUT`` runs the same :func:`_worker` through torchrun itself. With the global batch split over the processes and one interleaved sampler
permutation, the two runs see the same items at every step; they differ only in BatchNorm
statistics (per-process batches of 2 instead of 4) and float summation order.
"""

from __future__ import annotations

import csv
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # two forked training processes
EPOCHS, BATCH, LR, SEED = 2, 4, 2e-3, 3


def _task(data_dir: Path):
    from svg_core.data.dataset import DatasetLayout, GroundingDataset
    from svg_core.models import build_model
    from svg_core.engine.training import GroundingTask
    from tests.fixtures_build import tiny_base_config

    layout = DatasetLayout.from_dir(data_dir)
    torch.manual_seed(SEED)
    cfg = tiny_base_config()
    return GroundingTask(build_model(cfg), cfg, GroundingDataset(layout, "train", seed=SEED),
                         GroundingDataset(layout, "val", seed=SEED + 1), 8, False)


def _fit(data_dir: Path, out: Path, env=None) -> dict:
    from svg_core.engine.loop import DistEnv, FitConfig, fit

    config = FitConfig(out_dir=out, epochs=EPOCHS, batch_size=BATCH, lr=LR, seed=SEED, log_every=1, progress=False)
    return fit(_task(data_dir), config, env or DistEnv())


def _worker(data_dir: str, out: str) -> None:
    """Entry point of each process (torchrun's environment variables already set)."""
    import torch.distributed as dist

    from svg_core.engine.loop import init_distributed

    torch.set_num_threads(1)
    env = init_distributed("cpu")
    assert env.world_size == 2 and dist.get_backend() == "gloo"
    try:
        _fit(Path(data_dir), Path(out), env)
    finally:
        dist.destroy_process_group()


def _forked_worker(rank: int, port: int, data_dir: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    _worker(data_dir, out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rows(out: Path, name: str) -> list[dict]:
    with open(out / name, newline="") as f:
        return list(csv.DictReader(f))


def test_two_process_gloo_run_matches_one_process(tmp_path):
    from svg_core.engine.checkpoint import load_state_dict_file
    from tests.fixtures_build import make_tiny_dataset

    data_dir = make_tiny_dataset(tmp_path / "data", n_videos=4, queries_per_video=2, seed=1)
    torch.set_num_threads(1)
    _fit(data_dir, tmp_path / "single")
    init = _task(data_dir).model.state_dict()
    # fork: the children inherit the imported modules; join raises if a worker fails
    mp.start_processes(_forked_worker, args=(_free_port(), str(data_dir), str(tmp_path / "ddp")),
                       nprocs=2, join=True, start_method="fork")

    # the same updates: every step's training loss agrees closely (BN batches differ: 2 vs 4 items)
    ddp_steps, one_steps = _rows(tmp_path / "ddp", "steps.csv"), _rows(tmp_path / "single", "steps.csv")
    assert [r["step"] for r in ddp_steps] == [r["step"] for r in one_steps] == [str(s) for s in range(1, 2 * EPOCHS + 1)]
    for a, b in zip(ddp_steps, one_steps):
        assert abs(float(a["loss"]) - float(b["loss"])) < 0.02 * float(b["loss"]), (a, b)
    # validation metrics within noise: 8 queries, so one query moves R@1 by 12.5 points
    ddp_val, one_val = _rows(tmp_path / "ddp", "log.csv")[-1], _rows(tmp_path / "single", "log.csv")[-1]
    assert abs(float(ddp_val["val_mIoU"]) - float(one_val["val_mIoU"])) < 15.0
    assert abs(float(ddp_val["val_R1@0.3"]) - float(one_val["val_R1@0.3"])) <= 25.0
    # both runs moved the weights the same way: they end closer to each other than to the start
    ddp_w = load_state_dict_file(tmp_path / "ddp" / "last" / "model.safetensors")
    one_w = load_state_dict_file(tmp_path / "single" / "last" / "model.safetensors")
    assert ddp_w.keys() == one_w.keys()
    moved = sum(float((one_w[k].float() - init[k].float()).abs().sum()) for k in one_w)
    gap = sum(float((one_w[k].float() - ddp_w[k].float()).abs().sum()) for k in one_w)
    assert gap < moved, (gap, moved)


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
