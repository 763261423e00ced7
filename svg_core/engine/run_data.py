"""What every training recipe builds from its command line: ``--set`` overrides and the datasets.

Shared by ``training.py`` (supervised and pre-training tasks) and the weak / search trainers
(``sil_training``, ``fsan_training``, ``avlnet_training``), which ``training.py`` dispatches to:
kept apart so that none of them imports another's module back.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from svg_core.audio.noise import noise_config_from_args
from svg_core.data.dataset import VAL_SEED_OFFSET, DatasetLayout, GroundingDataset, SpeechCache
from svg_core.models import coerce_fields


def parse_overrides(items: list[str], config_cls: type) -> dict[str, Any]:
    """``["chunk_num=2", "davenet1_dims=64,128"]`` -> typed overrides of ``config_cls``'s fields.

    Each value is converted by the field's annotation (``svg_core.models.coerce_fields``, the same
    conversion config.json goes through), so a typo in a name or a value fails here with the
    list of valid names, not deep in a model.
    """
    # Written here rather than with tyro/simple-parsing: the config dataclasses already describe
    # every field's type, and config.json needs the same conversion (coerce_fields), so a flag
    # library would add a dependency and a second set of rules for ~20 lines.
    valid = ", ".join(sorted(f.name for f in fields(config_cls)))
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in {f.name for f in fields(config_cls)}:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {valid}")
        try:
            out.update(coerce_fields(config_cls, {key: raw}, from_text=True))
        except ValueError as exc:
            raise ValueError(f"--set {item!r}: {exc} (default {getattr(config_cls(), key)!r})") from None
    return out


def frontend_inputs(args: argparse.Namespace, layout: DatasetLayout, noise, audio_frontend: str,
                    frontend_pool: int) -> tuple[Any, Any]:
    """(live encoder, cache) for a speech front-end model; (None, None) for log-Mel models.

    The cache (``--frontend-cache``) is checked against this run's encoder, pooling, noise and
    benchmark (a stale one is refused); without one the encoder runs live on every noisy query.
    """
    if audio_frontend == "logmel":
        return None, None
    from svg_core.audio.whisper_encoder import ENCODER_NAME, SpeechFeatures
    from svg_core.data.frontend_cache import FrontendCache, cache_version, default_cache_path

    live = SpeechFeatures(pool=frontend_pool, device=args.device, cpu_threads=max(1, args.threads))
    choice = getattr(args, "frontend_cache", "auto")
    path = default_cache_path(layout, audio_frontend, frontend_pool, args.noise) if choice == "auto" else Path(choice)
    if choice == "none" or (choice == "auto" and not path.exists()):
        print(f"note: no front-end cache ({path.name}); the {ENCODER_NAME} runs live on every query (slow)")
        return live, None
    expected = cache_version(layout, audio_frontend, ENCODER_NAME, frontend_pool, noise)
    return live, FrontendCache(path, expected, root=layout.root)


def make_datasets(args: argparse.Namespace, with_audio: bool, n_video_frames: int, audio_frontend: str = "logmel",
                  frontend_pool: int = 1, crop_prob: float = 0.0) -> tuple[GroundingDataset, GroundingDataset]:
    """Train and val datasets of ``--data`` with the ``--noise`` preset (val noise fixed at epoch 0).

    ``crop_prob``: the train split's crop augmentation (``GroundingDataset``); val is never cut.

    ``audio_frontend``/``frontend_pool`` come from the model config: "whisper_base" datasets give
    encoder features, read from the front-end cache when there is one (``frontend_inputs``).
    """
    layout = DatasetLayout.from_dir(args.data)
    noise = noise_config_from_args(args.noise, args.esc50)
    train_records = layout.records("train")[0]
    val_records = layout.records("val")[0]
    if args.max_train_items is not None:
        train_records = train_records[: args.max_train_items]
    if args.max_val_items is not None:
        val_records = val_records[: args.max_val_items]
    cache = None
    if with_audio and args.speech_cache != "none":
        path = layout.root / "speech_cache.h5" if args.speech_cache == "auto" else Path(args.speech_cache)
        if path.exists():
            cache = SpeechCache(path)
        elif args.speech_cache != "auto":
            raise ValueError(f"--speech-cache {path} does not exist (build it with python -m svg_core.data cache DIR)")
    live, features = frontend_inputs(args, layout, noise, audio_frontend, frontend_pool) if with_audio else (None, None)
    common = dict(n_video_frames=n_video_frames, noise=noise, with_audio=with_audio, speech_cache=cache, frontend=live)
    train = GroundingDataset(layout, "train", seed=args.seed, records=train_records, frontend_cache=features,
                             crop_prob=crop_prob, **common)
    # A different seed for val: its noise must not repeat the training draws.
    # the cached val draw is the live one only when it was made with this run's val seed
    val_cache = features if features is not None and features.seeds.get("val") == args.seed + VAL_SEED_OFFSET else None
    val = GroundingDataset(layout, "val", seed=args.seed + VAL_SEED_OFFSET, records=val_records,
                           frontend_cache=val_cache, **common)
    return train, val


# ---------------------------------------------------------------------------------------------
# Tasks (what fit() trains)
# ---------------------------------------------------------------------------------------------
