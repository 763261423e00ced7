"""Span helpers. Formats are named: ``xx`` = (start, end); grid spans are (start, end_exclusive).

>>> round(float(iou_xx(np.array([0.0, 2.0]), np.array([1.0, 3.0]))), 4)
0.3333
"""

from __future__ import annotations

import numpy as np
import torch


def iou_xx(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Temporal IoU of (start, end) spans, broadcasting over leading dimensions.

    Args:
        a, b: [..., 2] spans in the same unit (seconds or grid frames).

    Returns:
        [...] IoU in [0, 1] (0 for disjoint spans and for empty spans).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    inter = np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0])
    union = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 0], b[..., 0])
    inter = np.clip(inter, 0.0, None)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def grid_to_sec(start_idx: float, end_idx_excl: float, duration_sec: float, n_frames: int) -> tuple[float, float]:
    """Grid span (start, exclusive end) on an N-frame grid -> seconds."""
    return start_idx / n_frames * duration_sec, end_idx_excl / n_frames * duration_sec


def decode_spans(start_prob: torch.Tensor, end_prob: torch.Tensor, top_k: int = 5,
                 nms_iou: float = 0.5, max_len: int | None = None) -> list[list[tuple[int, int, float]]]:
    """Best spans from boundary distributions, with end >= start guaranteed.

    The joint score is p_s(i) * p_e(j) for j >= i (method-notes 2.10); the top-1 span is its
    argmax, and further spans are taken greedily, skipping any whose IoU with an already kept
    span exceeds ``nms_iou``.

    Args:
        start_prob, end_prob: [B, N] probabilities over the video grid.
        top_k: spans per item.
        nms_iou: suppression threshold for spans after the first.
        max_len: longest span in frames (None: no limit, as the paper).

    Returns:
        per item, a list of (start_idx, end_idx_exclusive, score), best first.
    """
    if start_prob.shape != end_prob.shape or start_prob.dim() != 2:
        raise ValueError(f"expected two [B, N] tensors, found {tuple(start_prob.shape)} and {tuple(end_prob.shape)}")
    n = start_prob.shape[1]
    joint = start_prob.detach().float()[:, :, None] * end_prob.detach().float()[:, None, :]  # [B, N, N]
    valid = torch.ones(n, n, dtype=torch.bool, device=joint.device).triu()
    if max_len is not None:
        valid &= ~torch.ones(n, n, dtype=torch.bool, device=joint.device).triu(diagonal=max_len)
    joint = joint.masked_fill(~valid, -1.0).flatten(1).cpu()
    n_candidates = min(joint.shape[1], max(top_k * 20, 50))
    scores, flat = joint.topk(n_candidates, dim=1)
    out = []
    for row_scores, row_flat in zip(scores.tolist(), flat.tolist()):
        kept: list[tuple[int, int, float]] = []
        for score, index in zip(row_scores, row_flat):
            if score < 0:
                break
            span = (index // n, index % n + 1)
            if kept and np.max(iou_xx(np.array([k[:2] for k in kept], float), np.array(span, float))) > nms_iou:
                continue
            kept.append((span[0], span[1], float(score)))
            if len(kept) == top_k:
                break
        out.append(kept)
    return out
