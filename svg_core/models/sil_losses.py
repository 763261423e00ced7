"""SIL's weak losses and negative sampling (pure functions, tested on hand-made inputs).

Used by ``svg_core.models.sil`` (see its docstring for where they follow the paper and where the
released code) and, for the negatives, by ``svg_core.models.fsan``. Shapes: B batch, K negatives
per pair, P flattened proposal cells, N clips.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def negative_sets(video_ids: list[str], step: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each item, the ``count`` nearest other items (walking by ``step``, cyclic), one per other video.

    Deterministic (no RNG): step +1 picks the negative videos, -1 the negative speeches. Items of
    the item's own video and of a video already taken are passed over.

    Returns:
        int64 [B, count] indices and bool [B, count], False where the batch holds fewer other
        videos (the index then points at the item itself and must be masked).
    """
    n = len(video_ids)
    index = [[i] * count for i in range(n)]
    valid = [[False] * count for _ in range(n)]
    for i in range(n):
        taken = {video_ids[i]}
        slot = 0
        for k in range(1, n):
            if slot == count:
                break
            j = (i + step * k) % n
            if video_ids[j] not in taken:
                taken.add(video_ids[j])
                index[i][slot], valid[i][slot] = j, True
                slot += 1
    return torch.tensor(index, dtype=torch.long).reshape(n, count), torch.tensor(valid, dtype=torch.bool).reshape(n, count)


def negative_indices(video_ids: list[str], step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each item, the nearest other item (walking by ``step``, cyclic) from another video.

    Returns:
        int64 [B] indices and bool [B], False where the batch holds no other video.
    """
    index, valid = negative_sets(video_ids, step, 1)
    return index[:, 0], valid[:, 0]


def top_r_mean(scores: torch.Tensor, mask: torch.Tensor, r: int) -> torch.Tensor:
    """f(K): mean of the top-R proposal scores (paper 3.2).

    Args:
        scores: float [B, P] in [0, 1] (flattened cells); mask: bool [B, P] proposal cells.
        r: R (20 in the paper); fewer cells -> all of them.

    Returns:
        float [B].
    """
    r = max(1, min(r, int(mask.sum(1).min())))
    return scores.masked_fill(~mask, -1.0).topk(r, dim=1).values.clamp_min(0.0).mean(1)


def _negative_term(f_neg: torch.Tensor, valid: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean over the valid negatives of -log(1 - f): f_neg float [B] or [B, K], valid the same. -> [B]."""
    f_neg, valid = (f_neg.unsqueeze(1), valid.unsqueeze(1)) if f_neg.dim() == 1 else (f_neg, valid)
    w = valid.to(f_neg.dtype)
    return (-torch.log((1 - f_neg).clamp_min(eps)) * w).sum(1) / w.sum(1).clamp_min(1)


def mil_loss(f_pos: torch.Tensor, f_neg_video: torch.Tensor, f_neg_speech: torch.Tensor | None,
             valid_video: torch.Tensor, valid_speech: torch.Tensor | None, eps: float = 1e-10) -> torch.Tensor:
    """L_base of Eq. 10: -log f(K) - log(1 - f(K_V')) - log f(K) - log(1 - f(K_S')), batch mean.

    With K negatives of a kind (``mil_negatives``; the paper: one), log(1 - f) is their mean.

    Args:
        f_pos: float [B], f(K) of the matched pairs; f_neg_video / f_neg_speech: float [B] or
            [B, K] of (V', S) and (V, S'), or ``f_neg_speech`` None (ablation: video negative only).
        valid_video, valid_speech: bool, shaped as the negatives; False where the batch had no
            negative (term dropped).

    Returns:
        the scalar loss (0 for a perfect ranking f_pos = 1, f_neg = 0).
    """
    pos = -torch.log(f_pos.clamp_min(eps))
    loss = pos + _negative_term(f_neg_video, valid_video, eps)
    if f_neg_speech is not None and valid_speech is not None:
        loss = loss + pos + _negative_term(f_neg_speech, valid_speech, eps)
    return loss.mean()


def mil_softmax_loss(f_pos: torch.Tensor, f_neg: list[torch.Tensor], valid: list[torch.Tensor],
                     temperature: float) -> torch.Tensor:
    """MIL as a classification of the matched pair among its negatives (not in the paper).

    For each kind of negative (video, speech): cross-entropy of the softmax over
    [f_pos, f_neg_1..K] / ``temperature`` with the matched pair as the target, as AVLnet's
    contrastive loss over a batch; invalid negatives are left out. Summed over kinds, batch mean.

    Args:
        f_pos: float [B]; f_neg: per kind float [B, K]; valid: per kind bool [B, K].

    Returns:
        the scalar loss; log(K + 1) per kind when every f is equal, towards 0 as f_pos - f_neg grows.
    """
    total = f_pos.new_zeros(())
    for neg, ok in zip(f_neg, valid):
        logits = torch.cat([f_pos.unsqueeze(1), neg.masked_fill(~ok, float("-inf"))], 1) / temperature
        total = total + (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
    return total


def diversity_loss(scores: torch.Tensor, mask: torch.Tensor, r: int) -> torch.Tensor:
    """L_div of Eq. 11: entropy of the softmax over the top-R proposal scores, batch mean.

    Args:
        scores: float [B, P]; mask: bool [B, P]; r: R.

    Returns:
        scalar; log R when the top-R scores are all equal, lower when they spread.
    """
    r = max(1, min(r, int(mask.sum(1).min())))
    top = scores.masked_fill(~mask, float("-inf")).topk(r, dim=1).values
    p = top.softmax(1)
    return -(p * torch.log(p.clamp_min(1e-12))).sum(1).mean()


def js_mi_loss(phi_pos: torch.Tensor, pos_mask: torch.Tensor, phi_neg: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """L_AVCL of Eq. 6 with the Jensen-Shannon estimator (Hjelm et al. 2018).

    L = E_N[softplus(phi) - log 2] - E_P[log 2 - softplus(-phi)], i.e. minus the JSD bound on
    the mutual information between the speech and its clips: 0 when phi = 0 everywhere, down
    to -2 log 2 as phi -> +inf on positives and -inf on negatives.

    Args:
        phi_pos, phi_neg: float [B, N] discriminator scores phi(S, v_i); pos_mask, neg_mask:
            bool [B, N] selected positive / negative clips.

    Returns:
        the scalar loss (means over the selected clips of the whole batch).
    """
    log2 = torch.log(torch.tensor(2.0, dtype=phi_pos.dtype, device=phi_pos.device))
    e_pos = ((log2 - F.softplus(-phi_pos)) * pos_mask).sum() / pos_mask.sum().clamp_min(1)
    e_neg = ((F.softplus(phi_neg) - log2) * neg_mask).sum() / neg_mask.sum().clamp_min(1)
    return e_neg - e_pos


def avcl_samples(clip_scores: torch.Tensor, inside: torch.Tensor, valid: torch.Tensor,
                 n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative clips of AVCL (paper 3.4: location-based selection + score mining).

    Positives: the ``n_samples`` highest-scoring clips inside the pseudo-moment. Negatives: the
    lowest-scoring clips outside it, then (when too few are outside) the lowest-scoring inside
    clips that are not positives. The two sets never overlap.

    Args:
        clip_scores: float [B, N] (detached); inside: bool [B, N], the top proposal's clips;
        valid: bool [B, N] valid clips; n_samples: T (12 in the paper).

    Returns:
        (positives, negatives), bool [B, N] each.
    """
    n = clip_scores.shape[1]
    t = max(1, min(n_samples, n // 2))
    inside = inside & valid
    big = 1e4
    pos_rank = torch.where(inside, clip_scores, -big).argsort(1, descending=True).argsort(1)
    pos = (pos_rank < inside.sum(1).clamp(max=t).unsqueeze(1)) & inside
    # outside clips first (by low score), then inside non-positives, never positives or padding
    key = torch.where(inside, clip_scores + big, clip_scores).masked_fill(pos | ~valid, 4 * big)
    neg_rank = key.argsort(1).argsort(1)
    neg = (neg_rank < t) & ~pos & valid
    return pos, neg
