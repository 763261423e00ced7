"""AVLnet training: (spoken query, its moment's clips) pairs of the train split.

Selected by ``svg_core.engine.training`` (``python -m svg_core.train``)::

    python -m svg_core.train --model avlnet --data DIR --out runs/avlnet
    # ablations (paper Table 2/3): projection and loss
    python -m svg_core.train --model avlnet --data DIR --set projection=linear --out runs/avlnet_linear
    python -m svg_core.train --model avlnet --data DIR --set loss=infonce --out runs/avlnet_infonce
    # the variant on the pre-trained speech front-end (frozen Whisper base encoder, cached features)
    python -m svg_core.train --model avlnet --data DIR --set audio_frontend=whisper_base --out runs/avlnet_whisper

A batch holds B queries; a query's negatives are the other moments of the batch (from its own
video and others) and its own video's clips outside the moment (``same_video_negatives``).
Validation: query -> moment retrieval over all val moments (R@1/5/10, median rank); the best
epoch is chosen on val R@10 then R@1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from svg_core.data.dataset import DatasetLayout, GroundingDataset, collate_batch
from svg_core.engine.checkpoint import unwrap_model
from svg_core.engine.inference import model_device, move_batch
from svg_core.engine.metrics import retrieval_metrics
from svg_core.models import AVLnetConfig, build_model


@torch.no_grad()
def embed_split(model: nn.Module, dataset: GroundingDataset, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Query and moment embeddings of every item of a split.

    Returns:
        (audio float32 [N, E], moments float32 [N, E]), rows in dataset order.
    """
    bare = unwrap_model(model)
    was_training = bare.training
    bare.eval()
    audio, moments = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch):
        out = bare(move_batch(batch, model_device(bare)))
        audio.append(out["audio_emb"].float().cpu().numpy())
        moments.append(out["moment_emb"].float().cpu().numpy())
    bare.train(was_training)
    return np.concatenate(audio), np.concatenate(moments)


def moment_ranks(audio_emb: np.ndarray, moment_emb: np.ndarray) -> list[int]:
    """1-based rank of each query's own moment among all moments (ties count against it).

    Args:
        audio_emb: float [N, E]; moment_emb: float [N, E], row i the moment of query i.
    """
    sim = audio_emb @ moment_emb.T  # [N, N]
    own = np.diag(sim)[:, None]
    return [int(r) for r in (sim > own).sum(1) + 1]


@dataclass
class AVLnetTask:
    """AVLnet on the grounding dataset: MMS loss; validation = A->V moment retrieval on val."""

    model: nn.Module
    cfg: AVLnetConfig
    train_set: GroundingDataset
    val_set: GroundingDataset
    eval_batch_size: int = 32
    progress: bool = True

    def collate(self, items: list[dict]) -> dict:
        return collate_batch(items)

    def move(self, batch: dict, device: torch.device) -> dict:
        return move_batch(batch, device)

    def compute_loss(self, model: nn.Module, batch: dict, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        out = model(batch)
        loss, logs = unwrap_model(model).loss(out, batch)
        return loss, {k: v for k, v in logs.items() if k != "loss"}

    def evaluate(self, model: nn.Module) -> dict:
        audio, moments = embed_split(model, self.val_set, self.eval_batch_size)
        metrics = retrieval_metrics(moment_ranks(audio, moments), ks=(1, 5, 10))
        metrics["n_queries"] = metrics.pop("n")
        return metrics

    def score(self, metrics: dict) -> tuple:
        return (metrics["R@10"], metrics["R@1"])


def build_avlnet_task(args: Any) -> AVLnetTask:
    """The task of ``--model avlnet`` (config from ``--preset`` and ``--set``)."""
    from svg_core.engine.run_data import make_datasets, parse_overrides  # the shared recipe parts

    if args.stage != "ground":
        raise ValueError("--model avlnet has no pre-training stage: drop --stage pretrain")
    if args.pretrained_encoder:
        raise ValueError("--model avlnet takes no --pretrained-encoder")
    DatasetLayout.from_dir(args.data)  # a clear error for a missing folder
    fields = parse_overrides(getattr(args, "overrides", []) or [], AVLnetConfig)
    cfg = (AVLnetConfig.small if args.preset == "small" else AVLnetConfig.paper)(**fields)
    train, val = make_datasets(args, with_audio=True, n_video_frames=cfg.n_video_frames,
                               audio_frontend=cfg.audio_frontend, frontend_pool=cfg.frontend_pool)
    torch.manual_seed(args.seed)
    return AVLnetTask(build_model(cfg), cfg, train, val, args.eval_batch_size, not args.no_progress)
