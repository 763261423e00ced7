"""The grounding Dataset: a folder in the ActivityNet Speech layout -> padded, masked batches.

Folder layout (real data or the synthetic benchmark; see docs/ARCHITECTURE.md)::

    DIR/new_{train,val,test}_data.json        5-field annotations (4-field {split}_data.json also read)
    DIR/sub_activitynet_v1-3.c3d.hdf5         single-file C3D features, or DIR/features/<vid>.h5
    DIR/audio/<wav_name>                      spoken queries
    DIR/videos/<video_id>.mp4                 optional
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from svg_core.data.atomic_file import atomic_write
from svg_core.audio.frontend import load_audio, log_mel
from svg_core.data.annotations import LoadReport, QueryRecord, load_annotations
from svg_core.data.video_features import VideoFeatureStore, check_duration, open_hdf5, resample_features
from svg_core.audio.noise import NoiseConfig
from svg_core.errors import MissingInputError, UserInputError

SPLITS = ("train", "val", "test")
VAL_SEED_OFFSET = 1_000_000  # the val split's noise seed is the run's --seed plus this (never a training draw)
SINGLE_FEATURE_NAMES = ("sub_activitynet_v1-3.c3d.hdf5", "c3d_features.hdf5", "features.hdf5")


@dataclass
class DatasetLayout:
    """Where the parts of a dataset folder are.

    Attributes:
        root: the folder.
        annotations: split name -> annotation JSON path (only splits that exist).
        features: single HDF5 file or folder of per-video ``.h5`` files.
        audio_dir: folder of wav files (None for text-only data).
        video_dir: folder of mp4 files (None when absent).
        manifest: contents of ``manifest.json`` ({} when absent); ``synthetic`` marks the
            generated benchmark.
    """

    root: Path
    annotations: dict[str, Path]
    features: Path
    audio_dir: Path | None
    video_dir: Path | None
    manifest: dict

    @classmethod
    def from_dir(cls, root: str | Path) -> "DatasetLayout":
        """Discover the layout of ``root``; raises a FileNotFoundError saying what is missing."""
        root = Path(root)
        if not root.is_dir():
            raise MissingInputError(f"dataset folder not found: {root}")
        annotations = {}
        for split in SPLITS:
            for name in (f"new_{split}_data.json", f"{split}_data.json", f"{split}.json"):
                if (root / name).exists():
                    annotations[split] = root / name
                    break
        if not annotations:
            raise MissingInputError(f"{root}: no annotation file (expected new_train_data.json / new_test_data.json ...)")
        features = next((root / n for n in SINGLE_FEATURE_NAMES if (root / n).exists()), None)
        if features is None and (root / "features").is_dir():
            features = root / "features"
        if features is None:
            raise MissingInputError(
                f"{root}: no video features (expected sub_activitynet_v1-3.c3d.hdf5 or features/<video_id>.h5)"
            )
        audio_dir = root / "audio" if (root / "audio").is_dir() else None
        video_dir = root / "videos" if (root / "videos").is_dir() else None
        manifest_path = root / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        return cls(root, annotations, features, audio_dir, video_dir, manifest)

    @property
    def synthetic(self) -> bool:
        """True for the generated benchmark (results must be labelled synthetic)."""
        return bool(self.manifest.get("synthetic", False))

    def records(self, split: str, on_error: str = "raise") -> tuple[list[QueryRecord], LoadReport]:
        """Annotation records of one split."""
        if split not in self.annotations:
            raise UserInputError(f"{self.root}: no {split!r} split; available: {sorted(self.annotations)}")
        return load_annotations(self.annotations[split], on_error=on_error)

    def video_path(self, video_id: str) -> Path | None:
        """The mp4 of a video, or None."""
        if self.video_dir is None:
            return None
        path = self.video_dir / f"{video_id}.mp4"
        return path if path.exists() else None


class SpeechCache:
    """HDF5 cache of decoded 16 kHz waveforms (int16) and clean log-Mels (float16).

    Saves decoding/resampling every epoch, and the STFT too when training on clean speech.
    Built by :func:`build_speech_cache` or ``python -m svg_core.data cache DIR``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise MissingInputError(f"speech cache not found: {self.path}")
        self._file: h5py.File | None = None

    def _handle(self) -> h5py.File:
        if self._file is None:
            self._file = open_hdf5(self.path)  # a corrupt cache answers with its path and the fix
        return self._file

    def __getstate__(self):
        return {"path": self.path, "_file": None}

    def __contains__(self, wav_name: str) -> bool:
        return f"wave/{wav_name}" in self._handle()

    def wave(self, wav_name: str) -> np.ndarray:
        """float32 [n] at 16 kHz."""
        return self._handle()[f"wave/{wav_name}"][()].astype(np.float32) / 32767.0

    def mel(self, wav_name: str) -> np.ndarray:
        """float32 [frames, 128] clean log-Mel."""
        return self._handle()[f"mel/{wav_name}"][()].astype(np.float32)


def build_speech_cache(layout: DatasetLayout, out_path: str | Path, splits=SPLITS) -> Path:
    """Decode every spoken query of ``splits`` once into a :class:`SpeechCache` file."""
    if layout.audio_dir is None:
        raise MissingInputError(f"{layout.root}: no audio/ folder to cache")
    out_path = Path(out_path)
    names = []
    for split in splits:
        if split in layout.annotations:
            names += [r.wav_name for r in layout.records(split)[0] if r.wav_name]

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as handle:
            for name in tqdm(sorted(set(names)), desc="speech cache", unit="wav"):
                wave = load_audio(layout.audio_dir / name, max_sec=None)
                handle.create_dataset(f"wave/{name}", data=np.clip(wave * 32767.0, -32768, 32767).astype(np.int16))
                handle.create_dataset(f"mel/{name}", data=log_mel(wave).numpy().astype(np.float16))

    # A cache that fails part-way (a corrupt wav) leaves no half-written file and keeps the old one.
    atomic_write(out_path, write)
    return out_path


def moment_labels(start_sec: float, end_sec: float, duration_sec: float, n_frames: int) -> dict:
    """Labels of one moment on the N_v grid.

    Returns:
        dict with ``start_idx``/``end_idx`` (floats, ``sec / duration * n_frames``),
        ``start_label``/``end_label`` (ints, end inclusive) and ``inside`` float32 [n_frames]
        (1 where frame [j, j+1) overlaps [start_idx, end_idx)).
    """
    start_idx = max(0.0, start_sec / duration_sec * n_frames)
    end_idx = min(float(n_frames), end_sec / duration_sec * n_frames)
    start_label = min(int(math.floor(start_idx)), n_frames - 1)
    end_label = min(max(int(math.ceil(end_idx)) - 1, start_label), n_frames - 1)
    inside = np.zeros(n_frames, np.float32)
    inside[start_label: end_label + 1] = 1.0
    return {"start_idx": start_idx, "end_idx": end_idx, "start_label": start_label,
            "end_label": end_label, "inside": inside}


class GroundingDataset(Dataset):
    """Moment-query pairs of one split, with on-the-fly noise.

    Each item is a dict (see :func:`collate_batch` for the batch). Noise is drawn from a
    generator seeded by ``(seed, epoch, index)``: the same epoch gives the same mix, whatever
    the worker or process; call :meth:`set_epoch` each epoch.

    Args:
        layout: a :class:`DatasetLayout`.
        split: "train", "val" or "test".
        n_video_frames: N_v, the video grid (64 in the paper).
        noise: a :class:`NoiseConfig`, or None for clean speech.
        seed: base seed of the noise.
        with_audio: False for text-only models (skips loading audio).
        speech_cache: optional :class:`SpeechCache`.
        max_audio_sec: longest accepted query.
        records: use these records instead of reading the split's file.
        frontend: None for log-Mel queries, or a callable waveform [n] -> features [T_e, C] (the
            frozen speech encoder, ``svg_core.audio.whisper_encoder.SpeechFeatures``), run live on
            the noisy waveform.
        frontend_cache: a ``svg_core.data.frontend_cache.FrontendCache`` to read those features
            from instead (one seeded draw per query and epoch); takes precedence over ``frontend``.
        crop_prob: training augmentation (supervised grounding only: it reads the moment): with this
            probability an item's video is cut to a random span that still holds its moment, drawn
            from a generator seeded by ``(seed, epoch, index)`` (:meth:`crop_item`). 0 = off.
    """

    def __init__(self, layout: DatasetLayout, split: str, n_video_frames: int = 64,
                 noise: NoiseConfig | None = None, seed: int = 0, with_audio: bool = True,
                 speech_cache: SpeechCache | None = None, max_audio_sec: float = 30.0,
                 records: list[QueryRecord] | None = None, frontend=None, frontend_cache=None,
                 crop_prob: float = 0.0):
        if not 0.0 <= crop_prob <= 1.0:
            raise UserInputError(f"crop probability must be in [0, 1], found {crop_prob}")
        self.crop_prob = crop_prob
        self.layout = layout
        self.split = split
        self.records = records if records is not None else layout.records(split)[0]
        self.features = VideoFeatureStore(layout.features)
        self.n_video_frames = n_video_frames
        self.noise = noise
        self.seed = seed
        self.epoch = 0
        self.with_audio = with_audio
        self.speech_cache = speech_cache
        self.max_audio_sec = max_audio_sec
        self.frontend, self.frontend_cache = frontend, frontend_cache
        if with_audio and layout.audio_dir is None and speech_cache is None:
            raise MissingInputError(f"{layout.root}: no audio/ folder; use with_audio=False for text models")
        self._video_cache: dict[str, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        """Change the noise draw (and nothing else)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def video(self, video_id: str, duration_sec: float | None = None) -> np.ndarray:
        """Resampled features of one video, float32 [N_v, 500] (cached).

        With ``duration_sec`` the annotation's duration is checked against the feature length
        (once per video; :func:`svg_core.data.video_features.check_duration`).
        """
        if video_id not in self._video_cache:
            raw = self.features.get(video_id)
            if duration_sec is not None:
                check_duration(duration_sec, len(raw), video_id)
            self._video_cache[video_id] = resample_features(raw, self.n_video_frames)
        return self._video_cache[video_id]

    def clean_wave(self, record: QueryRecord) -> np.ndarray:
        """The clean spoken query, float32 [n] at 16 kHz."""
        if record.wav_name is None:
            raise UserInputError(f"item {record.index} of {self.split} has no wav name (text-only annotations)")
        if self.speech_cache is not None and record.wav_name in self.speech_cache:
            return self.speech_cache.wave(record.wav_name)
        return load_audio(self.layout.audio_dir / record.wav_name, max_sec=self.max_audio_sec)

    def noisy_wave(self, index: int) -> tuple[np.ndarray, tuple[float, float], float]:
        """The spoken query of item ``index`` with this epoch's noise draw (the one source of it).

        Returns:
            (float32 [n] at 16 kHz, covered span in seconds, snr_db or nan when clean).
        """
        wave = self.clean_wave(self.records[index])
        if self.noise is None or self.noise.preset == "clean":
            return wave, (0.0, 0.0), float("nan")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.noise.apply(wave, rng)

    def crop_item(self, index: int) -> tuple[QueryRecord, np.ndarray] | None:
        """This epoch's cropped view of item ``index``, or None when it is not cropped.

        The span keeps the moment whole: its start is drawn uniformly in [0, start_sec] and its end
        in [end_sec, duration_sec], both moved out to the feature clips they fall in (the span's
        clips are then resampled to N_v like a whole video). The returned record carries the moment
        and duration within the span, so every label and the teacher see the same cut.

        Returns:
            (record with start/end/duration in the span's seconds, float32 [N_v, 500]) or None.
        """
        # Written here rather than with a transform library: the cut must move the moment's
        # seconds with the features, and those are ours (QueryRecord, resample_features).
        if self.crop_prob == 0.0:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])  # stream 1: not the noise's
        if rng.random() >= self.crop_prob:
            return None
        record = self.records[index]
        raw = self.features.get(record.video_id)
        clips, duration = raw.shape[0], record.duration_sec
        check_duration(duration, clips, record.video_id)  # as self.video does for an uncut item
        lo_sec, hi_sec = rng.uniform(0.0, record.start_sec), rng.uniform(record.end_sec, duration)
        first = min(int(math.floor(lo_sec / duration * clips)), clips - 1)
        last = max(int(math.ceil(hi_sec / duration * clips)), first + 1)
        start_cut, end_cut = first * duration / clips, min(last * duration / clips, duration)
        start_sec = max(record.start_sec - start_cut, 0.0)
        end_sec = min(record.end_sec - start_cut, end_cut - start_cut)
        cut = replace(record, duration_sec=end_cut - start_cut, start_sec=start_sec, end_sec=end_sec)
        return cut, resample_features(raw[first:last], self.n_video_frames)

    def __getitem__(self, index: int) -> dict:
        cropped = self.crop_item(index)
        if cropped is None:
            record = self.records[index]
            cropped = record, self.video(record.video_id, record.duration_sec)
        record, video = cropped
        item = {"video": video, "record": record,
                **moment_labels(record.start_sec, record.end_sec, record.duration_sec, self.n_video_frames)}
        span, snr_db = (0.0, 0.0), float("nan")
        if self.with_audio and self.frontend_cache is not None:  # cached encoder features, this epoch's draw
            item["audio"], span, snr_db = self.frontend_cache.draw(self.split, record.wav_name, self.epoch, index,
                                                                   self.seed)
        elif self.with_audio and self.frontend is not None:  # encoder features computed live
            wave, span, snr_db = self.noisy_wave(index)
            item["audio"] = self.frontend(wave)
        elif self.with_audio:
            clean = self.noise is None or self.noise.preset == "clean"
            if clean and self.speech_cache is not None and record.wav_name in self.speech_cache:
                mel = torch.from_numpy(self.speech_cache.mel(record.wav_name))
            else:
                wave, span, snr_db = self.noisy_wave(index)
                mel = log_mel(wave)
            item["audio"] = mel
        item["noise_span_sec"] = span
        item["snr_db"] = snr_db
        return item


def collate_batch(items: list[dict]) -> dict:
    """Stack items into a padded batch.

    Dimension legend: B batch, N_v video grid, T_a longest log-Mel in the batch, 500 C3D size.

    Returns:
        dict with ``video`` float32 [B, N_v, 500]; ``video_mask`` bool [B, N_v];
        ``audio`` float32 [B, T_a, 128] (zeros in padding; absent for text-only datasets), or
        frozen-encoder features float32 [B, T_e, 512] for a speech front-end dataset;
        ``audio_lengths`` int64 [B]; ``audio_mask`` bool [B, T_a]; ``start_idx``/``end_idx``
        float32 [B]; ``start_label``/``end_label`` int64 [B]; ``inside`` float32 [B, N_v];
        ``duration_sec``/``start_sec``/``end_sec`` float64 [B]; ``noise_span_sec`` float32
        [B, 2]; ``snr_db`` float32 [B]; ``video_id``/``query_id``/``sentence`` list[str].
    """
    if not items:
        raise ValueError("cannot collate an empty list of items")
    records = [it["record"] for it in items]
    video = torch.from_numpy(np.stack([it["video"] for it in items]))
    batch = {
        "video": video,
        "video_mask": torch.ones(video.shape[:2], dtype=torch.bool),
        "start_idx": torch.tensor([it["start_idx"] for it in items], dtype=torch.float32),
        "end_idx": torch.tensor([it["end_idx"] for it in items], dtype=torch.float32),
        "start_label": torch.tensor([it["start_label"] for it in items], dtype=torch.int64),
        "end_label": torch.tensor([it["end_label"] for it in items], dtype=torch.int64),
        "inside": torch.from_numpy(np.stack([it["inside"] for it in items])),
        "duration_sec": torch.tensor([r.duration_sec for r in records], dtype=torch.float64),
        "start_sec": torch.tensor([r.start_sec for r in records], dtype=torch.float64),
        "end_sec": torch.tensor([r.end_sec for r in records], dtype=torch.float64),
        "noise_span_sec": torch.tensor([it["noise_span_sec"] for it in items], dtype=torch.float32),
        "snr_db": torch.tensor([it["snr_db"] for it in items], dtype=torch.float32),
        "video_id": [r.video_id for r in records],
        "query_id": [r.query_id for r in records],
        "sentence": [r.sentence for r in records],
    }
    if "audio" in items[0]:
        mels = [torch.as_tensor(it["audio"], dtype=torch.float32) for it in items]
        lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.int64)
        audio = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True)  # zeros in padding
        batch["audio"] = audio
        batch["audio_lengths"] = lengths
        batch["audio_mask"] = torch.arange(audio.shape[1])[None, :] < lengths[:, None]
    return batch
