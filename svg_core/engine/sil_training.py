"""SIL training: weak grounding (no timestamps) and ASP pre-training of its speech encoder.

Selected by ``svg_core.engine.training`` (``python -m svg_core.train``)::

    # 1. ASP pre-training on the train split's speech and captions -> OUT/encoder
    python -m svg_core.train --stage pretrain --model sil_asp --data DIR --out runs/sil_asp
    # 2. weak grounding with the (frozen) pre-trained encoder
    python -m svg_core.train --model sil --data DIR --pretrained-encoder runs/sil_asp/encoder --out runs/sil
    # the paper's "Base" (no pre-training, speech encoder trained from scratch without CIF)
    python -m svg_core.train --model sil --data DIR --out runs/sil_base
    # SIL on the pre-trained speech front-end (frozen Whisper base encoder, cached features)
    python -m svg_core.train --model sil --data DIR --set audio_frontend=whisper_base --out runs/sil_whisper

Ablations are config fields set with ``--set``: ASP tasks ``use_robustness``, ``use_conciseness``,
``use_ctc``, ``use_seq``, ``use_word`` (and ``ctc_unit=char``); grounding ``use_avcl``,
``use_speech_negative``, ``freeze_speech_encoder=false`` (fine-tune the pre-trained encoder).

Timestamps: the weak task's batches carry none (``weak_collate`` drops them), so the loss cannot
read them. Choosing the best epoch on val does read the val split's timestamps (as the paper
does); the run summary, metrics.json and the model card say so.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from svg_core.audio.frontend import log_mel
from svg_core.data.dataset import DatasetLayout, GroundingDataset, collate_batch
from svg_core.engine.checkpoint import load_checkpoint, unwrap_model
from svg_core.engine.inference import model_device, move_batch, predict_split
from svg_core.engine.metrics import compute_metrics
from svg_core.models import ASPConfig, SILConfig, TextConfig, build_model, build_vocab
from svg_core.models.text import tokenize

#: batch keys that carry a moment's position; the weak task never lets them into a batch
TIMESTAMP_KEYS = ("start_idx", "end_idx", "start_label", "end_label", "inside", "start_sec", "end_sec")
WEAK_NOTES = {
    "supervision": "weakly supervised: training batches are (video, spoken query) pairs with no timestamps",
    "model_selection": "best epoch chosen on val R1@0.5 then mIoU, which reads the val split's timestamps"
                       " (as the SIL paper does); the test split is never used",
}


def weak_collate(items: list[dict], keep_sentence: bool = False) -> dict:
    """``collate_batch`` without the timestamps (and the caption unless it is the query, FSAN text):
    what the weak model may see."""
    batch = collate_batch(items)
    for key in (*TIMESTAMP_KEYS, *(() if keep_sentence else ("sentence",))):
        batch.pop(key, None)
    return batch


def sibling_captions(records: list, siblings: dict[str, list[str]], turn: int) -> tuple[list[str], list[bool]]:
    """Per record, another caption of its video: the ``turn``-th (cyclic, offset by a hash of the
    caption) of the video's other distinct captions in ``siblings``. Reads no timestamp.

    Returns:
        (captions, valid): valid False (caption returned as is) where the video has no other caption.
    """
    out, valid = [], []
    for r in records:
        others = [x for x in dict.fromkeys(siblings.get(r.video_id, [])) if x != r.sentence]
        if not others:
            out.append(r.sentence)
            valid.append(False)
            continue
        out.append(others[(zlib.crc32(r.sentence.encode("utf-8")) + turn) % len(others)])
        valid.append(True)
    return out, valid


# ---------------------------------------------------------------------------------------------
# Sentence embeddings for L_seq (the text side of ASP)
# ---------------------------------------------------------------------------------------------


def word_vector(word: str, dim: int) -> np.ndarray:
    """A fixed random unit vector per word, seeded by the word itself (no file, no vocabulary order)."""
    v = np.random.default_rng(zlib.crc32(word.encode("utf-8"))).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


@torch.no_grad()
def sentence_embeddings(sentences: list[str], cfg: ASPConfig) -> np.ndarray:
    """Embeddings of captions for the sentence-level objective, float32 [N, E].

    ``cfg.sentence_encoder``:

    - ``text_checkpoint``: the project's own text grounder (``cfg.sentence_encoder_path``, e.g. the
      shipped ``checkpoints/text``), frozen: the masked mean of its BiGRU word states (E = its D).
    - ``words``: the mean of fixed random word vectors (E = ``cfg.text_emb_dim``): no file needed;
      it carries which words a caption has, not what they mean.

    MiniLM/GloVe are not used: neither is installed offline here (docs: offline-assets.md).

    Raises:
        ValueError: a missing or non-text checkpoint.
    """
    if cfg.sentence_encoder == "words":
        rows = [np.mean([word_vector(w, cfg.text_emb_dim) for w in tokenize(s)] or [np.zeros(cfg.text_emb_dim, np.float32)], 0)
                for s in sentences]
        return np.stack(rows).astype(np.float32)
    path = Path(cfg.sentence_encoder_path)
    if not (path / "config.json").is_file():
        raise ValueError(f"sentence encoder checkpoint {path} not found: train a text grounder (--model text) or "
                         "pass --set sentence_encoder_path=DIR, or --set sentence_encoder=words")
    model, text_cfg, _ = load_checkpoint(path)
    if not isinstance(text_cfg, TextConfig):
        raise ValueError(f"sentence_encoder_path must be a text grounder checkpoint, found {type(text_cfg).__name__} at {path}")
    out = []
    for i in range(0, len(sentences), 256):
        h, lengths, _ = model.query_encoder({"sentence": sentences[i:i + 256]})  # [b, W, D]
        mask = (torch.arange(h.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1).float()
        out.append(((h * mask).sum(1) / mask.sum(1).clamp_min(1)).numpy())
    return np.concatenate(out).astype(np.float32)


def word_coverage(sentences: list[str], cfg: ASPConfig) -> float | None:
    """Share of caption words the text-checkpoint sentence encoder knows (None for ``words``)."""
    if cfg.sentence_encoder != "text_checkpoint":
        return None
    vocab = set(json.loads((Path(cfg.sentence_encoder_path) / "config.json").read_text(encoding="utf-8")).get("vocab", []))
    words = [w for s in sentences for w in tokenize(s)]
    return sum(w in vocab for w in words) / max(len(words), 1)


class SentenceBank:
    """Caption -> row of an embedding table; negatives are drawn from the training captions.

    Args:
        train_sentences: captions of the training split (the negative pool).
        other_sentences: further captions that need an embedding (val).
        cfg: the ASP config (which sentence encoder).
    """

    def __init__(self, train_sentences: list[str], other_sentences: list[str], cfg: ASPConfig) -> None:
        unique = list(dict.fromkeys([*train_sentences, *other_sentences]))
        self.row = {s: i for i, s in enumerate(unique)}
        self.table = torch.from_numpy(sentence_embeddings(unique, cfg))
        self.pool = np.array(sorted({self.row[s] for s in train_sentences}), dtype=np.int64)
        self.n_negatives, self.seed = cfg.seq_negatives, cfg.seed
        self.coverage = word_coverage(train_sentences, cfg)
        if self.coverage is not None and self.coverage < 0.5:
            warnings.warn(f"the sentence encoder {cfg.sentence_encoder_path} knows only {self.coverage:.0%} of the training"
                          " caption words: unknown words embed alike, so L_seq learns little (--set sentence_encoder=words)",
                          stacklevel=2)

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def add_to(self, batch: dict) -> dict:
        """Add ``sentence_emb`` [B, E], ``negative_emb`` [N, E], ``negative_same`` bool [B, N].

        The N negatives are drawn from the pool by a generator seeded on the batch's query ids,
        so the same batch always gets the same negatives (any worker, any process).
        """
        rows = torch.tensor([self.row[s] for s in batch["sentence"]], dtype=torch.long)
        key = zlib.crc32("\n".join(batch["query_id"]).encode("utf-8"))
        rng = np.random.default_rng([self.seed, key])
        k = min(self.n_negatives, len(self.pool))
        neg = torch.from_numpy(rng.choice(self.pool, size=k, replace=False)) if k else torch.zeros(0, dtype=torch.long)
        batch.update(sentence_emb=self.table[rows], negative_emb=self.table[neg],
                     negative_same=rows.unsqueeze(1) == neg.unsqueeze(0))
        return batch


# ---------------------------------------------------------------------------------------------
# ASP data: speech (+ waveform) and captions
# ---------------------------------------------------------------------------------------------


class SpeechTextDataset:
    """The spoken queries and captions of a ``GroundingDataset`` (no video, no timestamps).

    Items: ``record``, ``audio`` (log-Mel [T, 128], with this epoch's noise) and, with
    ``with_wave``, ``wave`` (the same noisy 16 kHz waveform) for the robustness task.
    """

    def __init__(self, base: GroundingDataset, with_wave: bool) -> None:
        self.base, self.with_wave = base, with_wave
        self.noise, self.seed, self.records = base.noise, base.seed, base.records

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        record = self.base.records[index]
        cache = self.base.speech_cache
        clean = self.noise is None or self.noise.preset == "clean"
        if clean and not self.with_wave and cache is not None and record.wav_name in cache:
            return {"record": record, "audio": torch.from_numpy(cache.mel(record.wav_name))}
        wave, _, _ = self.base.noisy_wave(index)
        item = {"record": record, "audio": log_mel(wave)}
        if self.with_wave:
            item["wave"] = torch.from_numpy(np.asarray(wave, dtype=np.float32))
        return item


def speech_text_collate(items: list[dict], bank: SentenceBank | None) -> dict:
    """Padded batch: ``audio`` [B, T, 128], ``audio_lengths``, optional ``wave`` [B, n] and
    ``wave_lengths``, ``sentence``, ``query_id``, ``video_id`` and the sentence embeddings."""
    pad = torch.nn.utils.rnn.pad_sequence
    records = [it["record"] for it in items]
    mels = [torch.as_tensor(it["audio"], dtype=torch.float32) for it in items]
    batch = {"audio": pad(mels, batch_first=True), "audio_lengths": torch.tensor([len(m) for m in mels]),
             "sentence": [r.sentence for r in records], "query_id": [r.query_id for r in records],
             "video_id": [r.video_id for r in records]}
    if "wave" in items[0]:
        batch["wave"] = pad([it["wave"] for it in items], batch_first=True)
        batch["wave_lengths"] = torch.tensor([len(it["wave"]) for it in items])
    return bank.add_to(batch) if bank is not None else batch


# ---------------------------------------------------------------------------------------------
# Tasks for engine.loop.fit
# ---------------------------------------------------------------------------------------------


@dataclass
class WeakGroundingTask:
    """SIL weak grounding: MIL + diversity + AVCL on batches without timestamps.

    Validation is ``predict_split`` + the one evaluator on val (reads val timestamps: model
    selection as in the paper); ``run_notes`` goes into metrics.json and summary.json.
    """

    model: nn.Module
    cfg: SILConfig
    train_set: GroundingDataset
    val_set: GroundingDataset
    eval_batch_size: int = 32
    progress: bool = True
    run_notes: dict = dataclasses.field(default_factory=lambda: dict(WEAK_NOTES))
    keep_sentence: bool = False  # True when the caption is the query (FSAN text)
    # FSAN sibling_negative: every training caption of each video (no timestamps); the batch then
    # carries, per item, another caption of its video (``sibling_sentence``, ``sibling_valid``)
    siblings: dict[str, list[str]] | None = None
    _batches: int = 0  # batches collated so far: rotates which sibling an item gets

    def collate(self, items: list[dict]) -> dict:
        batch = weak_collate(items, self.keep_sentence)
        if self.siblings is not None:
            batch["sibling_sentence"], batch["sibling_valid"] = sibling_captions(
                [it["record"] for it in items], self.siblings, self._batches)
            self._batches += 1
        return batch

    def move(self, batch: dict, device: torch.device) -> dict:
        return move_batch(batch, device)

    def compute_loss(self, model: nn.Module, batch: dict, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        out = model(batch)
        loss, logs = unwrap_model(model).loss(out, batch)
        return loss, {k: v for k, v in logs.items() if k != "loss"}

    def evaluate(self, model: nn.Module) -> dict:
        return compute_metrics(predict_split(model, self.val_set, batch_size=self.eval_batch_size, progress=self.progress))

    def score(self, metrics: dict) -> tuple:
        return (metrics["R1@0.5"], metrics["mIoU"])


@dataclass
class ASPPretrainTask:
    """ASP pre-training: L_ASP on the train split's speech and captions; val = mean val losses."""

    model: nn.Module
    cfg: ASPConfig
    train_set: SpeechTextDataset
    val_set: SpeechTextDataset
    bank: SentenceBank | None
    eval_batch_size: int = 32
    progress: bool = True
    run_notes: dict = dataclasses.field(default_factory=dict)

    def collate(self, items: list[dict]) -> dict:
        return speech_text_collate(items, self.bank)

    def move(self, batch: dict, device: torch.device) -> dict:
        return move_batch(batch, device)

    def compute_loss(self, model: nn.Module, batch: dict, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        bare = unwrap_model(model)
        bare.set_progress(step, total_steps)  # seeds this step's word masks
        loss, logs = bare.loss(model(batch), batch)
        return loss, {k: v for k, v in logs.items() if k != "loss"}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict:
        from torch.utils.data import DataLoader

        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        n = 0
        for batch in DataLoader(self.val_set, batch_size=self.eval_batch_size, collate_fn=self.collate):
            batch = move_batch(batch, model_device(model))
            _, logs = model.loss(model(batch), batch)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(batch["query_id"])
            n += len(batch["query_id"])
        model.train(was_training)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def score(self, metrics: dict) -> tuple:
        return (-metrics["loss"],)


# ---------------------------------------------------------------------------------------------
# Building runs
# ---------------------------------------------------------------------------------------------


def build_sil_with_pretrained(cfg: SILConfig) -> nn.Module:
    """Build a SIL grounder; with ``pretrained_encoder`` (and ``asp`` unset) attach an ASP encoder.

    Reads the ASP checkpoint, stores its config as ``cfg.asp`` (so the grounding checkpoint
    reloads without the path) and copies its speech-encoder weights.

    Raises:
        ValueError: the path is not a checkpoint of an ``ASPConfig`` model.
    """
    if cfg.pretrained_encoder is None or cfg.asp is not None:
        return build_model(cfg)
    asp_model, asp_cfg, _ = load_checkpoint(cfg.pretrained_encoder)
    if not isinstance(asp_cfg, ASPConfig):
        raise ValueError(f"--pretrained-encoder for --model sil must be an ASP checkpoint (OUT/encoder of "
                         f"--stage pretrain --model sil_asp), found a {type(asp_cfg).__name__} at {cfg.pretrained_encoder}")
    if asp_cfg.n_mels != cfg.n_mels:
        raise ValueError(f"the ASP encoder expects {asp_cfg.n_mels} mels, the SIL config has {cfg.n_mels}")
    model = build_model(replace(cfg, asp=asp_cfg))
    model.speech.encoder.load_state_dict(asp_model.encoder.state_dict())
    return model


def build_sil_task(args: Any) -> WeakGroundingTask | ASPPretrainTask:
    """The task of ``--model sil`` (grounding) or ``--stage pretrain --model sil_asp``."""
    from svg_core.engine.run_data import make_datasets, parse_overrides  # the shared recipe parts

    overrides = getattr(args, "overrides", []) or []
    train_records = DatasetLayout.from_dir(args.data).records("train")[0]
    if args.max_train_items is not None:
        train_records = train_records[: args.max_train_items]
    if args.model == "sil_asp":
        if args.stage != "pretrain":
            raise ValueError("--model sil_asp is the SIL speech-encoder pre-training: add --stage pretrain")
        fields = parse_overrides(overrides, ASPConfig)
        factory = ASPConfig.small if args.preset == "small" else ASPConfig.paper
        cfg = factory(**{"seed": args.seed, **fields})
        cfg = replace(cfg, vocab=build_vocab([r.sentence for r in train_records]))
        train, val = make_datasets(args, with_audio=True, n_video_frames=32)
        bank = None
        if cfg.use_seq:
            bank = SentenceBank([r.sentence for r in train.records], [r.sentence for r in val.records], cfg)
            cfg = replace(cfg, text_emb_dim=bank.dim)
        torch.manual_seed(args.seed)
        notes = {"sentence_encoder": cfg.sentence_encoder if cfg.use_seq else None,
                 "sentence_encoder_path": (cfg.sentence_encoder_path
                                           if cfg.use_seq and cfg.sentence_encoder == "text_checkpoint" else None),
                 "sentence_encoder_word_coverage": bank.coverage if bank is not None else None,
                 "pretraining_data": "the train split's spoken queries and captions (the paper: LibriSpeech + GloVe)"}
        return ASPPretrainTask(build_model(cfg), cfg, SpeechTextDataset(train, cfg.use_robustness),
                               SpeechTextDataset(val, cfg.use_robustness), bank, args.eval_batch_size,
                               not args.no_progress, notes)
    if args.stage != "ground":
        raise ValueError(f"--stage pretrain takes --model sil_asp for SIL, found {args.model!r}")
    fields = parse_overrides(overrides, SILConfig)
    if args.pretrained_encoder:
        fields["pretrained_encoder"] = str(args.pretrained_encoder)
    cfg = (SILConfig.small if args.preset == "small" else SILConfig.paper)(**fields)
    train, val = make_datasets(args, with_audio=True, n_video_frames=cfg.n_video_frames,
                               audio_frontend=cfg.audio_frontend, frontend_pool=cfg.frontend_pool)
    torch.manual_seed(args.seed)
    model = build_sil_with_pretrained(cfg)
    if cfg.audio_frontend != "logmel":
        speech = f"the frozen {cfg.audio_frontend} encoder (pre-trained speech front-end) + a trained adapter"
    elif cfg.pretrained_encoder:
        speech = f"pre-trained ({cfg.pretrained_encoder}), " + ("frozen" if cfg.freeze_speech_encoder else "fine-tuned")
    else:
        speech = "trained from scratch (the paper's Base: no ASP, no CIF)"
    notes = dict(WEAK_NOTES, speech_encoder=speech)
    return WeakGroundingTask(model, model.cfg, train, val, args.eval_batch_size, not args.no_progress, notes)
