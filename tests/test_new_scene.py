"""New scenes on demand (svg_core.synth.new_scene): a valid mp4, the features process_video gives,
seeds checked, and a generator stream no built benchmark or bundle uses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from svg_core.errors import UserInputError
from svg_core.synth.build import n_frames_of, plan_video, process_video
from svg_core.synth.new_scene import (
    MAX_NEW_SCENE_SEED,
    NEW_SCENE_FIRST_INDEX,
    NEW_SCENE_MASTER_SEED,
    SceneFormat,
    check_seed,
    new_scene_id,
    plan_new_scene,
    render_new_scene,
    scene_format_of,
)
from svg_core.synth.worlds import DEFAULT_WORLD

ROOT = Path(__file__).resolve().parents[1]
SHORT_SEED = 23  # a 12 s scene: 96 frames, 12 feature rows


@pytest.fixture(scope="module", params=[(2, "synth-pixels-v2"), (3, "synth-pixels-v3")], ids=["world2", "world3"])
def rendered(request, tmp_path_factory):
    world_version, extractor_name = request.param
    progress = []
    scene = render_new_scene(SHORT_SEED, tmp_path_factory.mktemp("new_scene"), fps=8.0, frame_size=128,
                             extractor_name=extractor_name, world_version=world_version,
                             progress=lambda f, d: progress.append((f, d)))
    return scene, progress


def test_mp4_is_readable_with_the_right_frames_and_duration(rendered):
    import imageio_ffmpeg

    scene, _ = rendered
    plan = plan_new_scene(SHORT_SEED, scene.world)
    assert scene.video_id == "v_new000023" and scene.mp4_path.name == "v_new000023.mp4"
    reader = imageio_ffmpeg.read_frames(str(scene.mp4_path))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8) for f in reader]
    assert meta["size"] == (128, 128) and meta["fps"] == pytest.approx(8.0)
    assert len(frames) == n_frames_of(plan.scene, 8.0) == int(round(scene.duration_sec * 8))
    assert meta["duration"] == pytest.approx(scene.duration_sec, abs=0.2)
    assert not list(scene.mp4_path.parent.glob(".*.mp4"))  # no temporary file left behind


def test_features_match_process_video_for_the_same_plan(rendered, tmp_path):
    scene, progress = rendered
    assert scene.features.dtype == np.float32 and scene.features.shape == (int(scene.duration_sec * 8) // 8, 500)
    assert np.isfinite(scene.features).all()
    plan = plan_new_scene(SHORT_SEED, scene.world)
    assert scene.captions == [u.text for u in plan.utterances] and len(scene.captions) == len(plan.scene.events)
    plan.utterances = []  # no speech: the mp4 and features only
    plan.mp4 = True
    (tmp_path / "videos").mkdir()
    video_id, features, _ = process_video((plan, str(tmp_path), 8.0, 128, scene.extractor_name))
    assert video_id == scene.video_id
    np.testing.assert_allclose(features, scene.features, rtol=0, atol=1e-6)
    assert (tmp_path / "videos" / f"{video_id}.mp4").read_bytes() == scene.mp4_path.read_bytes()
    fractions = [f for f, _ in progress]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert scene.render_sec > 0


def test_world_follows_the_extractor_and_the_manifest():
    bundle = json.loads((ROOT / "assets" / "demo_bundle" / "manifest.json").read_text())
    assert scene_format_of(bundle) == SceneFormat(DEFAULT_WORLD, "synth-pixels-v4", 8.0, 128)  # the default world
    v3 = {"world": 3, "extractor": {"name": "synth-pixels-v3"}, "fps": 8.0, "frame_size": 128}
    assert scene_format_of(v3) == SceneFormat(3, "synth-pixels-v3", 8.0, 128)
    with pytest.raises(UserInputError, match="names no feature extractor"):
        scene_format_of({"synthetic": True})
    with pytest.raises(UserInputError, match="unknown feature extractor 'c3d'"):
        scene_format_of({"extractor": {"name": "c3d"}})
    # generator 1 (world 2) and 2 (world 3) draw the same duration and events, not the same objects
    w2, w3 = plan_new_scene(SHORT_SEED, 2).scene, plan_new_scene(SHORT_SEED, 3).scene
    assert w2.duration_sec == w3.duration_sec and len({o.colour for o in w3.objects}) == len(w3.objects)


@pytest.mark.parametrize("bad", [-1, MAX_NEW_SCENE_SEED + 1, 2.5, None, True, "seven", float("nan"), 1e300])
def test_seeds_outside_the_range_are_user_errors(bad):
    with pytest.raises(UserInputError, match=f"whole number from 0 to {MAX_NEW_SCENE_SEED}"):
        check_seed(bad)


def test_seed_bounds_and_ids():
    assert check_seed(0) == 0 and check_seed(MAX_NEW_SCENE_SEED) == MAX_NEW_SCENE_SEED and check_seed(7.0) == 7
    assert new_scene_id(42) == "v_new000042" and new_scene_id(MAX_NEW_SCENE_SEED) == "v_new999999"
    assert plan_new_scene(5).scene.to_dict() == plan_new_scene(5).scene.to_dict()  # seeded


def test_unknown_extractor_and_bad_format_are_user_errors(tmp_path):
    with pytest.raises(UserInputError, match="unknown feature extractor 'synth-pixels-v9'"):
        render_new_scene(SHORT_SEED, tmp_path, extractor_name="synth-pixels-v9")
    with pytest.raises(UserInputError, match="multiple of 32"):
        render_new_scene(SHORT_SEED, tmp_path, frame_size=100)


def test_new_scenes_are_disjoint_from_every_build_and_bundle():
    """The stream (master seed, index) of a new scene is none that a build draws from."""
    bundle = json.loads((ROOT / "assets" / "demo_bundle" / "manifest.json").read_text())
    default_build_videos = 2000  # data/synth_default: seed 0, videos 0 .. 1999 (README, docs/RESULTS.md)
    assert NEW_SCENE_FIRST_INDEX > max(bundle["n_videos_planned"], default_build_videos)
    from svg_core.synth.probe import PROBE_SEED

    # the default build, the bundle, the tests, the linear probe
    assert NEW_SCENE_MASTER_SEED not in (bundle["seed"], 0, 5, PROBE_SEED)
    new = plan_new_scene(0).scene
    assert new.video_id.startswith("v_new")
    for seed, index in ((0, 0), (0, NEW_SCENE_FIRST_INDEX), (NEW_SCENE_MASTER_SEED, 0)):
        other = plan_video(seed, index, use_piper=False).scene
        assert other.to_dict() | {"video_id": "", "split": ""} != new.to_dict() | {"video_id": "", "split": ""}
