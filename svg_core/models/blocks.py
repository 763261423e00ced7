"""Shared layers of the grounding models: masks, ResDAVEnet stages, attention, predictor heads.

Every sequence travels as a ``(x, lengths)`` pair or with a boolean mask (True = valid), and
every module zeroes padded positions on its way out, so a padded batch gives the same outputs
as each item run alone (eval mode). Shapes: B = batch, T = time steps, C = channels.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean validity mask from lengths.

    Args:
        lengths: int64 [B], valid steps per item.
        max_len: T, the padded length.

    Returns:
        bool [B, T], True at valid steps.
    """
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def masked_fill_min(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set invalid positions to the dtype's smallest finite value (softmax gives them exactly 0).

    A finite fill (instead of -inf) keeps ``0 * log_softmax`` finite in KL/CE losses.

    Args:
        logits: float [..., T].
        mask: bool broadcastable to ``logits``, True at valid positions.

    Returns:
        float [..., T].
    """
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over valid positions only; a row with no valid position gives all zeros.

    Args:
        logits: float [..., T, ...].
        mask: bool broadcastable to ``logits``, True at valid positions.
        dim: the axis to normalise.

    Returns:
        float, same shape as ``logits``; sums to 1 over ``dim`` where any position is valid.
    """
    mask = mask.expand_as(logits)
    probs = torch.softmax(masked_fill_min(logits, mask), dim=dim)
    return probs * mask.to(probs.dtype)


def run_rnn(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a batch-first GRU/LSTM on packed sequences so padding never leaks in.

    Args:
        rnn: a batch-first ``nn.GRU`` or ``nn.LSTM``.
        x: float [B, T, C_in].
        lengths: int64 [B]; values below 1 are treated as 1 (the step then sees padding zeros).

    Returns:
        float [B, T, C_out], zeros at padded steps.
    """
    lengths_cpu = lengths.clamp(min=1, max=x.shape[1]).to("cpu", torch.int64)
    if not rnn.bidirectional or bool((lengths_cpu == x.shape[1]).all()):
        # Fast path (the packed CPU kernels run step by step and are ~5x slower in training):
        # a forward-only RNN never sees the padding at the end before a valid step, and with no
        # padding at all packing changes nothing. Padded outputs are zeroed as in the packed path.
        out, _ = rnn(x)
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths_cpu.to(x.device)[:, None]
        return out * valid.unsqueeze(-1).to(out.dtype)
    packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


def stack_frames(x: torch.Tensor, lengths: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame stacking: ``factor`` consecutive frames become one step (time sub-sampling).

    Step s holds frames [s * k, (s + 1) * k) side by side, frame-major. A 1x1 convolution over
    the stacked steps is a convolution with kernel = stride = k over the frames, so this is the
    cheapest strided front-end: every later layer runs k times fewer steps. A last partial step
    is completed with zero frames; step lengths are ``ceil(lengths / k)``.

    Args:
        x: float [B, T, F].
        lengths: int64 [B], valid frames.
        factor: k >= 1 (1 returns the inputs unchanged).

    Returns:
        (float [B, ceil(T / k), k * F], int64 [B] ceil(lengths / k)), zeros past each item's
        valid frames.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, found {factor}")
    if factor == 1:
        return x, lengths
    batch, frames, width = x.shape
    steps = -(-frames // factor)
    # zero every frame past its item's length, so a partial last step never sees padding content
    x = x * lengths_to_mask(lengths, frames).unsqueeze(-1).to(x.dtype)
    x = F.pad(x, (0, 0, 0, steps * factor - frames)).reshape(batch, steps, factor * width)
    return x, torch.div(lengths + factor - 1, factor, rounding_mode="floor")


# ---------------------------------------------------------------------------------------------
# ResDAVEnet-style 1-D residual CNN (method-notes 2.2)
# ---------------------------------------------------------------------------------------------


def conv_out_lengths(lengths: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """Output lengths of a 1-D convolution, ``floor((L + 2p - k) / s) + 1`` clamped at 0.

    Args:
        lengths: int64 [B].

    Returns:
        int64 [B].
    """
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor").add(1).clamp(min=0)


class ResBlock1d(nn.Module):
    """ResDAVEnet basic block: conv(k) -> BN -> ReLU -> conv(k) -> BN, plus a skip, then ReLU.

    The original applies (1 x k) 2-D convolutions to a (C, 1, T) map; a 1-D convolution over
    time is the same operation. The first block of a stage has stride 2 and a 1x1 stride-2
    projection on the skip path.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: temporal kernel width (9 in ResDAVEnet).
        stride: 1 or 2.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 9, stride: int = 1) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd, found {kernel}")
        self.kernel, self.stride = kernel, stride
        pad = kernel // 2
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_ch)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_ch)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.skip = nn.Sequential(
                nn.Conv1d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm1d(out_ch)
            )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x float [B, C_in, T] (zeros at padding), lengths int64 [B].

        Returns:
            (float [B, C_out, T'], int64 [B]) with T' = ceil(T / stride); zeros at padding.
        """
        out_len = conv_out_lengths(lengths, self.kernel, self.stride, self.kernel // 2)
        mask = lengths_to_mask(out_len, math.ceil(x.shape[-1] / self.stride)).unsqueeze(1)
        h = F.relu(self.bn1(self.conv1(x))) * mask  # re-zero padding before the next conv
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.skip(x)) * mask, out_len


class ResDAVEnet(nn.Module):
    """Stem (per-frame linear projection of the whole input column) + residual stages.

    Each stage halves time (first block stride 2). Method-notes 2.2: DAVEnet1 = 128 mel ->
    stem 128 -> stages (128, 256) x 1 block; DAVEnet2 = 256 -> stem 256 -> stages (512, 1024) x 2.

    Args:
        in_dim: input feature size per frame (the "frequency" axis H).
        stem_dim: C0, channels after the stem (Conv2d(1, C0, (H, 1)) == Conv1d(H, C0, 1)).
        stage_dims: output channels of each stage.
        blocks_per_stage: residual blocks in each stage.
        kernel: temporal kernel width.
    """

    def __init__(
        self,
        in_dim: int,
        stem_dim: int,
        stage_dims: tuple[int, ...],
        blocks_per_stage: tuple[int, ...],
        kernel: int = 9,
    ) -> None:
        super().__init__()
        if len(stage_dims) != len(blocks_per_stage):
            raise ValueError(
                f"stage_dims and blocks_per_stage differ in length, found {stage_dims} and {blocks_per_stage}"
            )
        self.stem = nn.Sequential(nn.Conv1d(in_dim, stem_dim, 1, bias=False), nn.BatchNorm1d(stem_dim))
        blocks, ch = [], stem_dim
        for dim, n_blocks in zip(stage_dims, blocks_per_stage):
            for i in range(n_blocks):
                blocks.append(ResBlock1d(ch, dim, kernel, stride=2 if i == 0 else 1))
                ch = dim
        self.blocks = nn.ModuleList(blocks)
        self.out_dim = ch
        self.downsample = 2 ** len(stage_dims)
        for m in self.modules():  # ResDAVEnet init: N(0, sqrt(2 / (k * C_out)))
            if isinstance(m, nn.Conv1d):
                m.weight.data.normal_(0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.out_channels)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x float [B, T, in_dim], lengths int64 [B].

        Returns:
            (float [B, T / 2^stages, out_dim], int64 [B]), zeros at padding.
        """
        mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(1)
        h = F.relu(self.stem(x.transpose(1, 2))) * mask  # [B, C0, T]
        for block in self.blocks:
            h, lengths = block(h, lengths)
        return h.transpose(1, 2), lengths


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


class SelfAttentionEncoder(nn.Module):
    """Linear(d, d) then post-LN transformer encoder layers with key padding (method-notes 2.5).

    Args:
        dim: model width d.
        heads: attention heads.
        layers: encoder layers (0 = only the linear map; the "w/o self-attention" ablation).
        ff_dim: feed-forward width.
        dropout: dropout inside the layers.
    """

    def __init__(self, dim: int, heads: int, layers: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.encoder: nn.TransformerEncoder | None = None
        if layers > 0:
            layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: x float [B, T, d], mask bool [B, T] (True = valid).

        Returns:
            float [B, T, d], zeros at padding.
        """
        h = self.proj(x)
        if self.encoder is not None:
            # the fused fast path gives slightly different numerics for padded vs single items
            h = self.encoder(h, src_key_padding_mask=~mask)
        return h * mask.unsqueeze(-1).to(h.dtype)


class ContextQueryAttention(nn.Module):
    """Additive (tanh) context-query attention with VSLNet fusion, masked (paper Eq. 1-2).

    S_ij = w^T tanh(W1 v_i + b + W2 a_j); S_r = softmax over query steps j (query mask),
    S_c = softmax over video frames i (video mask); beta1 = S_r A, beta2 = S_r S_c^T V;
    F = Linear([V; beta1; V*beta1; V*beta2]). The released code applies no mask (notes 2.6).

    Args:
        dim: width d of both inputs.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_video = nn.Linear(dim, dim)
        self.w_query = nn.Linear(dim, dim, bias=False)
        self.w_score = nn.Linear(dim, 1, bias=False)
        self.fuse = nn.Linear(4 * dim, dim)

    def forward(
        self, video: torch.Tensor, video_mask: torch.Tensor, query: torch.Tensor, query_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            video: float [B, N_v, d]; video_mask: bool [B, N_v].
            query: float [B, T_q, d]; query_mask: bool [B, T_q].

        Returns:
            fused float [B, N_v, d] (zeros at padded frames) and the row-normalised attention
            S_r float [B, N_v, T_q] (rows of padded frames are zero).
        """
        # [B, N_v, 1, d] + [B, 1, T_q, d] -> scores [B, N_v, T_q]
        scores = self.w_score(
            torch.tanh(self.w_video(video).unsqueeze(2) + self.w_query(query).unsqueeze(1))
        ).squeeze(-1)
        pair_mask = video_mask.unsqueeze(2) & query_mask.unsqueeze(1)
        s_row = masked_softmax(scores, pair_mask, dim=2)  # over query steps
        s_col = masked_softmax(scores, pair_mask, dim=1)  # over video frames
        beta1 = s_row @ query  # [B, N_v, d]
        beta2 = s_row @ (s_col.transpose(1, 2) @ video)  # [B, N_v, T_q] @ [B, T_q, d]
        fused = self.fuse(torch.cat([video, beta1, video * beta1, video * beta2], dim=-1))
        return fused * video_mask.unsqueeze(-1).to(fused.dtype), s_row


class AttentionPool(nn.Module):
    """Masked attention pooling of a sequence into one vector (VSLNet's query pooling).

    Args:
        dim: width d.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: x float [B, T, d], mask bool [B, T]. Returns float [B, d]."""
        weights = masked_softmax(self.score(x).squeeze(-1), mask, dim=1)
        return (weights.unsqueeze(-1) * x).sum(1)


# ---------------------------------------------------------------------------------------------
# Predictor heads (paper Eq. 3-5, method-notes 2.7)
# ---------------------------------------------------------------------------------------------


def make_rnn(kind: str, in_dim: int, hidden: int, bidirectional: bool) -> nn.RNNBase:
    """A one-layer batch-first GRU or LSTM; ``kind`` is "gru" (paper) or "lstm" (released code)."""
    if kind == "gru":
        return nn.GRU(in_dim, hidden, batch_first=True, bidirectional=bidirectional)
    if kind == "lstm":
        return nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=bidirectional)
    raise ValueError(f"rnn kind must be 'gru' or 'lstm', found {kind!r}")


class ScoreHead(nn.Module):
    """FFN([F_x; V_a]) -> one logit per frame: Linear -> ReLU -> Linear (the code's 1x1 convs).

    Args:
        rnn_dim: width of the recurrent features F_x.
        dim: width d of the fused features V_a.
    """

    def __init__(self, rnn_dim: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(rnn_dim + dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, rnn_out: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        """Args: rnn_out [B, N, rnn_dim], fused [B, N, d]. Returns logits [B, N]."""
        return self.net(torch.cat([rnn_out, fused], dim=-1)).squeeze(-1)


class RecurrentPredictor(nn.Module):
    """Start/end(/inside) recurrent heads, the end RNN running on the start RNN's output.

    F_s = RNN_s(V_a), F_e = RNN_e(F_s), F_i = RNN_i(V_a); P_x = FFN([F_x; V_a]).

    Args:
        dim: width d of the fused features.
        hidden: hidden units per direction.
        kind: "gru" (paper, unidirectional) or "lstm" (released code, bidirectional).
        bidirectional: run each RNN in both directions.
        with_inside: build the inside head (False for VSLNet, which highlights instead).
    """

    def __init__(self, dim: int, hidden: int, kind: str, bidirectional: bool, with_inside: bool = True) -> None:
        super().__init__()
        out_dim = hidden * (2 if bidirectional else 1)
        self.start_rnn = make_rnn(kind, dim, hidden, bidirectional)
        self.end_rnn = make_rnn(kind, out_dim, hidden, bidirectional)
        self.start_head = ScoreHead(out_dim, dim)
        self.end_head = ScoreHead(out_dim, dim)
        self.inside_rnn = make_rnn(kind, dim, hidden, bidirectional) if with_inside else None
        self.inside_head = ScoreHead(out_dim, dim) if with_inside else None

    def forward(
        self, fused: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Args: fused float [B, N, d], lengths int64 [B] (valid video frames).

        Returns:
            start, end and inside logits, each float [B, N] (inside is None without its head);
            padded frames are not masked here.
        """
        h_start = run_rnn(self.start_rnn, fused, lengths)
        h_end = run_rnn(self.end_rnn, h_start, lengths)
        start = self.start_head(h_start, fused)
        end = self.end_head(h_end, fused)
        inside = None
        if self.inside_rnn is not None and self.inside_head is not None:
            inside = self.inside_head(run_rnn(self.inside_rnn, fused, lengths), fused)
        return start, end, inside


# ---------------------------------------------------------------------------------------------
# Chunk trick (method-notes 2.4)
# ---------------------------------------------------------------------------------------------


def split_chunks(x: torch.Tensor, chunks: int) -> torch.Tensor:
    """Fold channel chunks into the batch: [B, T, C*d] -> [B*C, T, d]; row b*C + c = chunk c of b."""
    b, t, dim = x.shape
    if dim % chunks != 0:
        raise ValueError(f"width {dim} is not divisible by chunk_num {chunks}")
    return x.view(b, t, chunks, dim // chunks).permute(0, 2, 1, 3).reshape(b * chunks, t, dim // chunks)


def repeat_chunks(x: torch.Tensor, chunks: int) -> torch.Tensor:
    """Repeat a per-item tensor for every chunk: [B, ...] -> [B*C, ...] in the split_chunks order."""
    return x.repeat_interleave(chunks, dim=0)
