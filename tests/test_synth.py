"""Tests of the synthetic benchmark (svg_core/synth): tiny real builds at 64 px / 4 fps, no piper."""

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from svg_core.audio.frontend import SAMPLE_RATE, load_audio
from svg_core.data.annotations import load_annotations
from svg_core.data.dataset import DatasetLayout
from svg_core.data.video_features import VideoFeatureStore
from svg_core.synth import extractor, extractor_v4
from svg_core.synth.__main__ import _main as synth_main_raw
from svg_core.synth.__main__ import main as synth_main
from svg_core.synth.build import BuildConfig, build, plan_video, split_of
from svg_core.synth.bundle import MAX_BUNDLE_BYTES, folder_bytes
from svg_core.synth.captions import caption_scene
from svg_core.synth.render import render_frames
from svg_core.synth.scene import (ACTIONS, BACKGROUNDS, COLOURS, MAX_STATE_ACTION_SEC, MOVING_ACTIONS, SHAPES,
                                  STATE_ACTIONS, sample_scene)
from svg_core.synth.speech import VOICE_SPLITS, speakers
from svg_core.synth.stats import action_counts, best_prior, blind_prior, dataset_stats
from svg_core.synth.worlds import DEFAULT_WORLD, world

BUNDLE = Path(__file__).resolve().parents[1] / "assets" / "demo_bundle"
TINY_FPS, TINY_SIZE = 4.0, 64


def _tiny_indices(seed: int = 5) -> list[int]:
    """One train, one val and one test video."""
    want = {"train": 1, "val": 1, "test": 1}
    out = []
    for i in range(200):
        split = split_of(seed, i)
        if want[split] > 0:
            want[split] -= 1
            out.append(i)
        if not any(want.values()):
            return out
    raise AssertionError("split draw never produced every split")


def _tiny_build(out: Path) -> dict:
    cfg = BuildConfig(out, seed=5, workers=1, mp4="demo", n_demo_mp4=1, fps=TINY_FPS, frame_size=TINY_SIZE, use_piper=False,
                      video_indices=_tiny_indices())
    return build(cfg, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    _tiny_build(out)
    return out


def test_build_is_deterministic(tiny, tmp_path):
    again = tmp_path / "again"
    _tiny_build(again)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file() and p.name != "BUILD_DONE")
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file() and p.name != "BUILD_DONE")
    assert any(f.suffix == ".wav" for f in files) and any(f.suffix == ".mp4" for f in files)
    for rel in files:
        if rel.suffix == ".hdf5":
            with h5py.File(tiny / rel) as a, h5py.File(again / rel) as b:
                assert sorted(a) == sorted(b)
                for vid in a:
                    np.testing.assert_array_equal(a[vid]["c3d_features"][()], b[vid]["c3d_features"][()])
        else:
            assert (tiny / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_outputs_pass_the_data_layer_readers(tiny):
    layout = DatasetLayout.from_dir(tiny)
    assert layout.synthetic and set(layout.annotations) == {"train", "val", "test"}
    store = VideoFeatureStore(layout.features)
    scenes = {s["video_id"]: s for s in json.loads((tiny / "scenes.json").read_text())}
    n_queries = 0
    for split in ("train", "val", "test"):
        records, report = load_annotations(tiny / f"new_{split}_data.json")
        assert report.n_loaded == report.n_items == len(records) > 0 and not report.skipped
        assert report.n_end_clipped == 0
        raw = json.loads((tiny / f"new_{split}_data.json").read_text())
        assert all(len(item) == 5 for item in raw)
        for rec in records:
            n_queries += 1
            assert re.fullmatch(r"v_syn\d{6}", rec.video_id)
            assert re.fullmatch(rf"syn\d{{6}}_{split}_\d+\.wav", rec.wav_name)
            assert rec.wav_name.startswith(rec.video_id[2:])
            assert 0 <= rec.start_sec < rec.end_sec <= rec.duration_sec
            assert 6 <= len(rec.sentence.split()) <= 16
            feats = store.get(rec.video_id)
            n_frames = int(round(rec.duration_sec * TINY_FPS))
            assert feats.shape == (n_frames // 8, 500) and feats.dtype == np.float32
            wave = load_audio(tiny / "audio" / rec.wav_name)
            assert wave.dtype == np.float32 and len(wave) > 0.5 * SAMPLE_RATE
            if split == "test":  # mp4="demo": the first test video has its mp4
                assert (tiny / "videos" / f"{rec.video_id}.mp4").stat().st_size > 1000
            assert scenes[rec.video_id]["split"] == split
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["seed"] == 5
    assert sum(c["queries"] for c in manifest["counts"].values()) == n_queries
    assert (tiny / "BUILD_DONE").exists()


def test_splits_are_speaker_disjoint(tiny):
    pools = {split: speakers(split) for split in VOICE_SPLITS}
    assert not pools["train"] & pools["test"] and not pools["train"] & pools["val"] and not pools["val"] & pools["test"]
    assert len({v for vs in VOICE_SPLITS.values() for v in vs}) >= 20
    for scene in json.loads((tiny / "scenes.json").read_text()):
        for query in scene["queries"]:
            assert query["voice"] in VOICE_SPLITS[scene["split"]]
    # the voices a large plan draws per split are disjoint too
    used = {"train": set(), "val": set(), "test": set()}
    for i in range(150):
        plan = plan_video(0, i)
        used[plan.scene.split] |= {u.voice for u in plan.utterances}
    assert not used["train"] & used["test"] and not used["val"] & (used["train"] | used["test"])
    assert "piper:joe" in used["train"]


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5])
def test_objects_move_during_their_events_and_rest_outside(index):
    scene = plan_video(0, index).scene
    fps = 8.0
    n_frames = int(round(scene.duration_sec * fps))
    t = np.arange(n_frames) / fps
    for obj in range(len(scene.objects)):
        frames = render_frames(scene, TINY_SIZE, fps, 0, n_frames, only_objects=[obj]).astype(np.int16)
        changed = np.abs(np.diff(frames, axis=0)).reshape(n_frames - 1, -1).max(axis=1) > 0  # frame f -> f+1
        events = [e for e in scene.events if e.obj == obj]
        active = np.zeros(n_frames - 1, bool)
        for ev in events:
            active |= (t[1:] >= ev.start_sec) & (t[:-1] <= ev.end_sec)
            core = np.flatnonzero((t >= ev.start_sec + 0.25) & (t + 2.0 <= ev.end_sec - 0.25))
            if ev.action in MOVING_ACTIONS and len(core):
                # within every 2 s window of a moving event the object's pixels change
                windows = [changed[f : f + 16].any() for f in core]
                assert np.mean(windows) > 0.95, (index, obj, ev.action)
            span = (t[1:] >= ev.start_sec) & (t[:-1] <= ev.end_sec)
            assert changed[span].any(), (index, obj, ev.action)
        assert not changed[~active].any(), f"object {obj} of video {index} changed outside its events"


def test_scene_sampler_covers_the_world_and_matches_activitynet():
    rng_scenes = [sample_scene(np.random.default_rng([9, i]), f"v{i}", "train") for i in range(250)]
    events = [(s, e) for s in rng_scenes for e in s.events]
    assert {e.action for _, e in events} == set(ACTIONS) and len(ACTIONS) >= 12
    assert {o.shape for s in rng_scenes for o in s.objects} == set(SHAPES) and len(SHAPES) >= 5
    assert {o.colour for s in rng_scenes for o in s.objects} == set(COLOURS) and len(COLOURS) >= 6
    assert {s.background for s in rng_scenes} == set(BACKGROUNDS) and len(BACKGROUNDS) >= 4
    assert all(1 <= len(s.objects) <= 3 and 2 <= len(s.events) <= 6 for s in rng_scenes)
    length = np.array([(e.end_sec - e.start_sec) / s.duration_sec for s, e in events])
    start = np.array([e.start_sec / s.duration_sec for s, e in events])
    assert 0.3 < length.mean() < 0.4 and 0.22 < np.median(length) < 0.36
    assert 0.2 < np.mean(start == 0) < 0.36
    assert 100 < np.mean([s.duration_sec for s in rng_scenes]) < 145
    for s in rng_scenes:  # one object's events never overlap
        for k in range(len(s.objects)):
            own = sorted((e.start_sec, e.end_sec) for e in s.events if e.obj == k)
            assert all(b[0] >= a[1] for a, b in zip(own, own[1:]))


def test_generator_3_keeps_the_moments_and_favours_state_actions():
    """World 5 (generator 3) draws the same moments as world 4 for every video, so its blind prior
    is world 4's, and gives state actions a larger share of the short events, within the rules."""
    short, state = {2: 0, 3: 0}, {2: 0, 3: 0}
    for i in range(300):
        scenes = {v: sample_scene(np.random.default_rng([5, i]), f"v{i}", "train", version=v) for v in (2, 3)}
        old, new = scenes[2], scenes[3]
        assert (old.duration_sec, [(o.shape, o.colour) for o in old.objects]) == \
            (new.duration_sec, [(o.shape, o.colour) for o in new.objects])
        assert [(e.obj, e.start_sec, e.end_sec) for e in old.events] == [(e.obj, e.start_sec, e.end_sec) for e in new.events]
        for v, scene in scenes.items():
            for e in scene.events:
                if e.end_sec - e.start_sec <= MAX_STATE_ACTION_SEC:
                    short[v] += 1
                    state[v] += e.action in STATE_ACTIONS
                else:
                    assert e.action not in STATE_ACTIONS  # long events stay periodic in every version
    assert short[2] == short[3] > 100
    assert state[3] / short[3] > 0.5 > 0.4 > state[2] / short[2]  # about 0.57 and 0.32 over 2,000 scenes
    assert world(5).generator_version == 3 and world(5).extractor == world(4).extractor


@pytest.mark.parametrize("version", [1, 2, 3])
def test_captions_are_groundable_sentences(version):
    vocab, kinds = set(), set()
    for i in range(150):
        rng = np.random.default_rng([4, i])
        scene = sample_scene(rng, f"v{i}", "train", version=version)
        if version >= 2:  # world v3: one colour per object, so the colour alone names it
            assert len({o.colour for o in scene.objects}) == len(scene.objects)
        for cap in caption_scene(scene, rng):
            words = cap.sentence.split()
            assert 6 <= len(words) <= 16 and cap.sentence[0].isupper() and cap.sentence.endswith(".")
            vocab |= {w.strip(".,").lower() for w in words}
            kinds |= set(cap.needs)
    assert len(vocab) >= 150
    # "shape" is needed only when two objects share a colour, which generator 2 never samples
    assert kinds == {"colour", "shape", "colour_or_shape", "action", "temporal"} - ({"shape"} if version >= 2 else set())


def test_extractor_is_fixed_and_sees_motion():
    m = extractor.mixing_matrix()
    assert m.shape == (500, extractor.RAW_DIM)
    np.testing.assert_allclose(m.T @ m, np.eye(extractor.RAW_DIM), atol=1e-10)  # an isometry
    scene = plan_video(0, 0).scene
    ev = next(e for e in scene.events if e.action in MOVING_ACTIONS and e.end_sec - e.start_sec > 3.0)
    first = int(np.ceil(ev.start_sec * 8.0)) + 4
    moving = render_frames(scene, TINY_SIZE, 8.0, first, 8)
    still = np.repeat(moving[:1], 8, axis=0)
    f_move, f_still = extractor.video_features(moving), extractor.video_features(still)
    assert f_move.shape == f_still.shape == (1, 500)
    assert np.linalg.norm(f_move - f_still) > 1e-3
    np.testing.assert_array_equal(extractor.video_features(moving), f_move)
    with pytest.raises(ValueError, match="uint8"):
        extractor.raw_clip_features(moving.astype(np.float32).reshape(1, 8, TINY_SIZE, TINY_SIZE, 3))


def _square_clip(offsets_px: list[tuple[float, float]], angles_deg: list[float] | None = None,
                 scales: list[float] | None = None) -> np.ndarray:
    """uint8 [1, 8, 64, 64, 3]: a white bar on black at (32 + dx, 32 + dy), optionally turned or scaled."""
    from PIL import Image, ImageDraw

    frames = []
    for k, (dx, dy) in enumerate(offsets_px):
        img = Image.new("RGB", (256, 256))  # drawn at 4x, then box-filtered: sub-pixel motion
        a = np.radians(angles_deg[k] if angles_deg else 0.0)
        r = 4 * 9 * (scales[k] if scales else 1.0)
        pts = [(x * r, y * r * 0.45) for x, y in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        cx, cy = 4 * (32 + dx), 4 * (32 + dy)
        ImageDraw.Draw(img).polygon(
            [(cx + x * np.cos(a) - y * np.sin(a), cy + x * np.sin(a) + y * np.cos(a)) for x, y in pts], fill="white")
        frames.append(np.asarray(img.resize((64, 64), Image.Resampling.BOX)))
    return np.stack(frames)[None]


def test_motion_field_block_is_position_free_and_tells_motions_apart():
    """Block H (the last 16 raw values): means of translation x, y, rotation and scaling sit at 0, 3, 6, 9."""
    steps = np.arange(8, dtype=float)
    right = extractor.raw_clip_features(_square_clip([(s, 0.0) for s in steps]))[0, -16:]
    left = extractor.raw_clip_features(_square_clip([(-s, 0.0) for s in steps]))[0, -16:]
    down = extractor.raw_clip_features(_square_clip([(0.0, s) for s in steps]))[0, -16:]
    turn = extractor.raw_clip_features(_square_clip([(0.0, 0.0)] * 8, angles_deg=list(6 * steps)))[0, -16:]
    grow = extractor.raw_clip_features(_square_clip([(0.0, 0.0)] * 8, scales=list(1 + 0.05 * steps)))[0, -16:]
    still = extractor.raw_clip_features(_square_clip([(0.0, 0.0)] * 8))[0, -16:]
    assert right[0] > 0.3 and left[0] < -0.3 and abs(right[3]) < 0.5 * right[0]  # x, signed
    assert down[3] > 0.3 and abs(down[0]) < 0.5 * down[3]  # y grows downwards
    assert abs(turn[6]) > 0.3 and abs(turn[6]) > 2 * max(abs(turn[0]), abs(turn[3]))  # rotation
    assert grow[9] > 0.3 and grow[9] > 2 * abs(grow[6])  # scaling
    np.testing.assert_allclose(still, 0.0, atol=1e-6)
    # the same motion elsewhere in the frame gives the same statistics
    shifted = extractor.raw_clip_features(_square_clip([(s - 14.0, 10.0) for s in steps]))[0, -16:]
    np.testing.assert_allclose(shifted, right, atol=0.1)


def test_refeature_rewrites_only_the_features(tiny, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    feature_file = copy / "sub_activitynet_v1-3.c3d.hdf5"
    with h5py.File(feature_file, "r") as h5:
        before = {k: h5[k]["c3d_features"][:] for k in h5}
    with h5py.File(feature_file, "r+") as h5:  # stale features, as after an extractor change
        for k in h5:
            h5[k]["c3d_features"][...] = 0.0
    wav_bytes = {p.name: p.read_bytes() for p in (copy / "audio").iterdir()}
    assert synth_main(["refeature", str(copy), "--workers", "1"]) == 0
    with h5py.File(feature_file, "r") as h5:
        for k, v in before.items():
            np.testing.assert_allclose(h5[k]["c3d_features"][:], v, atol=1e-5)
    assert {p.name: p.read_bytes() for p in (copy / "audio").iterdir()} == wav_bytes
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["extractor"]["name"] == extractor_v4.EXTRACTOR_NAME and "refeatured_wall_sec" in manifest
    assert manifest["world"] == DEFAULT_WORLD and manifest["generator_version"] == world(DEFAULT_WORLD).generator_version
    assert synth_main(["refeature", str(copy), "--workers", "1", "--extractor", extractor.EXTRACTOR_NAME]) == 0
    with h5py.File(feature_file, "r") as h5:
        vid = next(iter(before))
        assert h5[vid]["c3d_features"].shape == before[vid].shape
        assert not np.allclose(h5[vid]["c3d_features"][:], before[vid], atol=1e-3)  # the other extractor
    assert json.loads((copy / "manifest.json").read_text())["extractor"]["name"] == extractor.EXTRACTOR_NAME
    (copy / "scenes.json").unlink()
    with pytest.raises(FileNotFoundError, match="scenes.json is missing"):
        synth_main_raw(["refeature", str(copy), "--workers", "1"])


def test_blind_prior_and_stats(tiny, capsys):
    assert best_prior(np.array([[0.0, 0.5]] * 5 + [[0.1, 0.6]])) == pytest.approx((0.0, 0.5), abs=0.011)
    prior = blind_prior(tiny)
    assert {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"} <= set(prior) and 0 <= prior["mIoU"] <= 100
    stats = dataset_stats(tiny)
    assert stats["_counts"]["test"]["queries"] > 0
    assert synth_main(["stats", str(tiny)]) == 0
    text = capsys.readouterr().out
    assert "ActivityNet Speech" in text and "blind prior" in text and "R@1 IoU=0.7" in text
    # queries per action: every query of a split counted once, rarest first
    actions = action_counts(tiny)
    assert sum(actions["test"].values()) == stats["_counts"]["test"]["queries"]
    assert list(actions["train"].values()) == sorted(actions["train"].values())
    assert "train queries per action (rarest first): " in text


def test_bad_build_config_raises(tmp_path):
    with pytest.raises(ValueError, match="mp4"):
        build(BuildConfig(tmp_path / "x", mp4="some"), progress=False)
    with pytest.raises(ValueError, match="fps"):
        build(BuildConfig(tmp_path / "x", fps=2), progress=False)


def test_committed_demo_bundle_is_valid():
    assert BUNDLE.is_dir(), "assets/demo_bundle is missing: python -m svg_core.synth bundle --out assets/demo_bundle"
    assert folder_bytes(BUNDLE) <= MAX_BUNDLE_BYTES
    assert (BUNDLE / "README.md").exists()
    layout = DatasetLayout.from_dir(BUNDLE)
    assert layout.synthetic and "test" in layout.annotations
    records, report = layout.records("test")
    assert not report.skipped and report.n_end_clipped == 0
    videos = sorted({r.video_id for r in records})
    assert len(videos) >= 12
    store = VideoFeatureStore(layout.features)
    test_voices = set(VOICE_SPLITS["test"])
    scenes = {s["video_id"]: s for s in json.loads((BUNDLE / "scenes.json").read_text())}
    for vid in videos:
        assert layout.video_path(vid) is not None and layout.video_path(vid).stat().st_size > 1000
        feats = store.get(vid)
        assert feats.shape[1] == 500 and feats.shape[0] == int(round(scenes[vid]["duration_sec"] * 8)) // 8
        assert scenes[vid]["split"] == "test"
        assert {q["voice"] for q in scenes[vid]["queries"]} <= test_voices
    for rec in records:
        assert len(load_audio(layout.audio_dir / rec.wav_name)) > SAMPLE_RATE // 2


def test_world_6_is_world_5_with_every_video_from_4000_in_training():
    """World 6 keeps world 5's videos, speech and splits below index 4,000 (so its val and test
    splits and blind prior are world 5's at --videos 4000) and sends every later video to train."""
    assert world(6).train_only_from == 4000 and world(5).train_only_from is None
    assert (world(6).generator_version, world(6).extractor) == (world(5).generator_version, world(5).extractor)
    for i in (0, 1, 2, 3, 17, 3999):
        assert split_of(0, i, 6) == split_of(0, i, 5)
        a, b = plan_video(0, i, use_piper=False, world_version=5), plan_video(0, i, use_piper=False, world_version=6)
        assert a.scene == b.scene and a.utterances == b.utterances
    later = [split_of(0, i, 6) for i in range(4000, 4300)]
    assert set(later) == {"train"}
    assert {split_of(0, i, 5) for i in range(4000, 4300)} == {"train", "val", "test"}  # world 5 draws them
    assert plan_video(0, 4001, use_piper=False, world_version=6).scene.split == "train"
