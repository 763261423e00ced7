"""Tiny random batches shaped like ``svg_core.data.dataset.collate_batch`` output (ARCHITECTURE.md).

Used by the model tests so they do not depend on the data layer.
"""

from __future__ import annotations

import torch


SENTENCES = ["a man throws a ball", "the dog runs across the yard", "people swim"]


def make_batch(
    audio_lengths: list[int], n_video: int = 64, n_mels: int = 128, seed: int = 0,
    spans: list[tuple[float, float]] | None = None, sentences: list[str] | None = None,
) -> dict:
    """A padded batch: random log-Mels (zeros in padding), random C3D features, moments on the grid.

    Args:
        audio_lengths: valid log-Mel frames per item (0 allowed).
        n_video: N_v.
        n_mels: log-Mel bands.
        seed: generator seed.
        spans: (start_idx, end_idx) per item on the video grid; default spread over the grid.
        sentences: captions; default cycles ``SENTENCES``.

    Returns:
        the batch dict.
    """
    g = torch.Generator().manual_seed(seed)
    b = len(audio_lengths)
    lengths = torch.tensor(audio_lengths, dtype=torch.long)
    t_a = max(1, int(lengths.max()))
    audio_mask = torch.arange(t_a).unsqueeze(0) < lengths.unsqueeze(1)
    audio = torch.randn(b, t_a, n_mels, generator=g) * audio_mask.unsqueeze(-1)
    if spans is None:
        spans = [(4.0 + 9.5 * i % 40, min(float(n_video), 14.0 + 9.5 * i % 40 + 7 * i)) for i in range(b)]
    start_idx = torch.tensor([s for s, _ in spans], dtype=torch.float32)
    end_idx = torch.tensor([e for _, e in spans], dtype=torch.float32)
    frames = torch.arange(n_video, dtype=torch.float32).unsqueeze(0)
    inside = ((frames + 1 > start_idx.unsqueeze(1)) & (frames < end_idx.unsqueeze(1))).float()
    duration = torch.full((b,), 100.0, dtype=torch.float64)
    sentences = sentences or [SENTENCES[i % len(SENTENCES)] for i in range(b)]
    return {
        "video": torch.randn(b, n_video, 500, generator=g),
        "video_mask": torch.ones(b, n_video, dtype=torch.bool),
        "audio": audio,
        "audio_lengths": lengths,
        "audio_mask": audio_mask,
        "start_idx": start_idx,
        "end_idx": end_idx,
        "start_label": start_idx.floor().long().clamp(0, n_video - 1),
        "end_label": (end_idx.ceil().long() - 1).clamp(0, n_video - 1),
        "inside": inside,
        "duration_sec": duration,
        "start_sec": start_idx.double() / n_video * duration,
        "end_sec": end_idx.double() / n_video * duration,
        "noise_span_sec": torch.zeros(b, 2),
        "snr_db": torch.full((b,), float("nan")),
        "video_id": [f"v_{i}" for i in range(b)],
        "query_id": [f"q_{i}" for i in range(b)],
        "sentence": sentences,
    }


def select(batch: dict, i: int) -> dict:
    """Item ``i`` alone, with its padding trimmed (audio cut to its own length)."""
    item = {}
    for key, value in batch.items():
        item[key] = value[i : i + 1] if isinstance(value, (torch.Tensor, list)) else value
    n = max(1, int(batch["audio_lengths"][i]))
    item["audio"] = item["audio"][:, :n]
    item["audio_mask"] = item["audio_mask"][:, :n]
    return item


def overfit(model: torch.nn.Module, batch: dict, steps: int = 20, lr: float = 5e-3) -> tuple[float, dict, float]:
    """Adam on one batch for ``steps`` steps, then one eval forward pass.

    Returns:
        (loss of the first step, eval outputs, eval loss after training).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        loss, logs = model.loss(model(batch), batch)
        first = first if first is not None else logs["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(batch)
        final, _ = model.loss(out, batch)
    return first, out, float(final)
