"""Text-query variant of the grounding network ("Base+text", VGCL paper Table 2).

Word embeddings learned on the training captions (no GloVe) -> BiGRU replace the audio
encoder; the video side, context-query attention, heads and losses are the Base ones. Used for
the original-caption rows and the ASR cascade. The vocabulary lives in the config as a plain
list, so a checkpoint loads without pickle.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from svg_core.models.base import BaseConfig, BaseGrounder, GroundingConfig, VideoEncoder
from svg_core.models.blocks import lengths_to_mask, run_rnn

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(sentence: str) -> list[str]:
    """Lowercase word tokens: ``"A man's dog, running."`` -> ``["a", "man's", "dog", "running"]``."""
    return _WORD.findall(sentence.lower())


def build_vocab(sentences: Iterable[str], min_count: int = 1) -> list[str]:
    """Vocabulary of the training captions: ``[<pad>, <unk>]`` + words seen >= ``min_count`` times.

    Words are ordered by decreasing count, then alphabetically (deterministic).

    Args:
        sentences: training captions.
        min_count: minimum occurrences to keep a word.

    Returns:
        the word list; index 0 is padding, 1 is unknown.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, found {min_count}")
    counts = Counter(word for sentence in sentences for word in tokenize(sentence))
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *kept]


@dataclass
class TextConfig(GroundingConfig):
    """Text grounder: GroundingConfig + the word encoder and its vocabulary."""

    vocab: list[str] = field(default_factory=list)  # from build_vocab(train captions)
    min_count: int = 1  # used by build_vocab when the trainer builds the vocabulary
    embed_dim: int = 300  # word embedding size
    max_words: int = 50  # longer captions are truncated

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vocab and self.vocab[:2] != [PAD, UNK]:
            raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}, found {self.vocab[:2]}")

    @classmethod
    def paper(cls, **overrides) -> "TextConfig":
        """Paper-size grounding side (D = 1024, 8 chunks), 300-d embeddings."""
        return cls(**overrides)

    @classmethod
    def small(cls, **overrides) -> "TextConfig":
        """CPU size, the same grounding side as ``BaseConfig.small()``."""
        small = BaseConfig.small()
        shared = {f.name: getattr(small, f.name) for f in fields(GroundingConfig)}
        return cls(**{**shared, "embed_dim": 64, **overrides})


def word_ids(sentences: list[str], index: dict[str, int], max_words: int, device: torch.device) -> torch.Tensor:
    """Word ids [B, W] of captions under a vocabulary ``index`` (0 = padding, 1 = unknown; at most
    ``max_words`` per caption); an empty caption gives one <unk>."""
    rows = [[index.get(w, 1) for w in tokenize(s)][:max_words] or [1] for s in sentences]
    ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids.to(device)


class TextQueryEncoder(nn.Module):
    """Word ids -> embeddings -> BiGRU -> A [B, T_q, D].

    Args:
        cfg: the text config (its ``vocab`` must be set).
    """

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        if not cfg.vocab:
            raise ValueError("TextConfig.vocab is empty; set it with build_vocab(train captions)")
        if cfg.model_dim % 2:
            raise ValueError(f"model_dim must be even for the BiGRU, found {cfg.model_dim}")
        self.max_words = cfg.max_words
        self.index = {word: i for i, word in enumerate(cfg.vocab)}
        self.embed = nn.Embedding(len(cfg.vocab), cfg.embed_dim, padding_idx=0)
        self.rnn = nn.GRU(cfg.embed_dim, cfg.model_dim // 2, batch_first=True, bidirectional=True)

    def encode_ids(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenise and index sentences (unknown words -> 1; an empty sentence -> one <unk>).

        Returns:
            ids int64 [B, T_w] (0 = padding) and lengths int64 [B], on the embedding's device.
        """
        ids = word_ids(sentences, self.index, self.max_words, self.embed.weight.device)
        return ids, (ids > 0).sum(1)  # every row's words are ids >= 1, its padding 0

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Args: batch with ``sentence`` (list[str]). Returns A [B, T_w, D], lengths [B], {}."""
        sentences = batch["sentence"]
        if isinstance(sentences, str) or not sentences:
            raise ValueError(f"batch['sentence'] must be a non-empty list of strings, found {sentences!r}")
        ids, lengths = self.encode_ids(list(sentences))
        h = run_rnn(self.rnn, self.embed(ids), lengths)
        return h * lengths_to_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype), lengths, {}


class TextGrounder(BaseGrounder):
    """``BaseGrounder`` whose query is ``batch["sentence"]``; ``tokenize`` is exposed for callers."""

    cfg: TextConfig

    def tokenize(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids [B, T_w] and lengths [B] of raw sentences."""
        return self.query_encoder.encode_ids(sentences)


def build_text(cfg: TextConfig) -> TextGrounder:
    """Build the text grounder (``cfg.vocab`` must be set)."""
    return TextGrounder(cfg, TextQueryEncoder(cfg), VideoEncoder(cfg))
