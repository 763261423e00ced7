"""A brand-new synthetic scene on demand: one video no model has seen, rendered in seconds.

    fmt = scene_format_of(json.loads((data_dir / "manifest.json").read_text()))
    scene = render_new_scene(42, out_dir, fmt.fps, fmt.frame_size, fmt.extractor_name, fmt.world)
    scene.mp4_path, scene.features.shape, scene.duration_sec, scene.captions

The scene is video ``NEW_SCENE_FIRST_INDEX + seed`` of the generator stream of master seed
``NEW_SCENE_MASTER_SEED``, planned by :func:`svg_core.synth.build.plan_video` and rendered by
:func:`svg_core.synth.build.render_features` (the same code, and so the same pixels and features,
as a video of ``python -m svg_core.synth build``). No built benchmark or bundle uses these
videos:

- every folder built so far (``data/synth_default``, ``assets/demo_bundle``: seed 0, indices
  0 .. 1999, in world 2 or 3; the tests: seeds 0 and 5, a few indices; ``synth probe``: seed
  9091, up to a few hundred) draws video ``i`` from ``default_rng([seed, i])`` with
  ``i < n_videos``; a new scene draws from
  ``default_rng([NEW_SCENE_MASTER_SEED, 1_000_000 + seed])`` (master seed 7919), which only a
  build with ``--seed 7919`` and over a million videos (days of CPU) would reach;
- its id is ``v_new<seed:06d>`` (``v_new000042``), never a build's ``v_syn<index:06d>``.

The features must come from the extractor the grounding checkpoints were trained on, and the
scene from the same generator: :func:`scene_format_of` reads both (and fps, frame size) from the
dataset folder's ``manifest.json`` (``"extractor": {"name": ...}``, ``"world"``), and
:func:`svg_core.synth.worlds.extractor_module` is the one place that maps an extractor name to
its module (``synth-pixels-v2``, ``synth-pixels-v3``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svg_core.errors import UserInputError
from svg_core.synth.build import (
    RENDER_CHUNK_FRAMES,
    VideoPlan,
    _write_mp4_frames,
    n_frames_of,
    plan_video,
    render_features,
)
from svg_core.synth.worlds import DEFAULT_WORLD, extractor_module, world, world_of_manifest

NEW_SCENE_MASTER_SEED = 7919  # master seed of the new-scene stream (no build uses it)
NEW_SCENE_FIRST_INDEX = 1_000_000  # video index of seed 0 (builds use 0 .. n_videos - 1)
MAX_NEW_SCENE_SEED = 999_999  # seeds 0 .. 999_999: ids v_new000000 .. v_new999999

Progress = Callable[[float, str], None]


@dataclass
class NewScene:
    """One scene rendered by :func:`render_new_scene`.

    Attributes:
        video_id: ``v_new<seed:06d>``.
        seed: the seed it was drawn from.
        mp4_path: the H.264 video (yuv420p), ``out_dir/videos/<video_id>.mp4``.
        features: float32 [T, 500], T = n_frames // 8 (one row per 8 frames).
        duration_sec: video duration in seconds.
        captions: one sentence per event of the scene, in time order (example queries).
        extractor_name: the extractor that made ``features``.
        world: the world whose scene generator planned it (``svg_core.synth.worlds``).
        fps, frame_size: how it was rendered.
        render_sec: wall time of planning, rendering, feature extraction and mp4 encoding.
    """

    video_id: str
    seed: int
    mp4_path: Path
    features: np.ndarray
    duration_sec: float
    captions: list[str]
    extractor_name: str
    world: int
    fps: float
    frame_size: int
    render_sec: float


def check_seed(seed) -> int:
    """The seed as an int in [0, MAX_NEW_SCENE_SEED]; anything else raises UserInputError."""
    try:
        value = float(seed)
        ok = value.is_integer() and not isinstance(seed, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not 0 <= value <= MAX_NEW_SCENE_SEED:
        raise UserInputError(f"new-scene seed must be a whole number from 0 to {MAX_NEW_SCENE_SEED}, found {seed!r}")
    return int(value)


def new_scene_id(seed: int) -> str:
    """The video id of the new scene of ``seed``: ``v_new<seed:06d>``."""
    return f"v_new{check_seed(seed):06d}"


@dataclass(frozen=True)
class SceneFormat:
    """How a dataset folder's videos were made, which a new scene for it must match.

    Attributes:
        world: world version (scene generator), ``svg_core.synth.worlds.WORLDS``.
        extractor_name: the feature extractor, e.g. "synth-pixels-v2".
        fps, frame_size: frames per second and frame height = width in pixels.
    """

    world: int
    extractor_name: str
    fps: float
    frame_size: int


def scene_format_of(manifest: dict) -> SceneFormat:
    """The :class:`SceneFormat` a dataset folder's ``manifest.json`` records.

    Raises:
        UserInputError: the manifest names no extractor (not a folder made by ``python -m
            svg_core.synth``, e.g. real C3D features), or an extractor or world this version
            does not know.
    """
    name = (manifest.get("extractor") or {}).get("name")
    if name is None:
        raise UserInputError("manifest.json names no feature extractor, so the folder was not made by python -m "
                             "svg_core.synth and a new scene's features would not be the ones its models read")
    extractor_module(name)  # a clear error for an unknown name
    return SceneFormat(world_of_manifest(manifest).version, name, float(manifest.get("fps", 8.0)),
                       int(manifest.get("frame_size", 128)))


def plan_new_scene(seed: int, world_version: int = DEFAULT_WORLD) -> VideoPlan:
    """The plan (scene, captions) of the new scene of ``seed`` in a world, renamed ``v_new<seed:06d>``; no pixels."""
    seed = check_seed(seed)
    plan = plan_video(NEW_SCENE_MASTER_SEED, NEW_SCENE_FIRST_INDEX + seed, use_piper=False,
                      world_version=world(world_version).version)
    # Neither the id nor the split changes a pixel; "test" only names the voice pool of the plan.
    plan.scene = dataclasses.replace(plan.scene, video_id=new_scene_id(seed), split="test")
    return plan


class _ProgressWriter:
    """Passes frames on to the mp4 writer and reports the share of frames done."""

    def __init__(self, writer, n_frames: int, progress: Progress | None):
        self.writer, self.n_frames, self.progress, self.sent = writer, max(n_frames, 1), progress, 0

    def send(self, frame: np.ndarray) -> None:
        self.writer.send(frame)
        self.sent += 1
        if self.progress is not None and self.sent % RENDER_CHUNK_FRAMES == 0:
            self.progress(0.05 + 0.9 * self.sent / self.n_frames, f"rendered {self.sent}/{self.n_frames} frames")


def render_new_scene(seed: int, out_dir: str | Path, fps: float = 8.0, frame_size: int = 128,
                     extractor_name: str | None = None, world_version: int | None = None,
                     progress: Progress | None = None) -> NewScene:
    """Plan, render and encode the new scene of ``seed``, and extract its features.

    Args:
        seed: 0 .. MAX_NEW_SCENE_SEED; the same seed gives the same scene (in one world).
        out_dir: folder for ``videos/<video_id>.mp4`` (created).
        fps: frames per second (>= 4; use the dataset folder's: :func:`scene_format_of`).
        frame_size: frame height = width in pixels (a multiple of 32; the folder's).
        extractor_name: the folder's extractor (manifest ``extractor.name``); None: the world's.
        world_version: the folder's world (scene generator); None: the world of
            ``extractor_name``, or ``worlds.DEFAULT_WORLD`` when neither is given.
        progress: called with (fraction done, description) while rendering.

    Returns:
        A :class:`NewScene`.

    Raises:
        UserInputError: a seed out of range, an unknown extractor, a bad fps or frame size.
    """
    seed = check_seed(seed)
    if extractor_name is not None:
        extractor_module(extractor_name)  # an unknown name fails here, before any work
    if world_version is None:
        world_version = (DEFAULT_WORLD if extractor_name is None else
                         world_of_manifest({"extractor": {"name": extractor_name}}).version)
    extractor_name = extractor_name or world(world_version).extractor
    if frame_size % 32 or frame_size < 32:
        raise UserInputError(f"frame_size must be a positive multiple of 32, found {frame_size}")
    if not fps >= 4:
        raise UserInputError(f"fps must be at least 4, found {fps}")
    began = time.perf_counter()
    if progress is not None:
        progress(0.0, "planning the scene")
    plan = plan_new_scene(seed, world_version)
    scene, video_id = plan.scene, plan.scene.video_id
    videos = Path(out_dir) / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    mp4 = videos / f"{video_id}.mp4"
    tmp = videos / f".{video_id}.{os.getpid()}.{threading.get_ident()}.mp4"  # concurrent renders never clash
    writer = _write_mp4_frames(tmp, fps, frame_size)  # the encoder settings of every build
    try:
        features = render_features(scene, fps, frame_size, _ProgressWriter(writer, n_frames_of(scene, fps), progress),
                                   extractor_name)
        writer.close()
        tmp.replace(mp4)
    finally:
        writer.close()  # a second close is a no-op
        tmp.unlink(missing_ok=True)
    if progress is not None:
        progress(1.0, "done")
    return NewScene(video_id=video_id, seed=seed, mp4_path=mp4, features=features,
                    duration_sec=float(scene.duration_sec), captions=[u.text for u in plan.utterances],
                    extractor_name=extractor_name, world=world_version, fps=float(fps), frame_size=int(frame_size),
                    render_sec=time.perf_counter() - began)
