"""Regression: the released CPC loss (method-notes 3.5, 6.10) normalised over contexts instead of
candidate targets, summed over the batch, and predicted from one context per utterance."""

from __future__ import annotations

import torch
from torch import nn

from svg_core.models.cpc import info_nce_loss


def _hand_loss(z, c, lengths, predictors):
    """Eq. (6) written out: for every context (b, t) and step k with t + k valid,
    -log exp(z_{b,t+k} . W_k c_t) / sum_j exp(z_j . W_k c_t) over all valid z_j; mean per k, mean over k."""
    candidates = [(b, t) for b in range(z.shape[0]) for t in range(int(lengths[b]))]
    per_k = []
    for k, w in enumerate(predictors, start=1):
        terms = []
        for b, t in candidates:
            if t + k >= int(lengths[b]):
                continue
            pred = w(c[b, t])
            scores = torch.stack([z[bb, tt] @ pred for bb, tt in candidates])
            positive = candidates.index((b, t + k))
            terms.append(-(scores[positive] - torch.logsumexp(scores, 0)))
        per_k.append(torch.stack(terms).mean())
    return torch.stack(per_k).mean()


def _released_loss(z, c, predictors):
    """The released code: one context at T' - K - 1, B x B logits, log-softmax over dim 1
    (over contexts for a fixed target), summed over the batch."""
    k_max = len(predictors)
    t = z.shape[1] - k_max - 1
    total = 0.0
    for k, w in enumerate(predictors, start=1):
        logits = z[:, t + k] @ w(c[:, t]).T  # rows: targets, columns: predictions
        total = total + torch.log_softmax(logits, dim=1).diagonal().sum()
    return -total / k_max


def test_loss_matches_eq6_over_targets_with_every_context():
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(3, 9, 4, generator=g), torch.randn(3, 9, 5, generator=g)
    lengths = torch.tensor([9, 6, 2])
    torch.manual_seed(0)
    predictors = nn.ModuleList(nn.Linear(5, 4) for _ in range(3))
    loss, logs = info_nce_loss(z, c, lengths, predictors)
    torch.testing.assert_close(loss, _hand_loss(z, c, lengths, predictors))
    assert set(logs) == {f"cpc_{m}_k{k}" for m in ("loss", "acc") for k in (1, 2, 3)}


def test_loss_is_a_mean_not_a_batch_sum():
    g = torch.Generator().manual_seed(1)
    z, c = torch.randn(2, 8, 4, generator=g), torch.randn(2, 8, 4, generator=g)
    predictors = nn.ModuleList(nn.Linear(4, 4) for _ in range(3)).requires_grad_(False)
    small, _ = info_nce_loss(z, c, torch.tensor([8, 8]), predictors)
    big, _ = info_nce_loss(z.repeat(8, 1, 1), c.repeat(8, 1, 1), torch.tensor([8] * 16), predictors)
    # 8 copies: each positive now ties with 7 duplicates, so the loss grows by at most log 8 (a mean),
    # whereas the released batch sum grows about 8x.
    assert float(big) <= float(small) + float(torch.log(torch.tensor(8.0))) + 1e-4
    released_small, released_big = _released_loss(z, c, predictors), _released_loss(z.repeat(8, 1, 1), c.repeat(8, 1, 1), predictors)
    assert float(released_big) > 4 * float(released_small)


def test_padding_is_never_a_candidate_or_a_context():
    g = torch.Generator().manual_seed(2)
    z, c = torch.randn(2, 10, 4, generator=g), torch.randn(2, 10, 4, generator=g)
    predictors = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
    lengths = torch.tensor([10, 6])
    clean, _ = info_nce_loss(z, c, lengths, predictors)
    z2, c2 = z.clone(), c.clone()
    z2[1, 6:] = 1e3
    c2[1, 6:] = -1e3
    dirty, _ = info_nce_loss(z2, c2, lengths, predictors)
    torch.testing.assert_close(clean, dirty)


def test_too_short_utterances_give_a_zero_loss_with_gradient():
    z = torch.randn(2, 3, 4, requires_grad=True)
    c = torch.randn(2, 3, 4)
    loss, _ = info_nce_loss(z, c, torch.tensor([1, 1]), nn.ModuleList(nn.Linear(4, 4) for _ in range(3)))
    loss.backward()
    assert float(loss.detach()) == 0.0 and z.grad is not None
