"""Run a grounding model over a dataset split and produce prediction records.

The records follow the predictions-jsonl format of docs/ARCHITECTURE.md and are what
``svg_core.evaluate.compute_metrics`` scores::

    {"query_id", "video_id", "duration_sec", "gt_window_sec": [s, e],
     "pred_windows_sec": [[s, e, score], ...]}     # best first, seconds
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from svg_core.data.dataset import collate_batch
from svg_core.engine.spans import decode_proposals, decode_spans, grid_to_sec


def move_batch(batch: dict, device: torch.device | str) -> dict:
    """Copy the tensors of a batch dict to ``device`` (lists of strings stay as they are)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def records_from_output(out: dict, batch: dict, top_k: int = 5) -> list[dict]:
    """Turn one model output into prediction records (seconds).

    Args:
        out: model output with ``start_prob`` and ``end_prob`` [B, N_v], or (SIL) a proposal
            map ``proposal_scores`` [B, N_v, N_v] with ``proposal_mask``, decoded instead.
        batch: the batch it came from (``query_id``, ``video_id``, ``duration_sec``,
            ``start_sec``, ``end_sec``).
        top_k: windows kept per query.

    Returns:
        B records, in batch order.
    """
    n_frames = out["start_prob"].shape[1]
    if "proposal_scores" in out:  # weakly supervised SIL: best (start, end) cells, NMS 0.45
        spans = decode_proposals(out["proposal_scores"], out["proposal_mask"], top_k=top_k)
    else:
        spans = decode_spans(out["start_prob"], out["end_prob"], top_k=top_k)
    durations = batch["duration_sec"].tolist()
    starts = batch["start_sec"].tolist()
    ends = batch["end_sec"].tolist()
    records = []
    for i, item_spans in enumerate(spans):
        windows = []
        for s_idx, e_idx, score in item_spans:
            s_sec, e_sec = grid_to_sec(s_idx, e_idx, durations[i], n_frames)
            windows.append([s_sec, e_sec, score])
        records.append({
            "query_id": batch["query_id"][i],
            "video_id": batch["video_id"][i],
            "duration_sec": durations[i],
            "gt_window_sec": [starts[i], ends[i]],
            "pred_windows_sec": windows,
        })
    return records


@torch.no_grad()
def predict_split(model: nn.Module, dataset: Dataset, batch_size: int = 32, top_k: int = 5,
                  num_workers: int = 0, progress: bool = True) -> list[dict]:
    """Predict every item of ``dataset`` with ``model`` (eval mode, no gradients).

    Batching does not change the predictions: the models mask padded audio frames, and BN
    layers use their running statistics in eval mode. The model's train/eval mode is restored
    afterwards.

    Args:
        model: a grounding model (``model(batch) -> dict`` with ``start_prob``/``end_prob``).
        dataset: a ``GroundingDataset`` (or anything whose items ``collate_batch`` takes).
        batch_size: items per forward pass.
        top_k: windows kept per query.
        num_workers: DataLoader workers.
        progress: show a tqdm bar.

    Returns:
        one prediction record per item, in dataset order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, found {batch_size}")
    was_training = model.training
    model.eval()
    device = model_device(model)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_batch)
    records: list[dict] = []
    try:
        for batch in tqdm(loader, desc="predict", unit="batch", disable=not progress, leave=False):
            out = model(move_batch(batch, device))
            records.extend(records_from_output(out, batch, top_k=top_k))
    finally:
        model.train(was_training)
    return records
