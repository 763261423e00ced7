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


def decode_proposals(scores: torch.Tensor, mask: torch.Tensor, top_k: int = 5,
                     nms_iou: float = 0.45) -> list[list[tuple[int, int, float]]]:
    """Best spans from a 2D proposal map (SIL): cell (s, e) is the grid span (s, e + 1).

    The top-1 span is the highest-scoring proposal cell (paper: "select the proposal with the
    highest score"); further spans are taken greedily, skipping any whose IoU with an already
    kept span exceeds ``nms_iou`` (0.45 in the SIL paper; standard greedy NMS against every kept
    span, not only the last one as the released code does).

    Args:
        scores: [B, N, N] proposal scores (start, end inclusive).
        mask: bool [B, N, N] or [N, N], True at proposal cells.
        top_k: spans per item.
        nms_iou: suppression threshold.

    Returns:
        per item, a list of (start_idx, end_idx_exclusive, score), best first.

    >>> s = torch.zeros(1, 4, 4); s[0, 1, 2], s[0, 1, 1], s[0, 3, 3] = 0.9, 0.8, 0.5
    >>> [span[:2] for span in decode_proposals(s, torch.ones(4, 4, dtype=torch.bool).triu(), top_k=2)[0]]
    [(1, 3), (3, 4)]
    """
    if scores.dim() != 3 or scores.shape[1] != scores.shape[2]:
        raise ValueError(f"expected a [B, N, N] proposal map, found {tuple(scores.shape)}")
    n = scores.shape[1]
    mask = mask.expand_as(scores).to(scores.device)
    flat = scores.detach().float().masked_fill(~mask, -1.0).flatten(1).cpu()
    values, index = flat.topk(min(flat.shape[1], max(top_k * 20, 50)), dim=1)
    out = []
    for row_scores, row_index in zip(values.tolist(), index.tolist()):
        kept: list[tuple[int, int, float]] = []
        for score, cell in zip(row_scores, row_index):
            if score < 0:
                break
            span = (cell // n, cell % n + 1)
            if kept and np.max(iou_xx(np.array([k[:2] for k in kept], float), np.array(span, float))) > nms_iou:
                continue
            kept.append((span[0], span[1], float(score)))
            if len(kept) == top_k:
                break
        out.append(kept)
    return out
