"""A trained text grounder as the teacher of a spoken-query grounder (cross-modal transfer).

The text model reading the caption is the upper bound the spoken models chase (docs/RESULTS.md:
R1@0.5 81 against 58 for the best spoken model on world 4). Every training item carries its caption
(``batch["sentence"]``), so a frozen text grounder can teach a spoken one at training time only;
at test time the student still hears the speech alone and no text is ever decoded. Two ways, each
switchable on the command line of ``python -m svg_core.train``:

- ``--init-from-text CK``: the student's video encoder, video self-attention, context-query
  attention and heads start from the text model's weights (everything but the query encoder), so
  the spoken path has to learn only a query encoder whose output the grounding side can read;
- ``--distill-from CK --distill-weight W``: W times the KL divergence from the teacher's start
  and end distributions to the student's plus the BCE of the student's inside probability against
  the teacher's, added to the usual supervised loss (knowledge distillation, Hinton et al. 2015).

Both need the teacher's grounding side to match the student's (model width, chunks, video grid).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from svg_core.engine.checkpoint import load_checkpoint, unwrap_model
from svg_core.errors import UserInputError

# what makes the two models' outputs share a grid and their shared modules one meaning; the heads may
# differ (VSLNet's highlighting predictor): init_from_teacher copies only tensors of equal shape, so
# a field that changes a shared tensor's shape (video_kernel: the video conv) must match too, or the
# copy would leave that tensor out without a word
MATCHED_FIELDS = ("model_dim", "chunk_num", "n_video_frames", "video_dim_in", "video_kernel", "video_rnn",
                  "attn_layers", "attn_heads")
SHARED_PREFIXES = ("video_encoder.", "video_attention.", "cqa.", "predictor.")


def load_text_teacher(directory: str | Path, student_cfg) -> nn.Module:
    """A frozen text grounder whose grounding side matches ``student_cfg``.

    Raises:
        UserInputError: the folder is not a text-model checkpoint, or its grounding side differs
            from the student's (the field and both values are named).
    """
    try:
        teacher, cfg, _ = load_checkpoint(directory)
    except ValueError as err:
        raise UserInputError(f"text teacher {directory}: {err}") from err
    if type(cfg).__name__ != "TextConfig":
        raise UserInputError(f"text teacher {directory} is a {type(cfg).__name__} checkpoint, not a text model "
                             "(train one with python -m svg_core.train --model text)")
    for name in MATCHED_FIELDS:
        if getattr(cfg, name) != getattr(student_cfg, name):
            raise UserInputError(f"text teacher {directory} has {name}={getattr(cfg, name)!r}, the student "
                                 f"{getattr(student_cfg, name)!r}: train both with the same --set {name}")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def init_from_teacher(student: nn.Module, teacher: nn.Module) -> list[str]:
    """Copy every grounding-side tensor (not the query encoder) of ``teacher`` into ``student``.

    Returns:
        The names of the copied tensors (parameters and buffers such as BatchNorm statistics).
    """
    student = unwrap_model(student)
    own = student.state_dict()
    copied = {k: v for k, v in teacher.state_dict().items()
              if k.startswith(SHARED_PREFIXES) and k in own and own[k].shape == v.shape}
    student.load_state_dict(copied, strict=False)
    return sorted(copied)


def distill_loss(student_out: dict[str, torch.Tensor], teacher_out: dict[str, torch.Tensor]) -> torch.Tensor:
    """KL(teacher || student) of the start and end distributions + BCE of the inside probability.

    Args:
        student_out, teacher_out: grounder outputs with ``start_prob``, ``end_prob``,
            ``inside_prob`` [B, N_v] and ``video_mask`` [B, N_v].

    Returns:
        A scalar: mean over the batch of KL_start + KL_end, plus the masked mean inside BCE.
    """
    mask = student_out["video_mask"].float()
    total = student_out["start_prob"].new_zeros(())
    for key in ("start_prob", "end_prob"):
        p_t = teacher_out[key].float().clamp_min(1e-12)
        log_s = student_out[key].float().clamp_min(1e-12).log()
        total = total + ((p_t * (p_t.log() - log_s)) * mask).sum(-1).mean()
    p_s = student_out["inside_prob"].float().clamp(1e-6, 1 - 1e-6)
    q = teacher_out["inside_prob"].float()
    bce = -(q * p_s.log() + (1 - q) * (1 - p_s).log())
    return total + (bce * mask).sum() / mask.sum().clamp_min(1.0)
