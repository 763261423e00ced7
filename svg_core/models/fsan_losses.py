"""FSAN's segment scores, losses and negative captions (pure functions, tested against brute-force
loops and hand-made inputs). Used by ``svg_core.models.fsan``; see its docstring for the paper and
the three seed-systems fixes. Shapes: B batch, T_q query tokens, N clips.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from svg_core.models.text import tokenize

# ---------------------------------------------------------------------------------------------
# Segment scores (pure functions, tested against a brute-force loop)
# ---------------------------------------------------------------------------------------------


def segment_cells(v_mask: torch.Tensor) -> torch.Tensor:
    """Valid segments: bool [B, N, N], True at (start, end inclusive) with start <= end < n_valid."""
    n = v_mask.shape[1]
    upper = torch.ones(n, n, dtype=torch.bool, device=v_mask.device).triu()
    return upper.unsqueeze(0) & v_mask.unsqueeze(1) & v_mask.unsqueeze(2)


def segment_lengths(n: int, device: torch.device) -> torch.Tensor:
    """e - s + 1 at (start s, end e), int64 [N, N] (<= 0 below the diagonal, where end < start)."""
    idx = torch.arange(n, device=device)
    return idx.unsqueeze(0) - idx.unsqueeze(1) + 1


def _span_sums(col: torch.Tensor) -> torch.Tensor:
    """Sum of ``col`` [B, N] over clips s..e for every (s, e): float [B, N, N] via prefix sums."""
    prefix = F.pad(col.cumsum(1), (1, 0))  # [B, N + 1], prefix[k] = sum_{j < k}
    return prefix[:, 1:].unsqueeze(1) - prefix[:, :-1].unsqueeze(2)  # [B, s, e] = prefix[e + 1] - prefix[s]


def span_means(inside_col: torch.Tensor, outside_col: torch.Tensor, v_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``inside_col`` over j in [s, e] and of ``outside_col`` over valid j outside it.

    Args:
        inside_col, outside_col: float [B, N] per-clip values; v_mask: bool [B, N].

    Returns:
        (inside [B, N, N], outside [B, N, N]); outside is 0 where no valid clip lies outside.
    """
    keep = v_mask.to(inside_col.dtype)
    length = segment_lengths(v_mask.shape[1], v_mask.device).clamp_min(1).to(inside_col.dtype)
    inside = _span_sums(inside_col * keep) / length
    n_out = keep.sum(1).view(-1, 1, 1) - length
    out_sum = (outside_col * keep).sum(1).view(-1, 1, 1) - _span_sums(outside_col * keep)
    outside = torch.where(n_out > 0, out_sum / n_out.clamp_min(1), torch.zeros_like(out_sum))
    return inside, outside


def token_stats(p: torch.Tensor, q_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per clip: mean over valid tokens of P and min over valid tokens of P.

    Args:
        p: float [B, T_q, N] in (0, 1); q_mask: bool [B, T_q] (at least one True per row).

    Returns:
        (col_mean [B, N], col_min [B, N]).
    """
    m = q_mask.unsqueeze(-1).to(p.dtype)
    col_mean = (p * m).sum(1) / m.sum(1).clamp_min(1)
    col_min = p.masked_fill(~q_mask.unsqueeze(-1), float("inf")).amin(1)
    return col_mean, col_min


def segment_scores(p: torch.Tensor, q_mask: torch.Tensor, v_mask: torch.Tensor,
                   empty_outside: str = "video_mean", outside_stat: str = "min") -> torch.Tensor:
    """SC(s, e) = mean_{i, j in [s, e]} P_ij - mean_{j not in [s, e]} min_i P_ij, all segments.

    The whole video has no clip outside it. As written (``empty_outside="zero"``) its second term
    is 0 while every other segment subtracts a positive mean (P lies in (0, 1)), so a flat map
    scores the whole video highest and weak training settles there (the blind whole-video answer).
    Our fix (``"video_mean"``, the default): an empty outside is replaced by the video's mean of
    min_i P_ij, so a flat map scores every segment alike and only a contrast inside wins.

    Args:
        p: float [B, T_q, N] alignment map in (0, 1); q_mask: bool [B, T_q]; v_mask: bool [B, N];
        empty_outside: ``"video_mean"`` or ``"zero"`` (the paper's equation taken literally).
        outside_stat: per-clip statistic of the outside term, ``"min"`` over tokens (the paper) or
            ``"mean"`` over tokens (the inside term's own statistic: leaving a well-aligned clip
            out of the segment then costs as much as putting a poorly aligned one in).

    Returns:
        float [B, N, N] indexed (start, end inclusive); only ``segment_cells`` are meaningful.
    """
    if empty_outside not in ("video_mean", "zero"):
        raise ValueError(f"empty_outside must be video_mean or zero, found {empty_outside!r}")
    if outside_stat not in ("min", "mean"):
        raise ValueError(f"outside_stat must be min or mean, found {outside_stat!r}")
    col_mean, col_min = token_stats(p, q_mask)
    if outside_stat == "mean":
        col_min = col_mean
    inside, outside = span_means(col_mean, col_min, v_mask)
    if empty_outside == "video_mean":
        keep = v_mask.to(p.dtype)
        n_valid = keep.sum(1).view(-1, 1, 1)  # [B, 1, 1]
        baseline = ((col_min * keep).sum(1) / keep.sum(1).clamp_min(1)).view(-1, 1, 1)  # [B, 1, 1]
        length = segment_lengths(p.shape[2], p.device).to(p.dtype)
        outside = torch.where(length.unsqueeze(0) >= n_valid, baseline.expand_as(outside), outside)
    return inside - outside


def best_segment_score(sc: torch.Tensor, v_mask: torch.Tensor) -> torch.Tensor:
    """S(V, S): the best SC over the valid segments, float [B]; sc [B, N, N], v_mask bool [B, N]."""
    return sc.masked_fill(~segment_cells(v_mask), float("-inf")).flatten(1).amax(1)


def swapped_captions(sentences: list[str], video_ids: list[str], seed: int) -> tuple[list[str], list[bool]]:
    """Each caption with one word replaced by the word at the same position of another video's
    caption in the batch (same position: a rough stand-in for the same part of speech, so that the
    swap is not told apart by grammar alone). Deterministic: a generator seeded by ``seed``.

    Returns:
        (swapped captions, valid): valid False where no other video's caption offers a different
        word at any position (the caption is returned unchanged).
    """
    gen = torch.Generator().manual_seed(seed)
    words = [tokenize(x) for x in sentences]
    out, valid = [], []
    for i, w in enumerate(words):
        options = [(k, words[j][k]) for j in range(len(words)) if video_ids[j] != video_ids[i]
                   for k in range(min(len(w), len(words[j]))) if words[j][k] != w[k] and words[j][k] not in w]
        if not options:
            out.append(sentences[i])
            valid.append(False)
            continue
        k, new = options[int(torch.randint(len(options), (1,), generator=gen))]
        out.append(" ".join([*w[:k], new, *w[k + 1:]]))
        valid.append(True)
    return out, valid


# ---------------------------------------------------------------------------------------------
# Losses (pure functions, tested on hand-made inputs)
# ---------------------------------------------------------------------------------------------


def triplet_loss(best_pos: torch.Tensor, best_neg: torch.Tensor, valid: torch.Tensor, margin: float) -> torch.Tensor:
    """L_t = max(0, delta - S(V, S) + S(V, S-)), mean over items with a negative.

    Args:
        best_pos, best_neg: float [B], best segment score of the matched / negative query.
        valid: bool [B]; margin: delta.
    """
    loss = F.relu(margin - best_pos + best_neg) * valid.to(best_pos.dtype)
    return loss.sum() / valid.sum().clamp_min(1)


def sibling_loss(sc: torch.Tensor, sc_sib: torch.Tensor, v_mask: torch.Tensor, valid: torch.Tensor,
                 margin: float) -> torch.Tensor:
    """Two captions of one video, each at the other's best segment (chosen on detached scores):
    max(0, delta - SC(seg) + SC_sib(seg)) at the caption's best segment, plus the same with the
    roles swapped at the sibling's best segment; mean over items with a sibling.

    Args:
        sc, sc_sib: float [B, N, N] segment scores of the caption and of its sibling on the video;
        v_mask: bool [B, N]; valid: bool [B]; margin: delta.
    """
    cells = segment_cells(v_mask)
    b = sc.shape[0]

    def at_best(chooser: torch.Tensor, *read: torch.Tensor) -> list[torch.Tensor]:
        idx = chooser.detach().masked_fill(~cells, float("-inf")).flatten(1).argmax(1, keepdim=True)
        return [x.reshape(b, -1).gather(1, idx).squeeze(1) for x in read]

    own, sib = at_best(sc, sc, sc_sib)
    sib_own, own_there = at_best(sc_sib, sc_sib, sc)
    return triplet_loss(own, sib, valid, margin) + triplet_loss(sib_own, own_there, valid, margin)


def inside_outside_losses(p: torch.Tensor, q_mask: torch.Tensor, v_mask: torch.Tensor, sc: torch.Tensor,
                          eps: float = 1e-6, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """L_i (Eq. 9-10) and L_o (Eq. 11-12), weighted by w = softmax over valid segments of the
    detached SC / ``temperature`` (the paper gives none: at 1, SC in [-1, 1] over ~N^2 / 2 segments
    gives nearly uniform weights, so both losses act on every segment alike).

    L_i = sum_seg w(s, e) * -(1 / N_s) sum_i sigmoid(sum_{j in [s, e]} P_ij) (rewards alignment inside);
    L_o = sum_seg w(s, e) * mean_{j not in [s, e]} -log(1 - min_i P_ij) (penalises it outside; the
    paper writes -log(min P), which would raise it: our fix, with P in (0, 1) before the log).

    Args:
        p: float [B, T_q, N] in (0, 1); q_mask: bool [B, T_q]; v_mask: bool [B, N];
        sc: float [B, N, N] segment scores (detached here); temperature: > 0.

    Returns:
        (L_i, L_o), scalars averaged over the batch (L_i lies in [-1, 0]).
    """
    p = p.clamp(eps, 1 - eps)
    cells = segment_cells(v_mask)
    b = p.shape[0]
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, found {temperature}")
    w = (sc.detach() / temperature).masked_fill(~cells, float("-inf")).reshape(b, -1).softmax(1).reshape_as(sc)
    prefix = F.pad(p.cumsum(2), (1, 0))  # [B, T_q, N + 1] per token
    sums = prefix[:, :, 1:].unsqueeze(2) - prefix[:, :, :-1].unsqueeze(3)  # [B, T_q, s, e] = sum_{j in [s, e]} P_ij
    m = q_mask.to(p.dtype)[:, :, None, None]
    inner = -(torch.sigmoid(sums) * m).sum(1) / m.sum(1).clamp_min(1)  # [B, N, N]
    col_min = p.masked_fill(~q_mask.unsqueeze(-1), 1.0).amin(1)
    _, outer = span_means(col_min, -torch.log1p(-col_min), v_mask)
    return (w * inner).sum((1, 2)).mean(), (w * outer).sum((1, 2)).mean()


def bag_of_words_nll(logits: torch.Tensor, step_mask: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-log of each caption word's probability under the mixture of the query steps' predictions
    (uniform over valid steps), mean over the known words of the batch: the speech case of FSAN's word
    reconstruction, where no step is known to say which word.

    Args:
        logits: float [B, T_q, V] per-step word logits; step_mask: bool [B, T_q];
        targets: int64 [B, W] word ids, -100 where there is none.

    Returns:
        a scalar (0 when no target is known).
    """
    logp = logits.log_softmax(-1)  # [B, T_q, V]
    known = targets >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0
    picked = logp.gather(2, targets.clamp_min(0).unsqueeze(1).expand(-1, logp.shape[1], -1))  # [B, T_q, W]
    steps = step_mask.sum(1).clamp_min(1).to(logp.dtype)  # [B]
    mix = torch.logsumexp(picked.masked_fill(~step_mask.unsqueeze(-1), float("-inf")), 1) - torch.log(steps).unsqueeze(1)
    return -(mix * known).sum() / known.sum()
