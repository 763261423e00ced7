"""FSAN training: weak grounding (no timestamps) with text words or speech steps as tokens.

Selected by ``svg_core.engine.training`` (``python -m svg_core.train``)::

    python -m svg_core.train --model fsan_text --data DIR --out runs/fsan_text      # the paper
    python -m svg_core.train --model fsan_speech --data DIR --out runs/fsan_speech  # spoken FSAN

Config fields are set with ``--set`` (e.g. ``--set layers=3 --set margin=0.3``; spoken FSAN over the
frozen Whisper front-end: ``--set audio_frontend=whisper_base``). The run reuses
SIL's ``WeakGroundingTask``: the training batches carry no timestamps (``weak_collate``; the
text model keeps the caption, which is its query), and the best epoch is chosen on val R1@0.5
then mIoU, which reads the val split's timestamps; metrics.json and summary.json say so.
"""

from __future__ import annotations

from typing import Any

import torch

from svg_core.data.dataset import DatasetLayout
from svg_core.engine.sil_training import WEAK_NOTES, WeakGroundingTask
from svg_core.models import FSANConfig, build_model, build_vocab

QUERY_OF_MODEL = {"fsan_text": "text", "fsan_speech": "speech"}


def fsan_config(args: Any, train_sentences: list[str]) -> FSANConfig:
    """The FSAN config of ``--model fsan_text|fsan_speech``, ``--preset`` and ``--set`` (the text
    vocabulary from the training captions)."""
    from svg_core.engine.run_data import parse_overrides

    fields = parse_overrides(getattr(args, "overrides", []) or [], FSANConfig)
    if "query" in fields and fields["query"] != QUERY_OF_MODEL[args.model]:
        raise ValueError(f"--model {args.model} sets query={QUERY_OF_MODEL[args.model]}; drop --set query=...")
    factory = FSANConfig.small if args.preset == "small" else FSANConfig.paper
    query = QUERY_OF_MODEL[args.model]
    if query == "text" or float(fields.get("recon_weight", 0.0)) > 0:  # the words read or predicted
        fields["vocab"] = build_vocab(train_sentences, int(fields.get("min_count", 1)))
    return factory(**{"seed": args.seed, **fields, "query": query})


def build_fsan_task(args: Any) -> WeakGroundingTask:
    """The task of ``--model fsan_text`` or ``--model fsan_speech`` (the model seeded by ``--seed``)."""
    from svg_core.engine.run_data import make_datasets

    if args.stage != "ground":
        raise ValueError(f"--model {args.model} has no pre-training stage: drop --stage pretrain")
    if args.pretrained_encoder:
        raise ValueError(f"--model {args.model} takes no --pretrained-encoder (its encoders train from scratch)")
    train_records = DatasetLayout.from_dir(args.data).records("train")[0]
    if args.max_train_items is not None:
        train_records = train_records[: args.max_train_items]
    cfg = fsan_config(args, [r.sentence for r in train_records])
    train, val = make_datasets(args, with_audio=cfg.query == "speech", n_video_frames=cfg.n_video_frames,
                               audio_frontend=cfg.audio_frontend, frontend_pool=cfg.frontend_pool)
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    notes = dict(WEAK_NOTES, query_tokens="caption words" if cfg.query == "text" else "speech encoder steps")
    siblings = None
    if cfg.sibling_negative:  # every training caption per video (no timestamps)
        siblings = {}
        for r in train_records:
            siblings.setdefault(r.video_id, []).append(r.sentence)
    return WeakGroundingTask(model, cfg, train, val, args.eval_batch_size, not args.no_progress, notes,
                             keep_sentence=cfg.query == "text" or cfg.recon_weight > 0, siblings=siblings)
