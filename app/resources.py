"""What the app loads once: the demo set, the checkpoints, the ASR engines, the voice, ESC-50.

Configuration (command-line flags of ``app/app.py`` override environment variables):

| flag | env var | default |
|---|---|---|
| ``--data DIR`` | ``SVG_DATA_DIR`` | ``assets/demo_bundle`` (the committed synthetic demo set) |
| ``--esc50 DIR`` | ``SVG_ESC50_DIR`` | ``assets/noise/esc10`` (the shipped CC BY ESC-10 subset); ``shared`` = ``../shared/data/esc50`` |
| ``--checkpoints DIR`` | ``SVG_CHECKPOINTS_DIR`` | ``checkpoints`` (every ``*/config.json`` below it) |
| ``--fake`` | ``SVG_APP_FAKE=1`` | off: fake model and ASR (tests, or before training) |

Everything heavy (checkpoints, Whisper, PocketSphinx, piper) is built lazily on first use and
then kept, behind locks, so that nothing is loaded at import time and concurrent requests share
one copy. Nothing is ever downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svg_core.data.annotations import QueryRecord
from svg_core.data.dataset import DatasetLayout
from svg_core.data.video_features import VideoFeatureError, VideoFeatureStore, check_duration
from svg_core.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT / "assets" / "demo_bundle"
DEFAULT_CHECKPOINTS_DIR = ROOT / "checkpoints"
FAKE_MODEL = "fake (no checkpoint)"
TTS_VOICE = "piper:joe"
# Menu order of the audio checkpoints: the first of these words in the folder name ranks it.
PREFERRED_ORDER = ("vgcl", "cpc", "base", "vslnet")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def default_esc50_dir() -> Path | None:
    """The shipped ESC-10 subset ``assets/noise/esc10`` (same on every machine), else None.

    Mirrors :func:`svg_core.audio.noise.default_esc50_dir` by path so that reading the
    configuration does not import torch.
    """
    candidate = ROOT / "assets" / "noise" / "esc10"
    return candidate if (candidate / "meta" / "esc50.csv").exists() else None


def esc50_dir_from(value: str | Path | None) -> Path | None:
    """``--esc50``/``$SVG_ESC50_DIR`` as given: None = shipped subset, ``shared`` = ../shared/data/esc50."""
    if value is None or str(value) == "":
        return default_esc50_dir()
    if str(value) == "shared":
        return ROOT.parent / "shared" / "data" / "esc50"
    return Path(value)


def compute_threads() -> int:
    """CPU threads of torch per process: ``$SVG_APP_THREADS``, default 1.

    The app's torch work is small (a log-Mel, one forward pass) and two requests run at once;
    more threads only oversubscribe a small CPU (on this 2-core machine, a 5 s log-Mel took
    0.25 s with 2 torch threads under load and 0.01 s with 1).
    """
    value = os.environ.get("SVG_APP_THREADS", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SVG_APP_THREADS must be a positive integer, found {value!r}")
    return int(value)


def configure_torch_threads() -> None:
    """Apply :func:`compute_threads` to torch (call once, at program start)."""
    import torch

    torch.set_num_threads(compute_threads())


@dataclass
class AppConfig:
    """Where the app finds its inputs.

    Attributes:
        data_dir: dataset folder in the ActivityNet Speech layout (docs/ARCHITECTURE.md).
        esc50_dir: ESC-50 folder (its own layout), or None for synthetic noise only.
        checkpoints_dir: folder whose subfolders hold ``config.json`` + ``model.safetensors``.
        fake: run on :mod:`app.fake` instead of checkpoints and ASR engines.
    """

    data_dir: Path = DEFAULT_DATA_DIR
    esc50_dir: Path | None = None
    checkpoints_dir: Path = DEFAULT_CHECKPOINTS_DIR
    fake: bool = False

    @classmethod
    def from_env(cls) -> "AppConfig":
        """Read ``SVG_DATA_DIR``, ``SVG_ESC50_DIR``, ``SVG_CHECKPOINTS_DIR``, ``SVG_APP_FAKE``."""
        esc50 = os.environ.get("SVG_ESC50_DIR")
        return cls(
            data_dir=Path(os.environ.get("SVG_DATA_DIR") or DEFAULT_DATA_DIR),
            esc50_dir=esc50_dir_from(esc50),
            checkpoints_dir=Path(os.environ.get("SVG_CHECKPOINTS_DIR") or DEFAULT_CHECKPOINTS_DIR),
            fake=_truthy(os.environ.get("SVG_APP_FAKE")),
        )

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add ``--data``, ``--esc50``, ``--checkpoints`` and ``--fake`` to a parser."""
        parser.add_argument("--data", type=Path, default=None,
                            help="dataset folder in the ActivityNet Speech layout (default: $SVG_DATA_DIR "
                                 "or assets/demo_bundle)")
        parser.add_argument("--esc50", type=Path, default=None,
                            help="ESC-50 folder for real noise, or 'shared' for ../shared/data/esc50 "
                                 "(default: $SVG_ESC50_DIR or the shipped ESC-10 subset assets/noise/esc10)")
        parser.add_argument("--checkpoints", type=Path, default=None,
                            help="folder of checkpoints (default: $SVG_CHECKPOINTS_DIR or checkpoints/)")
        parser.add_argument("--fake", action="store_true",
                            help="use the fake model and ASR (also: SVG_APP_FAKE=1)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "AppConfig":
        """Environment defaults overridden by parsed flags."""
        config = cls.from_env()
        if args.data is not None:
            config.data_dir = args.data
        if args.esc50 is not None:
            config.esc50_dir = esc50_dir_from(args.esc50)
        if args.checkpoints is not None:
            config.checkpoints_dir = args.checkpoints
        config.fake = config.fake or args.fake
        return config


class DemoSet:
    """The videos and spoken queries offered by the app (every split of one dataset folder).

    Args:
        root: dataset folder (see :class:`svg_core.data.dataset.DatasetLayout`).
    """

    def __init__(self, root: str | Path):
        self.layout = DatasetLayout.from_dir(root)
        self.root = self.layout.root
        self.records: list[QueryRecord] = []
        self.split_of: dict[str, str] = {}
        # what was left out and why, shown as a banner: "<split> item <i>" or a video id -> reason
        self.problems: dict[str, str] = {}
        for split in self.layout.annotations:
            records, report = self.layout.records(split, on_error="skip")
            for index, reason in report.skipped:
                self.problems[f"{split} item {index}"] = reason
            for record in records:
                self.records.append(record)
                self.split_of[record.query_id] = split
        self.features = VideoFeatureStore(self.layout.features)
        # videos added while the app runs (new scenes, app/scenes.py): id -> an object with
        # ``features`` [T, 500], ``duration_sec`` and ``mp4_path``; they have no annotated query
        self.added: dict[str, object] = {}
        self._by_query = {r.query_id: r for r in self.records}
        self._lock = threading.Lock()  # h5py handles are not safe across threads
        if not self.records:
            raise UserInputError(f"{self.root}: no usable annotation item in {sorted(self.layout.annotations)}"
                                 + (f" ({len(self.problems)} left out)" if self.problems else ""))
        self.video_ids = [v for v in sorted({r.video_id for r in self.records}) if self._usable(v)]
        if not self.video_ids:
            listed = "; ".join(f"{k}: {v}" for k, v in list(self.problems.items())[:3])
            raise UserInputError(f"{self.root}: no usable video (features and annotations checked): {listed}")

    def _usable(self, video_id: str) -> bool:
        """Features present, [T, 500], finite, and matching the annotated duration; else a problem."""
        try:
            feats = self.features.get(video_id)
            duration = next(r.duration_sec for r in self.records if r.video_id == video_id)
            check_duration(duration, len(feats), video_id)
        except VideoFeatureError as err:
            self.problems[video_id] = str(err)
            return False
        return True

    def problem_lines(self) -> list[str]:
        """One line per video or annotation item left out (empty when everything loaded)."""
        return [f"{key}: {reason}" for key, reason in self.problems.items()]

    @property
    def synthetic(self) -> bool:
        """True for the generated benchmark."""
        return self.layout.synthetic

    def queries(self, video_id: str) -> list[QueryRecord]:
        """Annotated queries of one video, in time order."""
        self.check_video(video_id)
        return sorted((r for r in self.records if r.video_id == video_id), key=lambda r: (r.start_sec, r.end_sec))

    def check_video(self, video_id: str) -> None:
        """Raise KeyError naming the known ids when ``video_id`` is not in the set."""
        if isinstance(video_id, str) and video_id in self.added:
            return
        if video_id not in self.video_ids and str(video_id).startswith("v_new"):
            raise KeyError(f"new scene {video_id!r} is not rendered on this server (or was dropped from its "
                           "cache): press New scene with its seed first")
        if video_id not in self.video_ids:
            shown = ", ".join(self.video_ids[:5])
            raise KeyError(f"unknown video {video_id!r}; this demo set has {len(self.video_ids)} videos ({shown}, ...)")

    def record(self, query_id: str) -> QueryRecord:
        """The record of one query id (its wav name)."""
        if query_id not in self._by_query:
            raise KeyError(f"unknown query {query_id!r} in {self.root}")
        return self._by_query[query_id]

    def video_features(self, video_id: str) -> np.ndarray:
        """C3D features, float32 [T, 500]."""
        self.check_video(video_id)
        if video_id in self.added:
            return self.added[video_id].features
        with self._lock:
            return self.features.get(video_id)

    def duration_sec(self, video_id: str) -> float:
        """Duration from the annotations."""
        self.check_video(video_id)
        if video_id in self.added:
            return self.added[video_id].duration_sec
        return next(r.duration_sec for r in self.records if r.video_id == video_id)

    def video_path(self, video_id: str) -> Path | None:
        """The mp4 of a video, or None when the folder has none."""
        if video_id in self.added:
            return self.added[video_id].mp4_path
        return self.layout.video_path(video_id)

    def audio_path(self, record: QueryRecord) -> Path | None:
        """The spoken query of a record, or None when absent."""
        if self.layout.audio_dir is None or record.wav_name is None:
            return None
        path = self.layout.audio_dir / record.wav_name
        return path if path.exists() else None

    def thumbnail(self, video_id: str, cache_dir: Path) -> Path:
        """A PNG thumbnail: the middle frame of the mp4, or a picture of the features without one."""
        # One cache folder per dataset folder: two datasets may use the same video ids.
        folder = cache_dir / hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:12]
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{video_id}.png"
        if out.exists():
            return out
        tmp = folder / f".{video_id}.{os.getpid()}.{threading.get_ident()}.png"
        mp4 = self.video_path(video_id)
        if mp4 is None or not _ffmpeg_frame(mp4, self.duration_sec(video_id) / 2, tmp):
            from matplotlib.figure import Figure  # no pyplot: no global state

            fig = Figure(figsize=(2.4, 1.35), dpi=80)
            ax = fig.add_axes((0, 0, 1, 1))
            ax.imshow(self.video_features(video_id).T[:64], aspect="auto", cmap="magma")
            ax.text(0.03, 0.9, "features (no mp4)", color="white", fontsize=7, transform=ax.transAxes)
            ax.set_axis_off()
            fig.savefig(tmp, format="png")
        os.replace(tmp, out)  # atomic: a concurrent app never reads a half-written thumbnail
        return out


def _ffmpeg_frame(mp4: Path, at_sec: float, out: Path) -> bool:
    """Write one frame of ``mp4`` at ``at_sec`` to ``out`` with the ffmpeg of imageio-ffmpeg."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # no ffmpeg binary: the caller draws a feature thumbnail instead
        return False
    proc = subprocess.run(
        [exe, "-v", "error", "-y", "-ss", f"{at_sec:.2f}", "-i", str(mp4), "-frames:v", "1",
         "-vf", "scale=240:-2", str(out)],
        capture_output=True, check=False, timeout=30,
    )
    return proc.returncode == 0 and out.exists()


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint folder found by :func:`discover_checkpoints`.

    Attributes:
        name: folder name, shown in the model menu (" (weakly supervised)" added for SIL).
        path: the folder.
        query: "audio" (end-to-end models) or "text" (the cascade's text grounder), from the
            config's ``family`` (svg_core.models.config_to_dict).
        config: the parsed config.json.
    """

    name: str
    path: Path
    query: str
    config: dict


def _query_kind(config: dict) -> str:
    """"text" (family "text"), "pretrain" (families "cpc", "asp": encoders, not grounders), "search"
    (family "avlnet": the search tab's embedder, app/search.py) or "audio"; FSAN by its ``query``."""
    family = str(config.get("family", "")).lower()
    if family == "fsan":
        return "text" if config.get("query") == "text" else "audio"
    return {"text": "text", "cpc": "pretrain", "asp": "pretrain", "avlnet": "search"}.get(family, "audio")


WEAK_LABEL = " (weakly supervised)"


def menu_name(folder: str, config: dict) -> str:
    """The model menu's name of a checkpoint: its folder, marked when trained without timestamps (SIL, FSAN)."""
    return folder + WEAK_LABEL if str(config.get("family", "")).lower() in ("sil", "fsan") else folder


def discover_checkpoints(folder: Path, problems: dict[str, str] | None = None) -> list[CheckpointInfo]:
    """Every ``folder/*/config.json`` with weights beside it, audio models in menu order.

    A folder without weights or with an unreadable config.json is left out (not fatal for the
    app) and, when ``problems`` is given, recorded there: folder name -> reason.
    """
    found = []
    problems = {} if problems is None else problems
    for config_path in sorted(Path(folder).glob("*/config.json")):
        ckpt = config_path.parent
        if not any((ckpt / n).exists() for n in ("model.safetensors", "model.pt")):
            problems[ckpt.name] = "no model.safetensors beside config.json"
            continue
        try:
            config = json.loads(config_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problems[ckpt.name] = f"config.json is not readable JSON ({type(err).__name__})"
            continue
        kind = _query_kind(config)
        if kind not in ("pretrain", "search"):
            found.append(CheckpointInfo(menu_name(ckpt.name, config), ckpt, kind, config))

    def order(info: CheckpointInfo) -> tuple[int, str]:
        name = info.name.lower()
        return next((i for i, word in enumerate(PREFERRED_ORDER) if word in name), len(PREFERRED_ORDER)), name

    return sorted(found, key=order)


def val_score(info: CheckpointInfo) -> tuple[float, float] | None:
    """(val R1@0.5, val mIoU) from the checkpoint's metrics.json, the pair training selects on; None
    when metrics.json is missing, unreadable or has no finite val figures."""
    try:
        val = json.loads((info.path / "metrics.json").read_text()).get("val") or {}
        score = (float(val["R1@0.5"]), float(val["mIoU"]))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return score if all(np.isfinite(score)) else None


def default_audio_model(infos: list[CheckpointInfo]) -> str | None:
    """The default end-to-end model: the best val score (R1@0.5, then mIoU) among ``infos``.

    Checkpoints without val figures come after every scored one; ties and unscored ones keep the
    menu order (``PREFERRED_ORDER``). Only comparable when the checkpoints were validated on the
    same benchmark and noise (true of the shipped ones: data/synth_default, noise normal).

    Returns:
        the folder name, or None for an empty list.
    """
    audio = [info for info in infos if info.query == "audio"]
    if not audio:
        return None
    scored = [(val_score(info), -rank, info.name) for rank, info in enumerate(audio)]
    best = max(scored, key=lambda t: (t[0] is not None, t[0] or (0.0, 0.0), t[1]))
    return best[2]


class Backend:
    """Models, ASR engines, the TTS voice and ESC-50, each built once on first use.

    Args:
        config: the :class:`AppConfig`.
    """

    def __init__(self, config: AppConfig):
        self.config = config
        # checkpoint folder -> why it is not offered (shown as a banner above the model menu)
        self.checkpoint_problems: dict[str, str] = {}
        self.checkpoints = [] if config.fake else discover_checkpoints(config.checkpoints_dir, self.checkpoint_problems)
        self._grounders: dict[str, object] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._build_lock = threading.Lock()
        self.checkpoints = [c for c in self.checkpoints if self._loads(c)]
        self.audio_models = {c.name: c for c in self.checkpoints if c.query == "audio"}
        # the cascade grounds the transcript with the first text model: a supervised one before a
        # weakly supervised one (a shipped text FSAN must not replace the cascade's text model)
        text = sorted((c for c in self.checkpoints if c.query == "text"), key=lambda c: c.name.endswith(WEAK_LABEL))
        self.text_models = {c.name: c for c in text}
        self._esc50 = None
        self._speech_cache: dict[str, np.ndarray] = {}
        self.cache_dir = Path(tempfile.gettempdir()) / "svg_app"

    def _loads(self, info: CheckpointInfo) -> bool:
        """Load one checkpoint now (kept for later use); a failure is recorded, not raised.

        The menu then offers only models that work: about 0.1-0.3 s per shipped checkpoint.
        """
        from svg_core.engine.predictor import Grounder

        try:
            self._grounders[info.name] = Grounder.from_checkpoint(info.path)
        except Exception as err:  # noqa: BLE001 - any failure (bad weights, config, pickle) hides the model
            first = (str(err).splitlines() or [type(err).__name__])[0]
            self.checkpoint_problems[info.name] = f"does not load: {first[:200]}"
            return False
        return True

    # --- menus -------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        """Audio (end-to-end) models for the menu, the default first (:func:`default_audio_model`: best
        val score among those that loaded), then menu order; the fake one when none is shipped.

        Speech front-end checkpoints (``audio_frontend="whisper_base"``) are listed like the others:
        their Grounder runs the frozen encoder itself.
        """
        names = list(self.audio_models)
        default = default_audio_model(list(self.audio_models.values()))
        return ([default] + [n for n in names if n != default]) if default else [FAKE_MODEL]

    def is_fake(self, model_name: str) -> bool:
        """True when ``model_name`` runs on :class:`app.fake.FakeGrounder`."""
        return self.config.fake or model_name == FAKE_MODEL

    def asr_is_fake(self) -> bool:
        """True when the ASR engines are :class:`app.fake.FakeASR` (fake mode)."""
        return self.config.fake

    def lock(self, key: str) -> threading.Lock:
        """A per-resource lock (ASR decoders and TTS are not thread-safe)."""
        with self._build_lock:
            return self._locks.setdefault(key, threading.Lock())

    # --- models ------------------------------------------------------------------------
    def grounder(self, model_name: str):
        """The end-to-end grounder called ``model_name`` (built once)."""
        if model_name not in self._grounders:
            with self.lock(f"build:{model_name}"):
                if model_name not in self._grounders:
                    self._grounders[model_name] = self._load_grounder(model_name, self.audio_models)
        return self._grounders[model_name]

    def text_is_fake(self) -> bool:
        """True when the cascade's text grounder is fake (fake mode, or no text checkpoint)."""
        return self.config.fake or not self.text_models

    def cascade(self, engine: str):
        """The ASR cascade with ``engine`` ("whisper" or "sphinx"): :class:`svg_core.cascade.Cascade`
        on the first text checkpoint, or :class:`app.fake.FakeCascade` (fake mode or no text model)."""
        if engine not in ("whisper", "sphinx"):
            raise ValueError(f"unknown ASR engine {engine!r}; choose 'whisper' or 'sphinx'")
        key = f"cascade:{engine}"
        if key not in self._grounders:
            with self.lock(f"build:{key}"):
                if key not in self._grounders:
                    self._grounders[key] = self._build_cascade(engine)
        return self._grounders[key]

    def _build_cascade(self, engine: str):
        from app.fake import FakeCascade

        if self.config.fake:
            return FakeCascade(engine)
        if engine == "whisper":
            from svg_core.asr.engines import WhisperEngine

            # Whisper is the slowest step: give it up to 4 threads (2.2 s instead of 2.9 s for a
            # 5.7 s query with 2 threads instead of 1 on this 2-core CPU), decode greedily and
            # encode only the speech, not a 30 s window (WhisperEngine short_window): the app
            # answers while a user waits (targets 5 s first, 2 s later). `python -m svg_core.bench
            # asr` prints the WER and time of each mode; `python -m svg_core.cascade` keeps the
            # standard window and beam 5. SVG_APP_WHISPER_FAST=0 restores the standard decoding.
            fast = os.environ.get("SVG_APP_WHISPER_FAST", "1") != "0"
            asr = WhisperEngine(cpu_threads=min(4, os.cpu_count() or 1), beam_size=1 if fast else 5,
                                short_window=fast)
        else:
            from svg_core.asr.engines import get_engine

            asr = get_engine(engine)
        if not self.text_models:  # real ASR, fake text grounding: the UI says so
            cascade = FakeCascade(engine)
            cascade.engine = asr
            return cascade
        from svg_core.asr.cascade import Cascade
        from svg_core.engine.predictor import Grounder

        name = next(iter(self.text_models))
        return Cascade(asr, Grounder.from_checkpoint(self.text_models[name].path))

    def text_grounder(self):
        """The cascade's text grounder on its own (no ASR): the first text checkpoint, or a fake one."""
        if self.text_is_fake():
            from app.fake import FakeGrounder

            return FakeGrounder("fake text grounder")
        return self._grounders[next(iter(self.text_models))]  # loaded by _loads at start

    def _load_grounder(self, model_name: str, table: dict[str, CheckpointInfo]):
        if self.is_fake(model_name):
            from app.fake import FakeGrounder

            return FakeGrounder(model_name)
        if model_name not in table:
            raise KeyError(f"unknown model {model_name!r}; shipped: {sorted(table)}")
        from svg_core.engine.predictor import Grounder

        return Grounder.from_checkpoint(table[model_name].path)

    # --- ASR, TTS, noise ---------------------------------------------------------------
    def speak(self, text: str) -> np.ndarray:
        """``text`` spoken by the bundled piper voice, float32 [n] at 16 kHz."""
        with self.lock("tts"):
            if text not in self._speech_cache:
                if self.config.fake:
                    from app.fake import fake_speak

                    wave = fake_speak(text)
                else:
                    from svg_core.audio.tts import speak

                    wave = np.asarray(speak(text, TTS_VOICE), dtype=np.float32)
                if len(self._speech_cache) >= 64:  # small: typed sentences are re-run, not many
                    self._speech_cache.pop(next(iter(self._speech_cache)))
                self._speech_cache[text] = wave
            return self._speech_cache[text].copy()

    def esc50(self):
        """The :class:`svg_core.noise.ESC50` reader, or None when no folder is configured."""
        if self.config.esc50_dir is None:
            return None
        with self.lock("esc50"):
            if self._esc50 is None:
                from svg_core.audio.noise import ESC50

                self._esc50 = ESC50(self.config.esc50_dir)
        return self._esc50

    def noise_choices(self) -> list[tuple[str, str]]:
        """(label, kind) pairs for the noise menu: none, synthetic, then the real-noise groups/classes.

        The real-noise labels name the source in use: "ESC-10" when every clip is from the CC BY
        ESC-10 part (the shipped subset), "ESC-50" for a full ESC-50 folder.
        """
        from svg_core.audio.noise import ESC50_GROUP_TITLES, noise_kinds

        choices = [("none (clean)", "none")]
        try:
            esc = self.esc50()
        except (OSError, ValueError):
            esc = None  # a broken ESC-50 folder leaves the synthetic kinds available
        tier = "ESC-10" if esc is not None and all(c.esc10 for c in esc.clips) else "ESC-50"
        for kind in noise_kinds(esc):
            if kind == "esc50":
                label = f"{tier}: any clip ({len(esc.clips)} real recordings)"
            elif kind.startswith("esc50:"):
                name = kind.partition(":")[2]
                label = f"{tier} group: {ESC50_GROUP_TITLES[name]}" if name in ESC50_GROUP_TITLES else f"{tier}: {name}"
            else:
                label = f"{kind} (synthetic)"
            choices.append((label, kind))
        return choices

    def warm_up(self, model_name: str | None = None, engine: str = "whisper") -> None:
        """Build the default model, the ASR cascade and the voice now (in a thread at launch)."""
        self.grounder(model_name or self.model_names()[0])
        self.cascade(engine)
        self.speak("warm up")  # loads the piper voice (about 2 s the first time)
