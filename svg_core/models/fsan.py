"""FSAN: candidate-free weak grounding by a token-by-clip alignment map (paper 004; seed-systems "FSAN").

Training sees matched (video, query) pairs only, never a moment's timestamps.

video [B, N, 500] -> Linear + learnable positions -> V [B, N, d]
query: text words (Embedding + BiGRU, models/text.py) or speech steps (the Base log-Mel
encoder, models/audio_encoder.py) -> S [B, T_q, d]
L iterative cross-modal interaction layers (cross-attention + FFN both ways, then self-attention)
P = Norm(W_s S'') . Norm(W_v V'')^T in [-1, 1], rescaled to (0, 1): [B, T_q, N]
SC(s, e) = mean_{i, j in [s, e]} P_ij - mean_{j not in [s, e]} min_i P_ij, every segment at once
by prefix sums; inference = the best segment (top-5 by NMS 0.45 over the segment scores).

Losses (``FSANGrounder.loss``), L = (L_t + L_i + L_o) / 3, with the three seed-systems fixes:
P is rescaled to (0, 1) before any log; outside a segment the loss is -log(1 - min_i P_ij)
(lowers the outside alignment); SC is detached and softmaxed over segments before weighting.

Shapes: B batch, N clips (N_v), T_q query tokens (words, or speech steps of 16 k x 10 ms).

Departures from the paper: the word encoder is the project's Embedding + BiGRU (models/text.py;
the paper: GloVe + a Transformer encoder); the negative sentence is the nearest query of another
video in the batch (deterministic; the paper samples one from the dataset); for speech tokens no
tokens are masked in the negative (speech steps have no identity to share).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from svg_core.models.base import BaseConfig, build_audio_encoder
from svg_core.models.blocks import lengths_to_mask, masked_softmax
from svg_core.models.fsan_losses import (
    bag_of_words_nll,
    best_segment_score,
    inside_outside_losses,
    segment_cells,
    segment_lengths,
    segment_scores,
    sibling_loss,
    swapped_captions,
    token_stats,
    triplet_loss,
)
from svg_core.models.sil_losses import negative_indices
from svg_core.models.text import PAD, UNK, TextQueryEncoder, word_ids

# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class FSANConfig:
    """FSAN: query encoder (text words or speech steps), interaction layers, the alignment map."""

    query: Literal["text", "speech"] = "text"  # what the tokens of P are
    n_video_frames: int = 64  # N_v clips, each with a learnable position
    video_dim_in: int = 500  # C3D feature size
    model_dim: int = 512  # d
    heads: int = 8  # attention heads
    layers: int = 6  # L interaction layers (paper: 6)
    ff_mult: int = 2  # FFN width = ff_mult * d
    map_dim: int = 256  # width of W_s, W_v before the normalised dot product
    dropout: float = 0.1
    margin: float = 0.2  # delta of L_t (segment scores lie in [-1, 1])
    # SC of the whole video, which has no outside: "video_mean" (our fix: the video's mean of min_i P
    # stands in) or "zero" (the paper's equation taken literally: a flat map then picks the whole video)
    empty_outside: Literal["video_mean", "zero"] = "video_mean"
    outside_stat: Literal["min", "mean"] = "min"  # SC's outside term per clip: min over tokens (paper) or mean
    weight_temperature: float = 1.0  # softmax temperature of the SC weights in L_i and L_o (paper: unstated)
    negative_video: bool = False  # also a triplet against the query on another video (as SIL's V'); paper: no
    # also a triplet against the same query on its own video with the chosen segment erased (clips
    # masked out of the interaction, segments restricted to what is left); paper: no. The other
    # negatives are won by matching the video as a whole; this one only by the clips of the segment
    erase_negative: bool = False
    # the erased segment is the best one no longer than this share of the video's clips (1 = any; a
    # flat map under outside_stat=mean picks the whole video, which leaves nothing to score)
    erase_max_share: float = 1.0
    # text only: also a triplet against the caption with one word swapped (``swapped_captions``) on
    # its own video; paper: no. Same objects, same video: a swapped action is told apart only by
    # binding the words to what happens in the clips
    swap_negative: bool = False
    # text only: also a contrast with another caption of the same video (``sibling_sentence``, given
    # by the weak task; no timestamps): at the caption's best segment it must beat the sibling by
    # ``margin``, and at the sibling's best segment lose to it; paper: no. Both name objects of
    # this video, so matching the video as a whole never satisfies it: only when each acts does
    sibling_negative: bool = False
    # learnable clip positions added to the video (paper: yes). Off, the map of a clip depends on its
    # content alone, so no caption word can be tied to a place in the video regardless of what is there
    video_positions: bool = True
    # also predict each caption word from the clips its alignment row picks (softmax over clips of the
    # row's cosine / recon_temperature, applied to the query-free clip projections), a cross-entropy
    # weighted by recon_weight (0 = off, the paper). A word naming an action can only be predicted from
    # clips where the action happens, which anchors that word's row of P in time; the contrastive
    # losses above compare segments the map chose itself and never do. Text: word i from row i.
    # Speech (the caption is read in training only): each caption word from the mixture of all speech
    # steps' predictions (``bag_of_words_nll``), so some step must read clips that show it
    recon_weight: float = 0.0
    recon_temperature: float = 0.1
    # weights of L_t, L_i, L_o (the paper: all 1); a 0 removes that loss (the ablation of issue 23)
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0  # the trainer's seed, kept for the record
    # text query (models/text.py): vocabulary from build_vocab(train captions)
    vocab: list[str] = field(default_factory=list)
    min_count: int = 1
    embed_dim: int = 300
    max_words: int = 50
    # speech query: the Base log-Mel encoder's steps (16 k log-Mel frames of 10 ms each)
    n_mels: int = 128
    max_audio_frames: int = 800
    audio_subsample: int = 4
    audio_width: int = 128  # DAVEnet1 / GRU width of that encoder
    # speech front-end (models/speech_frontend.py): log-Mels, or frozen Whisper base encoder
    # features [T_e, 512] (computed outside the model) into the adapter + GRU instead of the DAVEnets
    audio_frontend: Literal["logmel", "whisper_base"] = "logmel"
    frontend_pool: int = 2  # whisper_base: encoder frames averaged before the model (50 -> 25 Hz)

    def __post_init__(self) -> None:
        if self.model_dim % self.heads:
            raise ValueError(f"model_dim must divide by heads, found {self.model_dim} and {self.heads}")
        if self.model_dim % 2:
            raise ValueError(f"model_dim must be even (BiGRU), found {self.model_dim}")
        if self.audio_frontend != "logmel" and self.query != "speech":
            raise ValueError(f"audio_frontend={self.audio_frontend} needs query=speech, found query={self.query}")
        if not 0 < self.erase_max_share <= 1:
            raise ValueError(f"erase_max_share must lie in (0, 1], found {self.erase_max_share}")
        if self.swap_negative and self.query != "text":
            raise ValueError("swap_negative needs query=text (speech steps have no words to swap)")
        if len(self.loss_weights) != 3 or any(x < 0 for x in self.loss_weights):
            raise ValueError(f"loss_weights must be three weights >= 0 (L_t, L_i, L_o), found {self.loss_weights}")
        if self.recon_weight < 0 or self.recon_temperature <= 0:
            raise ValueError(f"recon_weight must be >= 0 and recon_temperature > 0, found {self.recon_weight}, "
                             f"{self.recon_temperature}")
        if self.recon_weight > 0 and not self.vocab:
            raise ValueError("recon_weight > 0 needs vocab (build_vocab(train captions)): the words to predict")
        if self.sibling_negative and self.query != "text":
            raise ValueError("sibling_negative needs query=text (the weak task gives the sibling's caption)")
        if self.weight_temperature <= 0:
            raise ValueError(f"weight_temperature must be positive, found {self.weight_temperature}")
        if self.vocab and self.vocab[:2] != [PAD, UNK]:
            raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}, found {self.vocab[:2]}")

    @classmethod
    def paper(cls, **overrides) -> "FSANConfig":
        """Paper sizes (sec. 4): d = 512, L = 6 interaction layers; N_v = 64, 8 heads, 300-d word
        embeddings (GloVe in the paper, learned here) are our choices. Paper training: Adam 1e-4,
        batch 128 (``--lr 1e-4 --batch-size 128``)."""
        return cls(**{"layers": 6, **overrides})

    @classmethod
    def small(cls, **overrides) -> "FSANConfig":
        """A size that trains on a 2-core CPU: d = 128, 4 heads, L = 2, N_v = 32."""
        base = dict(n_video_frames=32, model_dim=128, heads=4, layers=2, map_dim=64, embed_dim=64, audio_width=64)
        return cls(**{**base, **overrides})

    def speech_config(self) -> BaseConfig:
        """The speech encoder's architecture (only its audio fields are used)."""
        w, d = self.audio_width, self.model_dim
        return BaseConfig.small(model_dim=d, n_mels=self.n_mels, max_audio_frames=self.max_audio_frames,
                                audio_subsample=self.audio_subsample, davenet1_stem=w, davenet1_dims=(w, w),
                                audio_gru_dim=w, davenet2_stem=w, davenet2_dims=(d, d), attn_heads=1,
                                audio_frontend=self.audio_frontend, frontend_pool=self.frontend_pool)


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------


class CrossBlock(nn.Module):
    """x' = LN(MA(x, y) + x), x'' = LN(FFN(x') + x') (post-LN, the paper's equations)."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_mult * dim, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        """Args: x [B, Tx, d] queries, y [B, Ty, d] keys, y_mask bool [B, Ty]. Returns [B, Tx, d]."""
        h = self.norm1(x + self.drop(self.attn(x, y, y, key_padding_mask=~y_mask, need_weights=False)[0]))
        return self.norm2(h + self.drop(self.ffn(h)))


class InteractionLayer(nn.Module):
    """One iterative cross-modal interaction layer: S <- cross(S, V), V <- cross(V, S), then self-attention each."""

    def __init__(self, cfg: FSANConfig) -> None:
        super().__init__()
        args = (cfg.model_dim, cfg.heads, cfg.ff_mult, cfg.dropout)
        self.s_cross, self.v_cross, self.s_self, self.v_self = (CrossBlock(*args) for _ in range(4))

    def forward(self, s: torch.Tensor, s_mask: torch.Tensor, v: torch.Tensor, v_mask: torch.Tensor):
        """Args: s [B, T_q, d], s_mask [B, T_q], v [B, N, d], v_mask [B, N]. Returns (s, v), same shapes."""
        s2, v2 = self.s_cross(s, v, v_mask), self.v_cross(v, s, s_mask)  # symmetric: both read the old pair
        return self.s_self(s2, s2, s_mask), self.v_self(v2, v2, v_mask)


class SpeechTokens(nn.Module):
    """Speech steps as tokens: the Base log-Mel encoder (models/audio_encoder.py), or the adapter
    over Whisper features (``audio_frontend="whisper_base"``) -> [B, T_q, d]."""

    def __init__(self, cfg: FSANConfig) -> None:
        super().__init__()
        self.encoder = build_audio_encoder(cfg.speech_config())

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Reads ``audio`` [B, T_a, n_mels] (or [B, T_e, 512] features) and ``audio_lengths`` [B]. Returns S [B, T_q, d], lengths [B]."""
        audio = batch["audio"]
        lengths = batch.get("audio_lengths")
        lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long) if lengths is None else lengths
        h, lengths, _ = self.encoder(audio, lengths.to(audio.device))
        return h, lengths.clamp_min(1)


class TextTokens(nn.Module):
    """Words as tokens: Embedding + BiGRU (models/text.py's encoder), plus the word ids."""

    def __init__(self, cfg: FSANConfig) -> None:
        super().__init__()
        self.encoder = TextQueryEncoder(cfg)  # reads vocab, embed_dim, model_dim, max_words

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Reads ``sentence`` (list[str]). Returns S [B, T_w, d], lengths [B]."""
        h, lengths, _ = self.encoder(batch)
        return h, lengths

    def ids(self, sentences: list[str]) -> torch.Tensor:
        """Word ids int64 [B, T_w] (0 = padding)."""
        return self.encoder.encode_ids(sentences)[0]


class FSANGrounder(nn.Module):
    """Query tokens + video clips -> interaction -> alignment map P -> segment scores.

    Output dict of ``forward(batch)``: ``alignment_map`` [B, T_q, N] in (0, 1), ``query_mask``
    [B, T_q], ``segment_scores`` [B, N, N] (SC in [-1, 1]), ``proposal_scores`` [B, N, N]
    ((SC + 1) / 2, 0 off the segments) with ``proposal_mask`` (what the shared decoders read),
    ``cq_attention`` [B, N, T_q] (each clip's P column normalised over tokens), display
    marginals ``start_prob``/``end_prob``/``inside_prob`` [B, N] with ``*_logits``, ``video_mask``.
    In training mode also the negative query's best segment score (``neg_best``, ``neg_valid``) and,
    with ``negative_video``, the query's best score on another video (``neg_video_best``, ``neg_video_valid``);
    with ``erase_negative``, its best score on its own video without its best segment (``erased_best``,
    ``erased_valid``).

    Args:
        cfg: the FSAN config; tokens: ``TextTokens`` or ``SpeechTokens``.
    """

    def __init__(self, cfg: FSANConfig, tokens: nn.Module) -> None:
        super().__init__()
        self.cfg, self.tokens = cfg, tokens
        d = cfg.model_dim
        self.video_proj = nn.Linear(cfg.video_dim_in, d)
        self.video_pos = nn.Parameter(torch.randn(cfg.n_video_frames, d) * 0.02)
        self.query_proj = nn.Linear(d, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(InteractionLayer(cfg) for _ in range(cfg.layers))
        self.w_s, self.w_v = nn.Linear(d, cfg.map_dim, bias=False), nn.Linear(d, cfg.map_dim, bias=False)
        self.recon_head = nn.Linear(d, len(cfg.vocab)) if cfg.recon_weight > 0 else None  # clips -> word
        self.word_index = {w: i for i, w in enumerate(cfg.vocab)}

    def align(self, s: torch.Tensor, s_mask: torch.Tensor, v: torch.Tensor, v_mask: torch.Tensor) -> torch.Tensor:
        """Interaction + alignment map for pairs (S_b, V_b). Returns P float [B, T_q, N] in (0, 1)."""
        for layer in self.layers:
            s, v = layer(s, s_mask, v, v_mask)
        cos = F.normalize(self.w_s(s), dim=-1) @ F.normalize(self.w_v(v), dim=-1).transpose(1, 2)
        return (cos + 1) / 2  # our fix: (0, 1) before any log

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Ground a batch (reads ``video``, ``video_mask``, the query and, in training, ``video_id``;
        never a timestamp)."""
        video = batch["video"]
        if video.dim() != 3 or video.shape[1] > self.video_pos.shape[0]:
            raise ValueError(f"video must be [batch, <= {self.video_pos.shape[0]} clips, dim], found {tuple(video.shape)}")
        v_mask = batch.get("video_mask")
        v_mask = torch.ones(video.shape[:2], dtype=torch.bool, device=video.device) if v_mask is None else v_mask.to(video.device)
        v = self.video_proj(video) + (self.video_pos[: video.shape[1]] if self.cfg.video_positions else 0.0)
        v = self.drop(v) * v_mask.unsqueeze(-1).to(video.dtype)
        s, s_mask = self._query(batch, video.device)
        p = self.align(s, s_mask, v, v_mask)
        sc = self._segment_scores(p, s_mask, v_mask)
        cells = segment_cells(v_mask)
        scores = ((sc + 1) / 2).clamp(0, 1) * cells
        col = p * s_mask.unsqueeze(-1).to(p.dtype)
        out = {"alignment_map": p, "query_mask": s_mask, "segment_scores": sc, "proposal_scores": scores,
               "proposal_mask": cells, "video_mask": v_mask,
               "cq_attention": (col / col.sum(1, keepdim=True).clamp_min(1e-12)).transpose(1, 2)}
        for name, dim in (("start", 2), ("end", 1)):  # display marginals of the segment map
            best = scores.amax(dim) * v_mask
            prob = best / best.sum(1, keepdim=True).clamp_min(1e-12)
            out[f"{name}_prob"], out[f"{name}_logits"] = prob, torch.log(prob.clamp_min(1e-30))
        inside = token_stats(p, s_mask)[0] * v_mask
        out["inside_prob"], out["inside_logits"] = inside, torch.logit(inside.clamp(1e-6, 1 - 1e-6))
        if self.training:
            out.update(self._negative(batch, s, s_mask, v, v_mask, sc.detach()))
            if self.recon_head is not None:
                out.update(self._reconstruction(batch, p, s_mask, video, v_mask))
        return out

    def _reconstruction(self, batch: dict, p: torch.Tensor, s_mask: torch.Tensor, video: torch.Tensor,
                        v_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Words predicted from the clips each token's row of P picks: ``recon_logits`` [B, T_q, V];
        text: ``recon_targets`` int64 [B, T_q] (token i's word), speech: ``recon_bag_targets`` int64
        [B, W] (the caption's words) with ``recon_step_mask`` [B, T_q]; -100 = padding or unknown."""
        cos = 2 * p - 1  # P was rescaled from the cosine
        weights = masked_softmax(cos / self.cfg.recon_temperature, v_mask.unsqueeze(1), dim=2)  # [B, T_q, N]
        clips = self.video_proj(video)  # query-free: the word cannot be read back from the clips
        logits = self.recon_head(weights @ clips)
        ids = word_ids(list(batch["sentence"]), self.word_index, self.cfg.max_words, p.device)
        ids = ids.masked_fill(ids <= 1, -100)  # 0 = padding, 1 = unknown
        if self.cfg.query == "speech":
            return {"recon_logits": logits, "recon_bag_targets": ids, "recon_step_mask": s_mask}
        t = min(ids.shape[1], p.shape[1])
        targets = torch.full(p.shape[:2], -100, dtype=torch.long, device=p.device)
        targets[:, :t] = ids[:, :t].masked_fill(~s_mask[:, :t], -100)
        return {"recon_logits": logits, "recon_targets": targets}

    def _negative(self, batch: dict, s, s_mask, v, v_mask, sc: torch.Tensor) -> dict[str, torch.Tensor]:
        """S-: the nearest query of another video; text tokens shared with the positive are masked.
        ``sc`` [B, N, N]: the matched pair's (detached) segment scores, read by ``erase_negative``."""
        j, valid = negative_indices(list(batch["video_id"]), -1)
        j, valid = j.to(v.device), valid.to(v.device)
        neg_mask = s_mask[j]
        if self.cfg.query == "text":
            ids = self.tokens.ids(list(batch["sentence"])).to(v.device)  # [B, T_w]
            neg_ids = ids[j]
            shared = (neg_ids.unsqueeze(2) == ids.unsqueeze(1)).any(2) & (neg_ids > 1)
            neg_mask = neg_mask & ~shared
            all_gone = ~neg_mask.any(1)
            valid = valid & ~all_gone
            neg_mask = neg_mask | (all_gone.unsqueeze(1) & s_mask[j])  # keep the row finite; item dropped
        out = {"neg_best": self._pair_best(s[j], neg_mask, v, v_mask), "neg_valid": valid}
        if self.cfg.erase_negative:
            out.update(self._erased(s, s_mask, v, v_mask, sc))
        if self.cfg.swap_negative:  # S~: the caption with one word swapped, on its own video
            seed = zlib.crc32("\n".join(batch["sentence"]).encode("utf-8"))
            swapped, ok = swapped_captions(list(batch["sentence"]), list(batch["video_id"]), seed)
            out["swap_best"] = self._pair_best(*self._query({"sentence": swapped}, v.device), v, v_mask)
            out["swap_valid"] = torch.tensor(ok, dtype=torch.bool, device=v.device)
        if self.cfg.sibling_negative:  # S^: another caption of the same video, on that video
            if "sibling_sentence" not in batch:
                raise ValueError("sibling_negative needs batch['sibling_sentence'] (the weak task's collate gives it)")
            s_j, m_j = self._query({"sentence": list(batch["sibling_sentence"])}, v.device)
            out["sibling_scores"] = self._segment_scores(self.align(s_j, m_j, v, v_mask), m_j, v_mask)
            out["sibling_valid"] = torch.as_tensor(batch["sibling_valid"], dtype=torch.bool, device=v.device)
        if self.cfg.negative_video:  # V-: the same query on the nearest item of another video
            jv, valid_v = negative_indices(list(batch["video_id"]), +1)
            jv = jv.to(v.device)
            out["neg_video_best"] = self._pair_best(s, s_mask, v[jv], v_mask[jv])
            out["neg_video_valid"] = valid_v.to(v.device)
        return out

    def _query(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The query's tokens, projected: S float [B, T_q, d] and its mask bool [B, T_q]."""
        s, lengths = self.tokens(batch)
        s_mask = lengths_to_mask(lengths.to(device), s.shape[1])
        return self.drop(self.query_proj(s.to(device))), s_mask

    def _erased(self, s, s_mask, v, v_mask, sc: torch.Tensor) -> dict[str, torch.Tensor]:
        """V without its moment: the query's best score on its own video once the clips of its best
        segment under ``sc`` (the forward pass's detached segment scores [B, N, N]; at most
        ``erase_max_share`` of the clips) are masked out; only segments wholly before or after the
        gap count.

        Returns ``erased_best`` float [B] and ``erased_valid`` bool [B] (False when nothing is left).
        """
        with torch.no_grad():
            n = v.shape[1]
            clips = torch.arange(n, device=v.device).unsqueeze(0)
            length = segment_lengths(n, v.device)
            longest = (v_mask.sum(1) * self.cfg.erase_max_share).floor().clamp_min(1).view(-1, 1, 1)  # [B, 1, 1]
            allowed = segment_cells(v_mask) & (length.unsqueeze(0) <= longest)
            best = sc.masked_fill(~allowed, float("-inf")).flatten(1).argmax(1)
            start, end = best // n, best % n  # [B]
            gap = (clips >= start.unsqueeze(1)) & (clips <= end.unsqueeze(1))  # [B, N]
            kept = v_mask & ~gap
            valid = kept.any(1)
            kept = torch.where(valid.unsqueeze(1), kept, v_mask)  # keep the row finite; item dropped
            # a segment may not straddle the gap: end before its start, or start after its end
            ends, starts = clips.unsqueeze(1), clips.unsqueeze(2)  # [1, 1, N] ends, [1, N, 1] starts
            apart = (ends < start.view(-1, 1, 1)) | (starts > end.view(-1, 1, 1))  # [B, N, N]
        sc_e = self._segment_scores(self.align(s, s_mask, v, kept), s_mask, kept)
        cells = segment_cells(kept) & (apart | ~valid.view(-1, 1, 1))
        return {"erased_best": sc_e.masked_fill(~cells, float("-inf")).flatten(1).amax(1), "erased_valid": valid}

    def _segment_scores(self, p: torch.Tensor, s_mask: torch.Tensor, v_mask: torch.Tensor) -> torch.Tensor:
        """SC [B, N, N] of an alignment map under this config's rules."""
        return segment_scores(p, s_mask, v_mask, self.cfg.empty_outside, self.cfg.outside_stat)

    def _pair_best(self, s, s_mask, v, v_mask) -> torch.Tensor:
        """Best segment score float [B] of the pairs (S_b, V_b): interaction, map, SC, max over segments."""
        return best_segment_score(self._segment_scores(self.align(s, s_mask, v, v_mask), s_mask, v_mask), v_mask)

    def loss(self, out: dict[str, torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L = (w_t L_t + w_i L_i + w_o L_o) / 3 (+ recon_weight L_rec); reads no timestamp.

        Returns:
            (scalar loss, {"loss", "triplet_loss", "inside_loss", "outside_loss", "pos_score", "neg_score"}).
        """
        if "neg_best" not in out:
            raise ValueError("FSAN loss needs the negative query: call the model in training mode")
        sc = out["segment_scores"]
        best = best_segment_score(sc, out["video_mask"])
        lt = triplet_loss(best, out["neg_best"], out["neg_valid"], self.cfg.margin)
        if "neg_video_best" in out:  # both negatives, summed as in SIL's MIL loss
            lt = lt + triplet_loss(best, out["neg_video_best"], out["neg_video_valid"], self.cfg.margin)
        if "swap_best" in out:  # and lower with one of its words swapped
            lt = lt + triplet_loss(best, out["swap_best"], out["swap_valid"], self.cfg.margin)
        if "sibling_scores" in out:  # each caption wins its own best segment against its sibling
            lt = lt + sibling_loss(sc, out["sibling_scores"], out["video_mask"], out["sibling_valid"], self.cfg.margin)
        if "erased_best" in out:  # the query must score lower once its segment is gone
            lt = lt + triplet_loss(best, out["erased_best"], out["erased_valid"], self.cfg.margin)
        li, lo = inside_outside_losses(out["alignment_map"], out["query_mask"], out["video_mask"], sc,
                                       temperature=self.cfg.weight_temperature)
        w = self.cfg.loss_weights
        total = (w[0] * lt + w[1] * li + w[2] * lo) / 3
        extra = {}
        if "recon_logits" in out:
            rec = reconstruction_loss(out)
            total, extra = total + self.cfg.recon_weight * rec, {"recon_loss": rec.detach()}
        logs = {**extra, "loss": total.detach(), "triplet_loss": lt.detach(), "inside_loss": li.detach(),
                "outside_loss": lo.detach(), "pos_score": best.mean().detach(), "neg_score": out["neg_best"].mean().detach()}
        return total, logs


def reconstruction_loss(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """L_rec of ``FSANGrounder._reconstruction``'s output: per-token cross-entropy (text) or the
    bag-of-words mixture (speech); 0 when the batch holds no known word."""
    if "recon_bag_targets" in out:
        return bag_of_words_nll(out["recon_logits"], out["recon_step_mask"], out["recon_bag_targets"])
    targets = out["recon_targets"].flatten()
    if not bool((targets >= 0).any()):
        return out["recon_logits"].sum() * 0.0
    return F.cross_entropy(out["recon_logits"].flatten(0, 1), targets, ignore_index=-100)


def build_fsan(cfg: FSANConfig) -> FSANGrounder:
    """Build the FSAN grounder from its config alone (text queries need ``cfg.vocab``)."""
    tokens = TextTokens(cfg) if cfg.query == "text" else SpeechTokens(cfg)
    return FSANGrounder(cfg, tokens)
