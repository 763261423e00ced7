"""Acoustic-semantic pre-training (ASP) of the SIL speech encoder (paper 001 section 3.3, app. D.2).

Pieces, top to bottom:

- ``MelFrontEnd`` (frequency branch: 2-D conv subsampling x4) and ``WaveFrontEnd`` (time branch:
  strided 1-D convs on the 16 kHz waveform, the same 40 ms step).
- ``cif_integrate``: continuous integrate-and-fire (threshold 1.0), vectorised, with the scaling
  to a target length (training) and the tail rule (a leftover >= 0.5 fires) of Dong & Xu.
- ``ASPConfig``, ``SpeechEncoder`` (front-end -> N_a acoustic layers -> CIF -> N_s shared semantic
  layers) and ``ASPPretrainModel`` with the pre-training losses:
  L_ASP = lambda_1 L_rob + lambda_2 L_conc + L_sem (Eq. 7), L_conc = |n_hat - n| + NAR CE,
  L_sem = L_ctc + L_seq + L_word. Every task has its own switch (``use_*``) for the ablation.

Shapes: B batch, T log-Mel frames (10 ms), T' acoustic steps (40 ms), K CIF segments, W words,
d model width, E sentence-embedding width, V vocabulary.

Where this departs from the paper (and why):

1. |n_hat - n| instead of the signed (n_hat - n) of Eq. 2 (seed-systems "our fix": signed, the
   loss is unbounded below).
2. The masked-word decoder predicts each masked word at its own position (BERT style, the
   paper's "as (Devlin et al., 2018)"); Eq. 5's next-word target would let a bidirectional
   decoder read the answer at the next, unmasked position. Words are masked uniformly, not by
   part of speech.
3. L_seq uses L2-normalised vectors over a temperature (Eq. 4 writes a raw dot product), with the
   in-batch captions plus up to ``seq_negatives`` other training captions as negatives.
4. The sentence embedding is not GloVe (not available offline): the training task supplies it
   (the project's text grounder by default, see ``svg_core.engine.sil_training``); word inputs of
   the masked-word decoder are embeddings learned here.
5. Branch-wise losses (CTC, L_seq, L_word, L_conc) are averaged over the branches (the released
   code sums them), so switching the robustness task on does not rescale the loss.
6. Grounding reads only the frequency branch (``SpeechEncoder.encode``): the evaluator, the
   listening controls and the Grounder carry log-Mels only. The paper concatenates both branches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.models.blocks import SelfAttentionEncoder, conv_out_lengths, lengths_to_mask, run_rnn
from svg_core.models.text import tokenize, word_ids

CHARS = " abcdefghijklmnopqrstuvwxyz0123456789'"  # CTC character units; blank = 0, char i -> i + 1
WAVE_CONVS = ((10, 5), (8, 4), (4, 2), (4, 2), (4, 2), (4, 2), (4, 2))  # (kernel, stride): 640 samples = 40 ms


def sinusoid(steps: int, dim: int, device: torch.device) -> torch.Tensor:
    """Sinusoidal positions [steps, dim] (Vaswani et al.)."""
    pos = torch.arange(steps, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(steps, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return out


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid steps: x float [B, T, C], mask bool [B, T] -> [B, C]."""
    w = mask.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


# ---------------------------------------------------------------------------------------------
# Front-ends
# ---------------------------------------------------------------------------------------------


class MelFrontEnd(nn.Module):
    """Frequency branch: 2 x [Conv2d(3x3, stride 2, pad 1) + GELU] over (time, mel), then Linear.

    Args:
        n_mels: log-Mel bands (128).
        channels: conv channels.
        dim: output width d.
    """

    min_frames = 1

    def __init__(self, n_mels: int, channels: int, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        freq = (n_mels - 1) // 2 + 1
        self.proj = nn.Linear(channels * ((freq - 1) // 2 + 1), dim)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: mel float [B, T, n_mels] (zeros at padding), lengths int64 [B] (>= 1).

        Returns:
            float [B, T', d] (zeros at padding), int64 [B], T' = ceil(ceil(T / 2) / 2).
        """
        h = mel.unsqueeze(1)  # [B, 1, T, F]
        for conv in (self.conv1, self.conv2):
            lengths = conv_out_lengths(lengths, 3, 2, 1)
            h = F.gelu(conv(h))
            h = h * lengths_to_mask(lengths, h.shape[2])[:, None, :, None].to(h.dtype)  # re-zero padding
        h = self.proj(h.permute(0, 2, 1, 3).flatten(2))  # [B, T', C * F']
        return h * lengths_to_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype), lengths


class WaveFrontEnd(nn.Module):
    """Time branch: standardised 16 kHz waveform -> strided Conv1d + GELU stack (x640) -> Linear.

    Args:
        channels: conv channels.
        dim: output width d.
    """

    # receptive field of the stack: the fewest samples that give one output step
    min_samples = 1 + sum((k - 1) * math.prod(s for _, s in WAVE_CONVS[:i]) for i, (k, _) in enumerate(WAVE_CONVS))

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        convs, ch = [], 1
        for kernel, stride in WAVE_CONVS:
            convs.append(nn.Conv1d(ch, channels, kernel, stride=stride))
            ch = channels
        self.convs = nn.ModuleList(convs)
        self.proj = nn.Linear(channels, dim)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: wave float [B, n] (zeros at padding), lengths int64 [B] samples.

        Returns:
            float [B, T', d] (zeros at padding), int64 [B] (>= 1).
        """
        lengths = lengths.clamp(min=self.min_samples)
        if wave.shape[1] < self.min_samples:
            wave = F.pad(wave, (0, self.min_samples - wave.shape[1]))
        mask = lengths_to_mask(lengths, wave.shape[1]).to(wave.dtype)
        mean = (wave * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
        std = (((wave - mean) * mask) ** 2).sum(1, keepdim=True).div(mask.sum(1, keepdim=True)).sqrt()
        h = (((wave - mean) / (std + 1e-5)) * mask).unsqueeze(1)  # [B, 1, n], per-utterance z-score
        for conv, (kernel, stride) in zip(self.convs, WAVE_CONVS):
            lengths = conv_out_lengths(lengths, kernel, stride, 0)
            h = F.gelu(conv(h))
            h = h * lengths_to_mask(lengths, h.shape[-1]).unsqueeze(1).to(h.dtype)  # re-zero padding
        h = self.proj(h.transpose(1, 2))
        return h * lengths_to_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype), lengths


# ---------------------------------------------------------------------------------------------
# Continuous integrate-and-fire
# ---------------------------------------------------------------------------------------------


def cif_integrate(
    h: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor, target_lengths: torch.Tensor | None = None,
    threshold: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Continuous integrate-and-fire (Dong & Xu 2020; paper Eq. 12), vectorised.

    Step t covers the interval [c_{t-1}, c_t) of the cumulative weight c_t = sum_{i<=t} alpha_i
    (in units of ``threshold``); segment k integrates the interval [k, k+1), so step t gives
    segment k the weight |[c_{t-1}, c_t) & [k, k+1)| (the l_j / r_j split of Eq. 12 at each
    firing). Segments = round(c_T) (the tail fires when its leftover is >= 0.5), at least one;
    each segment is the weight-normalised sum of its steps. With ``target_lengths`` the weights
    are first scaled so that c_T = target (training; paper app. B.2 "scaling").

    Args:
        h: float [B, T', d] acoustic features.
        alpha: float [B, T'] weights in [0, 1], zero at padding.
        mask: bool [B, T'], True at valid steps.
        target_lengths: float [B] segment counts to scale to, or None (inference).
        threshold: firing threshold (1.0 in the paper).

    Returns:
        dict with ``segments`` float [B, K, d], ``segment_lengths`` int64 [B], ``segment_mask``
        bool [B, K], ``assign`` float [B, K, T'] (rows sum to 1 over steps; zero rows past a
        segment count) and ``quantity`` float [B], sum of alpha before scaling (n_hat).
    """
    alpha = alpha * mask.to(alpha.dtype)
    quantity = alpha.sum(1)
    if target_lengths is not None:
        alpha = alpha * (target_lengths.to(alpha.dtype) / quantity.clamp_min(1e-6)).unsqueeze(1)
    alpha = alpha / threshold
    c = alpha.cumsum(1)
    c_prev = c - alpha
    n_seg = torch.floor(c[:, -1] + 0.5).long().clamp(min=1)
    k = torch.arange(int(n_seg.max()), device=h.device, dtype=alpha.dtype).view(1, -1, 1)
    overlap = (torch.minimum(c.unsqueeze(1), k + 1) - torch.maximum(c_prev.unsqueeze(1), k)).clamp_min(0.0)
    seg_mask = lengths_to_mask(n_seg, k.shape[1])
    overlap = overlap * seg_mask.unsqueeze(-1).to(overlap.dtype)  # [B, K, T']
    row = overlap.sum(-1, keepdim=True)
    # An utterance with almost no weight (silence) still gives one segment: the mean of its steps.
    uniform = (mask.to(h.dtype) / mask.sum(1, keepdim=True).clamp_min(1)).unsqueeze(1).expand_as(overlap)
    assign = torch.where(row > 1e-6, overlap / row.clamp_min(1e-6), uniform * seg_mask.unsqueeze(-1))
    return {"segments": assign @ h, "segment_lengths": n_seg, "segment_mask": seg_mask, "assign": assign,
            "quantity": quantity}


class CIFWeights(nn.Module):
    """Weight predictor a_t = sigmoid(MLP(Conv1d_k(S_a))_t) (app. D.2 "a multi-layer perceptron")."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: h float [B, T', d] (zeros at padding), mask bool [B, T']. Returns alpha [B, T']."""
        a = self.mlp(self.conv(h.transpose(1, 2)).transpose(1, 2)).squeeze(-1)
        return torch.sigmoid(a) * mask.to(h.dtype)


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class ASPConfig:
    """The SIL speech encoder and its acoustic-semantic pre-training (paper 3.3, app. B.2)."""

    n_mels: int = 128  # log-Mel bands of the frequency branch (project front-end; paper: 80)
    model_dim: int = 256  # d
    heads: int = 4
    acoustic_layers: int = 4  # N_a, per branch
    semantic_layers: int = 4  # N_s, shared by the branches
    ff_mult: int = 4  # feed-forward width = ff_mult * d
    dropout: float = 0.1
    mel_channels: int = 64  # channels of the 2-D conv subsampling
    wave_channels: int = 256  # channels of the waveform conv stack
    use_robustness: bool = True  # L_rob: time (wave) branch + L1 to the frequency branch (ablation: off)
    use_conciseness: bool = True  # L_conc: CIF segments + |n_hat - n| + NAR decoder (ablation: off = no CIF)
    use_ctc: bool = True  # L_ctc on the acoustic features (semantic task)
    use_seq: bool = True  # L_seq: sentence-level InfoNCE against the sentence embedding
    use_word: bool = True  # L_word: masked-word prediction with speech as keys
    ctc_unit: Literal["word", "char"] = "word"  # CTC targets: caption words (paper) or characters
    cif_threshold: float = 1.0  # beta (paper 1.0; released code 0.99)
    cif_kernel: int = 5
    nar_layers: int = 4  # the non-autoregressive decoder over CIF segments
    word_layers: int = 4  # the masked-word Transformer decoder
    word_mask_ratio: float = 0.5  # x% of Table C.3 (paper: 50 %)
    label_smoothing: float = 0.1  # of the NAR and masked-word cross-entropies (released code)
    seq_negatives: int = 512  # B of Eq. 4: extra training captions drawn as negatives
    seq_temperature: float = 0.1
    rob_weight: float = 1.0  # lambda_1
    conc_weight: float = 1.0  # lambda_2
    max_words: int = 50
    vocab: list[str] = field(default_factory=list)  # train-caption words (models.text.build_vocab)
    text_emb_dim: int = 128  # E, width of the sentence embeddings the task supplies
    sentence_encoder: Literal["text_checkpoint", "words"] = "text_checkpoint"  # who embeds captions
    sentence_encoder_path: str = "checkpoints/text"  # the project's text grounder (text_checkpoint)
    seed: int = 0  # seeds the word masks (one generator per training step)

    def __post_init__(self) -> None:
        if self.model_dim % self.heads:
            raise ValueError(f"model_dim must divide by heads, found {self.model_dim} and {self.heads}")
        if not 0.0 < self.word_mask_ratio <= 1.0:
            raise ValueError(f"word_mask_ratio must be in (0, 1], found {self.word_mask_ratio}")
        if self.vocab and self.vocab[:2] != ["<pad>", "<unk>"]:
            raise ValueError(f"vocab must start with '<pad>', '<unk>', found {self.vocab[:2]}")

    @classmethod
    def paper(cls, **overrides) -> "ASPConfig":
        """Paper sizes: d = 256, N_a = N_s = 4, 4-layer decoders, both branches, 512 negatives."""
        return cls(**overrides)

    @classmethod
    def small(cls, **overrides) -> "ASPConfig":
        """A size that pre-trains on a 2-core CPU; robustness (the wave branch) off, as it is optional."""
        base = dict(model_dim=128, acoustic_layers=2, semantic_layers=2, mel_channels=32, wave_channels=64,
                    nar_layers=1, word_layers=1, seq_negatives=256, use_robustness=False)
        return cls(**{**base, **overrides})


# ---------------------------------------------------------------------------------------------
# Speech encoder
# ---------------------------------------------------------------------------------------------


class SpeechEncoder(nn.Module):
    """Front-end -> N_a acoustic layers -> (CIF) -> N_s semantic layers, per branch.

    The semantic layers and the CIF weight predictor are shared by the two branches (paper 3.3.1).

    Args:
        cfg: the ASP config.
    """

    def __init__(self, cfg: ASPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, ff = cfg.model_dim, cfg.ff_mult * cfg.model_dim
        self.mel = MelFrontEnd(cfg.n_mels, cfg.mel_channels, d)
        self.mel_acoustic = SelfAttentionEncoder(d, cfg.heads, cfg.acoustic_layers, ff, cfg.dropout)
        self.wave = WaveFrontEnd(cfg.wave_channels, d) if cfg.use_robustness else None
        self.wave_acoustic = (SelfAttentionEncoder(d, cfg.heads, cfg.acoustic_layers, ff, cfg.dropout)
                              if cfg.use_robustness else None)
        self.cif = CIFWeights(d, cfg.cif_kernel) if cfg.use_conciseness else None
        self.semantic = SelfAttentionEncoder(d, cfg.heads, cfg.semantic_layers, ff, cfg.dropout)
        self.out_dim = d

    def branch(self, front: nn.Module, acoustic: nn.Module, x: torch.Tensor, lengths: torch.Tensor,
               target_lengths: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One branch. Returns S_a [B, T', d], ``step_mask`` [B, T'], S_s [B, K, d], ``segment_mask``,
        ``assign`` [B, K, T'] (identity-like without CIF) and ``quantity`` [B] (CIF only)."""
        h, step_len = front(x, lengths)
        step_len = step_len.clamp(min=1)
        step_mask = lengths_to_mask(step_len, h.shape[1])
        s_a = acoustic(h + sinusoid(h.shape[1], h.shape[2], h.device), step_mask)
        out = {"acoustic": s_a, "step_mask": step_mask, "step_lengths": step_len}
        if self.cif is not None:
            cif = cif_integrate(s_a, self.cif(s_a, step_mask), step_mask, target_lengths, self.cfg.cif_threshold)
            seg, seg_mask = cif["segments"], cif["segment_mask"]
            out.update(concise=seg, assign=cif["assign"], quantity=cif["quantity"])
        else:  # ablation "w/o L_conc" (and the paper's Base): no I&F, frames are the units
            seg, seg_mask = s_a, step_mask
            out["assign"] = torch.diag_embed(step_mask.to(s_a.dtype))
        positions = sinusoid(seg.shape[1], seg.shape[2], seg.device) * seg_mask.unsqueeze(-1)
        out["semantic"] = self.semantic(seg + positions, seg_mask)
        out["segment_mask"] = seg_mask
        return out

    def forward_mel(self, audio: torch.Tensor, lengths: torch.Tensor,
                    target_lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Frequency branch on log-Mels: audio float [B, T, n_mels], lengths int64 [B] (0 allowed)."""
        lengths = lengths.to(audio.device).clamp(min=1, max=max(audio.shape[1], 1))
        if audio.shape[1] < 1:
            audio = F.pad(audio, (0, 0, 0, 1))
        audio = audio * lengths_to_mask(lengths, audio.shape[1]).unsqueeze(-1).to(audio.dtype)
        return self.branch(self.mel, self.mel_acoustic, audio, lengths, target_lengths)

    def forward_wave(self, wave: torch.Tensor, lengths: torch.Tensor,
                     target_lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Time branch on 16 kHz waveforms: wave float [B, n], lengths int64 [B] samples."""
        if self.wave is None or self.wave_acoustic is None:
            raise ValueError("this speech encoder has no wave branch (use_robustness=False)")
        wave = wave * lengths_to_mask(lengths.to(wave.device), wave.shape[1]).to(wave.dtype)
        return self.branch(self.wave, self.wave_acoustic, wave, lengths.to(wave.device), target_lengths)

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """What grounding reads: the frequency branch's semantic features, no length target.

        Returns:
            dict of :meth:`branch` (``semantic`` [B, K, d], ``segment_mask`` [B, K], ``assign``
            [B, K, T'], ``step_mask`` [B, T']).
        """
        return self.forward_mel(audio, lengths)


# ---------------------------------------------------------------------------------------------
# Pre-training model and losses
# ---------------------------------------------------------------------------------------------


def char_ids(sentences: list[str], max_chars: int, device: torch.device) -> torch.Tensor:
    """Character ids [B, L] over ``CHARS`` (0 = padding; unknown characters dropped)."""
    rows = [[CHARS.index(c) + 1 for c in " ".join(tokenize(s)) if c in CHARS][:max_chars] or [1] for s in sentences]
    ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids.to(device)


def info_nce(speech: torch.Tensor, text: torch.Tensor, negatives: torch.Tensor | None,
             same: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """Sentence-level InfoNCE (Eq. 4): each utterance against its caption, the batch's other
    captions and ``negatives``; cosine similarity / temperature.

    Args:
        speech: float [B, e]; text: float [B, e] (row i = caption of utterance i).
        negatives: float [N, e] extra captions, or None; same: bool [B, N], True where a
            negative is the utterance's own caption (masked out, as are negatives and batch
            captions whose embedding equals the caption's).
        temperature: softmax temperature.

    Returns:
        the mean loss (scalar).
    """
    s, t = F.normalize(speech, dim=-1), F.normalize(text, dim=-1)
    logits = s @ t.T  # [B, B]; duplicates of the same caption in the batch are not negatives
    dup = (t @ t.T > 1 - 1e-6) & ~torch.eye(len(t), dtype=torch.bool, device=t.device)
    logits = logits.masked_fill(dup, float("-inf"))
    if negatives is not None and len(negatives):
        n = F.normalize(negatives, dim=-1)
        drop = t @ n.T > 1 - 1e-6  # a negative that embeds like the utterance's own caption is none
        drop = drop | same if same is not None else drop
        logits = torch.cat([logits, (s @ n.T).masked_fill(drop, float("-inf"))], 1)  # [B, B + N]
    target = torch.arange(len(s), device=s.device)
    return F.cross_entropy(logits / temperature, target)


class ASPPretrainModel(nn.Module):
    """The speech encoder plus the heads of the pre-training tasks.

    Call ``set_progress(step, total_steps)`` before a training step: it seeds that step's word
    masks. ``forward(batch)`` reads ``audio``, ``audio_lengths``, ``sentence`` and, per task,
    ``wave``/``wave_lengths`` (robustness), ``sentence_emb`` [B, E], ``negative_emb`` [N, E],
    ``negative_same`` [B, N] (L_seq).

    Args:
        cfg: the ASP config (``vocab`` set).
        encoder: the ``SpeechEncoder`` to pre-train (kept as ``self.encoder``).
    """

    def __init__(self, cfg: ASPConfig, encoder: SpeechEncoder) -> None:
        super().__init__()
        if not cfg.vocab:
            raise ValueError("ASPConfig.vocab is empty; set it with build_vocab(train captions)")
        self.cfg, self.encoder, self.step = cfg, encoder, 0
        d, v, ff = cfg.model_dim, len(cfg.vocab), cfg.ff_mult * cfg.model_dim
        self.index = {w: i for i, w in enumerate(cfg.vocab)}
        n_ctc = v if cfg.ctc_unit == "word" else len(CHARS) + 1  # index 0 is the blank (<pad> is never a target)
        self.ctc_head = (nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, n_ctc))
                         if cfg.use_ctc else None)  # the 2-layer MLP CTC decoder
        self.nar = SelfAttentionEncoder(d, cfg.heads, cfg.nar_layers, ff, cfg.dropout) if cfg.use_conciseness else None
        self.nar_out = nn.Linear(d, v) if cfg.use_conciseness else None
        if cfg.use_seq:
            self.seq_rnn = nn.GRU(d, d // 2, batch_first=True, bidirectional=True)
            self.seq_speech, self.seq_text = nn.Linear(d, d), nn.Linear(cfg.text_emb_dim, d)
        if cfg.use_word:
            self.word_embed = nn.Embedding(v, d, padding_idx=0)
            self.mask_vec = nn.Parameter(torch.randn(d) * 0.02)
            layer = nn.TransformerDecoderLayer(d, cfg.heads, ff, cfg.dropout, batch_first=True)
            self.word_decoder = nn.TransformerDecoder(layer, cfg.word_layers)  # no causal mask: bidirectional
            self.word_out = nn.Linear(d, v)

    def set_progress(self, step: int, total_steps: int) -> None:
        """Set the 0-based training step (seeds this step's word masks)."""
        self.step = step

    def _word_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """bool [B, W]: max(1, floor(ratio * n)) masked positions per caption, seeded by the step."""
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + (self.step if self.training else 0))
        valid = ids > 0
        score = torch.rand(ids.shape, generator=gen).to(ids.device).masked_fill(~valid, 2.0)
        n_mask = (valid.sum(1).float() * self.cfg.word_mask_ratio).floor().long().clamp(min=1)
        ranks = score.argsort(1).argsort(1)
        return (ranks < n_mask.unsqueeze(1)) & valid

    def forward(self, batch: dict) -> dict:
        """Returns {"ids": [B, W], "branches": {"mel": branch dict, "wave": ...}} (see SpeechEncoder.branch)."""
        audio = batch["audio"]
        ids = word_ids(list(batch["sentence"]), self.index, self.cfg.max_words, audio.device)
        n_words = (ids > 0).sum(1).float()
        branches = {"mel": self.encoder.forward_mel(audio, batch["audio_lengths"], n_words)}
        if self.cfg.use_robustness:
            branches["wave"] = self.encoder.forward_wave(batch["wave"], batch["wave_lengths"], n_words)
        return {"ids": ids, "n_words": n_words, "branches": branches}

    def branch_losses(self, br: dict, ids: torch.Tensor, n_words: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """The per-branch losses of the enabled tasks (scalars)."""
        cfg, losses = self.cfg, {}
        valid_words = ids > 0
        if self.ctc_head is not None:
            targets = ids if cfg.ctc_unit == "word" else char_ids(list(batch["sentence"]), 400, ids.device)
            log_probs = self.ctc_head(br["acoustic"]).float().log_softmax(-1).transpose(0, 1)  # [T', B, C]
            target_len = (targets > 0).sum(1)
            losses["ctc"] = F.ctc_loss(log_probs, targets[targets > 0], br["step_lengths"], target_len,
                                       blank=0, zero_infinity=True)
        if self.nar is not None and self.nar_out is not None:
            losses["quantity"] = (br["quantity"] - n_words).abs().mean()  # |n_hat - n| (our fix of Eq. 2's sign)
            seg, seg_mask = br["concise"], br["segment_mask"]
            h = self.nar(seg + sinusoid(seg.shape[1], seg.shape[2], seg.device) * seg_mask.unsqueeze(-1), seg_mask)
            k = min(h.shape[1], ids.shape[1])  # position by position, the shorter length
            pair = seg_mask[:, :k] & valid_words[:, :k]
            logits = self.nar_out(h[:, :k])[pair]
            losses["nar"] = F.cross_entropy(logits.float(), ids[:, :k][pair], label_smoothing=cfg.label_smoothing)
        sem, sem_mask = br["semantic"], br["segment_mask"]
        if cfg.use_seq:
            pooled = masked_mean(run_rnn(self.seq_rnn, sem, sem_mask.sum(1)), sem_mask)
            neg = batch.get("negative_emb")
            losses["seq"] = info_nce(self.seq_speech(pooled), self.seq_text(batch["sentence_emb"].to(sem.dtype)),
                                     None if neg is None else self.seq_text(neg.to(sem.dtype)),
                                     batch.get("negative_same"), cfg.seq_temperature)
        if cfg.use_word:
            masked = self._word_mask(ids)
            q = torch.where(masked.unsqueeze(-1), self.mask_vec.expand(*ids.shape, -1), self.word_embed(ids))
            q = q + sinusoid(ids.shape[1], q.shape[-1], q.device)
            o = self.word_decoder(q, sem, tgt_key_padding_mask=~valid_words, memory_key_padding_mask=~sem_mask)
            losses["word"] = F.cross_entropy(self.word_out(o[masked]).float(), ids[masked],
                                             label_smoothing=cfg.label_smoothing)
        return losses

    def loss(self, out: dict, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L_ASP = lambda_1 L_rob + lambda_2 (L_qua + L_nar) + L_ctc + L_seq + L_word (Eq. 7).

        Returns:
            (scalar loss, logs with ``loss`` and each enabled part).
        """
        cfg, ids, n_words = self.cfg, out["ids"], out["n_words"]
        per_branch = [self.branch_losses(br, ids, n_words, batch) for br in out["branches"].values()]
        parts = {k: torch.stack([p[k] for p in per_branch]).mean() for k in per_branch[0]}
        if cfg.use_robustness:
            mel, wave = out["branches"]["mel"], out["branches"]["wave"]
            a, b = mel["semantic"], wave["semantic"]
            if a.shape[1] == b.shape[1] and bool((mel["segment_mask"] == wave["segment_mask"]).all()):
                m = mel["segment_mask"].unsqueeze(-1).to(a.dtype)
                parts["rob"] = ((a - b).abs() * m).sum() / (m.sum() * a.shape[-1]).clamp_min(1.0)
            else:  # different segment counts (no CIF, or eval without scaling): compare the means
                parts["rob"] = (masked_mean(a, mel["segment_mask"]) - masked_mean(b, wave["segment_mask"])).abs().mean()
            if cfg.use_conciseness:
                parts["quantity"] = parts["quantity"] + (mel["quantity"] - wave["quantity"]).abs().mean()
        if not parts:
            raise ValueError("every ASP task is switched off: enable at least one of use_ctc/use_seq/use_word/use_conciseness")
        weights = {"rob": cfg.rob_weight, "quantity": cfg.conc_weight, "nar": cfg.conc_weight}
        total = sum(weights.get(k, 1.0) * v for k, v in parts.items())
        logs = {f"{k}_loss": v.detach() for k, v in parts.items()}
        logs["loss"] = total.detach()
        return total, logs


def build_asp(cfg: ASPConfig) -> ASPPretrainModel:
    """Build the ASP pre-training model (``cfg.vocab`` must be set)."""
    return ASPPretrainModel(cfg, SpeechEncoder(cfg))
