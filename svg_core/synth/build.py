"""Build the synthetic benchmark: plan every video, then render, extract features and speak.

Planning (scenes, captions, voices, jitter) runs first and draws every random number from one
generator per video, ``default_rng([seed, video_index])``, so a video's content depends only on
the seed and its index, never on the number of videos or workers: the demo bundle is the first
test-split videos of the default build, byte for byte. Rendering, feature extraction, mp4
encoding and speech synthesis then run in a process pool, one video per task.

Output (docs/ARCHITECTURE.md, "Dataset folder layout")::

    DIR/new_{train,val,test}_data.json   [video_id, duration_sec, [start_sec, end_sec], sentence, wav_name]
    DIR/sub_activitynet_v1-3.c3d.hdf5    f[video_id]["c3d_features"]: float32 (T, 500), T = n_frames // 8
    DIR/audio/<wav_name>                 16 kHz mono int16
    DIR/videos/<video_id>.mp4            H.264 yuv420p (all, the first demo test videos, or none)
    DIR/manifest.json                    {"synthetic": true, seed, counts, voices per split, extractor, ...}
    DIR/scenes.json                      per video: objects, events, caption needs, voice of each wav
    DIR/BUILD_DONE                       written last, with the wall time
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from svg_core.data.atomic_file import atomic_write
from svg_core.errors import UserInputError
from svg_core.synth.worlds import DEFAULT_WORLD, extractor_module, world, world_of_manifest
from svg_core.synth.captions import caption_scene
from svg_core.synth.render import render_frames
from svg_core.synth.scene import SceneSpec, sample_scene
from svg_core.synth.speech import VOICE_SPLITS, UtterancePlan, plan_utterance, write_utterance

FEATURE_FILE = "sub_activitynet_v1-3.c3d.hdf5"
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
RENDER_CHUNK_FRAMES = 256  # frames rendered at once (a multiple of the 8-frame clip)


@dataclass
class BuildConfig:
    """What to build.

    Attributes:
        out_dir: output folder (created; must be empty or absent unless overwrite).
        n_videos: number of videos (indices 0 .. n_videos - 1).
        seed: master seed.
        workers: processes; 1 runs everything in this process.
        mp4: "all", "demo" (the first ``n_demo_mp4`` test videos) or "none".
        n_demo_mp4: test videos given an mp4 with mp4="demo".
        fps: frames per second of the rendered video (features: one row per 8 frames).
        frame_size: frame height = width in pixels (a multiple of 32).
        use_piper: let the piper voice speak its share of training queries (slower).
        video_indices: build only these video indices (the demo bundle); None for all.
        overwrite: delete an existing out_dir first.
        world: world version (``worlds.py``): its scene generator and feature extractor.
    """

    out_dir: Path
    n_videos: int = 2000
    seed: int = 0
    workers: int = 2
    mp4: str = "demo"
    n_demo_mp4: int = 16
    fps: float = 8.0
    frame_size: int = 128
    use_piper: bool = True
    video_indices: list[int] | None = None
    overwrite: bool = False
    world: int = DEFAULT_WORLD


@dataclass
class VideoPlan:
    """Everything decided before rendering one video."""

    index: int
    scene: SceneSpec
    utterances: list[UtterancePlan]
    needs: list[list[str]]
    mp4: bool = False
    speech_sec: list[float] = field(default_factory=list)


def video_id_of(index: int) -> str:
    return f"v_syn{index:06d}"


def split_of(seed: int, index: int, world_version: int = DEFAULT_WORLD) -> str:
    """Split of a video: its own draw, so it does not depend on the number of videos (in a world
    with ``train_only_from``, every video from that index on is a training video)."""
    first_train_only = world(world_version).train_only_from
    if first_train_only is not None and index >= first_train_only:
        return "train"
    u = np.random.default_rng([seed, index, 7]).random()
    if u < SPLIT_FRACTIONS["train"]:
        return "train"
    return "val" if u < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["val"] else "test"


def plan_video(seed: int, index: int, use_piper: bool = True, world_version: int = DEFAULT_WORLD) -> VideoPlan:
    """Scene, captions and utterance plans of video ``index`` in world ``world_version``."""
    rng = np.random.default_rng([seed, index])
    vid = video_id_of(index)
    split = split_of(seed, index, world_version)
    scene = sample_scene(rng, vid, split, version=world(world_version).generator_version)
    captions = caption_scene(scene, rng)
    stem = vid[2:]  # "syn000123", as ActivityNet Speech drops the "v_"
    utterances = [
        plan_utterance(c.sentence, f"{stem}_{split}_{k + 1}.wav", split, rng, use_piper=use_piper)
        for k, c in enumerate(captions)
    ]
    return VideoPlan(index, scene, utterances, [c.needs for c in captions])


def n_frames_of(scene: SceneSpec, fps: float) -> int:
    return int(round(scene.duration_sec * fps))


def _write_mp4_frames(path: Path, fps: float, frame_size: int):
    """A started imageio-ffmpeg writer (send uint8 [H, W, 3] frames, then close)."""
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(
        str(path),
        (frame_size, frame_size),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",  # browsers play only 4:2:0 H.264
        macro_block_size=16,
        ffmpeg_log_level="error",
        output_params=["-crf", "28", "-preset", "medium", "-movflags", "+faststart", "-threads", "1"],
    )
    writer.send(None)
    return writer


def process_video(job: tuple[VideoPlan, str, float, int, str]) -> tuple[str, np.ndarray, list[float]]:
    """Render one video, extract its features, write its mp4 and wavs.

    Args:
        job: (plan, output folder, fps, frame size in pixels, extractor name).

    Returns:
        (video_id, features float32 [T, 500], speech seconds per utterance).
    """
    plan, out_dir, fps, frame_size, extractor_name = job
    out = Path(out_dir)
    scene = plan.scene
    writer = _write_mp4_frames(out / "videos" / f"{scene.video_id}.mp4", fps, frame_size) if plan.mp4 else None
    try:
        features = render_features(scene, fps, frame_size, writer, extractor_name)
    finally:
        if writer is not None:
            writer.close()
    speech_sec = [write_utterance(u, out / "audio") for u in plan.utterances]
    return scene.video_id, features, speech_sec


def render_features(scene: SceneSpec, fps: float, frame_size: int, writer=None,
                    extractor_name: str = world(DEFAULT_WORLD).extractor) -> np.ndarray:
    """Render a scene chunk by chunk and extract its features (frames also sent to ``writer``).

    Args:
        extractor_name: the extractor (``worlds.EXTRACTORS``); a folder's is in its manifest.

    Returns:
        float32 [n_frames // 8, 500].
    """
    extractor = extractor_module(extractor_name)
    n_frames = n_frames_of(scene, fps)
    feats = []
    for first in range(0, n_frames, RENDER_CHUNK_FRAMES):
        frames = render_frames(scene, frame_size, fps, first, min(RENDER_CHUNK_FRAMES, n_frames - first))
        feats.append(extractor.chunk_features(frames))
        if writer is not None:
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
    return extractor.finish(feats)


def _feature_job(job: tuple[dict, float, int, str]) -> tuple[str, np.ndarray]:
    record, fps, frame_size, extractor_name = job
    fields = {k: record[k] for k in SceneSpec.__dataclass_fields__}
    scene = SceneSpec.from_dict(fields)
    return scene.video_id, render_features(scene, fps, frame_size, extractor_name=extractor_name)


def refeature(data_dir: str | Path, workers: int = 2, progress: bool = True, extractor_name: str | None = None) -> dict:
    """Recompute the features of a built folder (wavs, mp4s, annotations kept).

    Re-renders every scene of ``scenes.json`` (rendering is deterministic), writes a new feature
    file beside the old one and swaps it in only when complete, then records the extractor in
    ``manifest.json``. Use it after a change to an extractor; models trained on the old
    features must be retrained. ``extractor_name`` None: the extractor of the folder's world.

    Returns:
        The updated manifest.
    """
    out = Path(data_dir)
    manifest_path, scenes_path = out / "manifest.json", out / "scenes.json"
    for path in (manifest_path, scenes_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {out} is not a folder made by python -m svg_core.synth build")
    manifest = json.loads(manifest_path.read_text())
    records = json.loads(scenes_path.read_text())
    t0 = time.time()
    extractor = extractor_module(extractor_name or world_of_manifest(manifest).extractor)
    jobs = [(r, float(manifest["fps"]), int(manifest["frame_size"]), extractor.EXTRACTOR_NAME) for r in records]

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as h5:
            for vid, feats in tqdm(_run_jobs(_feature_job, jobs, workers), total=len(jobs), desc="features",
                                   disable=not progress):
                h5.create_group(vid).create_dataset("c3d_features", data=feats)

    atomic_write(out / FEATURE_FILE, write)
    manifest["extractor"] = extractor.describe()
    manifest["refeatured_wall_sec"] = round(time.time() - t0, 1)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def _run_jobs(func, jobs: list, workers: int):
    """Yield ``func(job)`` for each job, in order: in this process, or in a pool of ``workers``.

    Results come in job order whatever the pool does, so the feature file is deterministic.
    """
    if workers <= 1:
        yield from map(func, jobs)
        return
    # one BLAS thread per worker: the pool already uses every core
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
    try:
        yield from pool.imap(func, jobs, chunksize=1)
    finally:
        pool.close()
        pool.join()


def _init_worker() -> None:
    import torch

    from svg_core.audio import tts

    # the pool already uses every core: one thread per worker for torchaudio and piper
    torch.set_num_threads(1)
    tts.set_piper_threads(1)


def annotation_items(plans: list[VideoPlan], split: str) -> list[list]:
    """The 5-field ActivityNet Speech items of one split."""
    items = []
    for plan in plans:
        if plan.scene.split != split:
            continue
        for ev, utt in zip(plan.scene.events, plan.utterances):
            items.append([plan.scene.video_id, plan.scene.duration_sec, [ev.start_sec, ev.end_sec], utt.text, utt.wav_name])
    return items


def _scene_record(plan: VideoPlan) -> dict:
    rec = plan.scene.to_dict()
    rec["queries"] = [
        {**asdict(u), "event": k, "needs": plan.needs[k], "speech_sec": round(plan.speech_sec[k], 3) if plan.speech_sec else None}
        for k, u in enumerate(plan.utterances)
    ]
    rec["has_mp4"] = plan.mp4
    return rec


def build(cfg: BuildConfig, progress: bool = True) -> dict:
    """Build a dataset folder (see module docstring).

    Returns:
        The manifest dict (also written to ``manifest.json``).
    """
    if cfg.mp4 not in ("all", "demo", "none"):
        raise ValueError(f"mp4 must be 'all', 'demo' or 'none', found {cfg.mp4!r}")
    if cfg.frame_size % 32:
        raise ValueError(f"frame_size must be a multiple of 32, found {cfg.frame_size}")
    if cfg.fps < 4:
        raise ValueError(f"fps must be at least 4, found {cfg.fps}")
    out = Path(cfg.out_dir)
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise UserInputError(f"{out} is not empty; pass overwrite (--overwrite) to replace it, or choose another folder")
        shutil.rmtree(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    indices = list(range(cfg.n_videos)) if cfg.video_indices is None else list(cfg.video_indices)
    extractor_name = world(cfg.world).extractor
    plans = [plan_video(cfg.seed, i, cfg.use_piper, cfg.world) for i in tqdm(indices, desc="planning", disable=not progress)]
    n_test_mp4 = 0
    for plan in plans:
        if cfg.mp4 == "all" or (cfg.mp4 == "demo" and plan.scene.split == "test" and n_test_mp4 < cfg.n_demo_mp4):
            plan.mp4 = True
            n_test_mp4 += plan.scene.split == "test"
    if any(p.mp4 for p in plans):
        (out / "videos").mkdir(exist_ok=True)
    jobs = [(p, str(out), cfg.fps, cfg.frame_size, extractor_name) for p in plans]
    by_id = {p.scene.video_id: p for p in plans}

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as h5:
            for vid, feats, speech_sec in tqdm(_run_jobs(process_video, jobs, cfg.workers), total=len(jobs),
                                               desc="videos", disable=not progress):
                h5.create_group(vid).create_dataset("c3d_features", data=feats)
                by_id[vid].speech_sec = speech_sec

    atomic_write(out / FEATURE_FILE, write)
    for split in VOICE_SPLITS:
        items = annotation_items(plans, split)
        if items:
            (out / f"new_{split}_data.json").write_text(json.dumps(items))
    (out / "scenes.json").write_text(json.dumps([_scene_record(p) for p in plans]))
    manifest = _manifest(cfg, plans)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    wall = time.time() - t0
    (out / "BUILD_DONE").write_text(json.dumps({"wall_sec": round(wall, 1), "workers": cfg.workers}) + "\n")
    return manifest


def _manifest(cfg: BuildConfig, plans: list[VideoPlan]) -> dict:
    counts = {}
    for split in VOICE_SPLITS:
        ps = [p for p in plans if p.scene.split == split]
        if ps:
            counts[split] = {"videos": len(ps), "queries": sum(len(p.utterances) for p in ps)}
    voices_used = {
        split: sorted({u.voice for p in plans if p.scene.split == split for u in p.utterances}) for split in counts
    }
    return {
        "synthetic": True,
        "generator": "svg_core.synth",
        "world": cfg.world,
        "generator_version": world(cfg.world).generator_version,
        "note": "Procedurally generated scenes; results on it are not ActivityNet results.",
        "seed": cfg.seed,
        "n_videos_planned": cfg.n_videos,
        "video_indices": None if cfg.video_indices is None else list(cfg.video_indices),
        "counts": counts,
        "fps": cfg.fps,
        "frame_size": cfg.frame_size,
        "audio": {"sample_rate": 16000, "format": "wav int16 mono"},
        "voice_pools": {k: list(v) for k, v in VOICE_SPLITS.items()},
        "voices_used": voices_used,
        "use_piper": cfg.use_piper,
        "mp4": cfg.mp4,
        "extractor": extractor_module(world(cfg.world).extractor).describe(),
        "split_fractions": SPLIT_FRACTIONS,
        "train_only_from": world(cfg.world).train_only_from,
    }
