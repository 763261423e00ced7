"""World v3: the slot extractor binds colour and shape to motion, and the linear probe measures it."""

import numpy as np
import pytest

from svg_core.synth import extractor as v2
from svg_core.synth import extractor_v3 as v3
from svg_core.synth import extractor_v4 as v4
from svg_core.synth import probe
from svg_core.synth.render import render_frames
from svg_core.synth.scene import COLOURS, EventSpec, ObjectSpec, SceneSpec
from svg_core.synth.worlds import DEFAULT_WORLD, EXTRACTORS, extractor_module, world, world_of_manifest
from svg_core.errors import UserInputError

FPS, SIZE = 8.0, 64
SLOT = {c: k for k, c in enumerate(COLOURS)}
# offsets inside a 40-value slot row (see the extractor's module docstring)
PRESENT, ABS_VX, ABS_VY, MOTION_ABS, SHAPE_H4 = 0, 9, 10, (17, 20, 23, 26), 5 + 11 + 12 + 1 + 3


def _scene(events: list[EventSpec], shapes=("box", "box"), colours=("red", "blue"), background="grass field") -> SceneSpec:
    objects = [ObjectSpec(shapes[0], colours[0], "big", 0.11, 0.3, 0.55), ObjectSpec(shapes[1], colours[1], "big", 0.11, 0.7, 0.55)]
    return SceneSpec("v_t", "test", 8.0, background, 3, (1.0, 1.0, 1.0), objects, events)


def _slots(scene: SceneSpec) -> np.ndarray:
    """Raw slot rows of the scene's clips: [n_clips, 7, 40]."""
    frames = render_frames(scene, SIZE, FPS, 0, int(scene.duration_sec * FPS))
    raw = v3.raw_clip_features(frames.reshape(-1, v3.CLIP_FRAMES, SIZE, SIZE, 3))
    return raw[:, : v3.N_SLOTS * v3.SLOT_DIM].reshape(len(raw), v3.N_SLOTS, v3.SLOT_DIM)


def _motion(rows: np.ndarray) -> np.ndarray:
    """Motion energy per clip of one slot's rows [n, 40]."""
    return np.abs(rows[:, [ABS_VX, ABS_VY, *MOTION_ABS]]).sum(axis=1)


def test_v3_features_have_the_c3d_layout_and_absent_slots_are_zero():
    scene = _scene([EventSpec(0, "bounce", 0.0, 8.0, True, cycles=12)])
    frames = render_frames(scene, SIZE, FPS, 0, 64 + 5)  # trailing frames that fill no clip are dropped
    feats = v3.video_features(frames)
    assert feats.shape == (8, 500) and feats.dtype == np.float32 and np.isfinite(feats).all()
    np.testing.assert_array_equal(v3.video_features(frames), feats)  # deterministic
    assert v3.video_features(frames[:7]).shape == (0, 500)
    slots = _slots(scene)
    present = {c for c, k in SLOT.items() if np.abs(slots[:, k]).sum() > 0}
    assert present == {"red", "blue"}  # green grass is no object; five slots stay all-zero
    with pytest.raises(ValueError, match="uint8"):
        v3.raw_clip_features(frames[:8].astype(np.float32)[None])


def test_the_moving_object_is_the_one_whose_slot_moves():
    """"The red box bounces while the blue box stays" and its swap differ in which slot moves."""
    red_moves = _slots(_scene([EventSpec(0, "bounce", 0.0, 8.0, True, cycles=12)]))
    blue_moves = _slots(_scene([EventSpec(1, "bounce", 0.0, 8.0, True, cycles=12)]))
    red, blue = SLOT["red"], SLOT["blue"]
    assert _motion(red_moves[:, red]).mean() > 5 * _motion(red_moves[:, blue]).mean() + 0.05
    assert _motion(blue_moves[:, blue]).mean() > 5 * _motion(blue_moves[:, red]).mean() + 0.05


def test_slot_shape_tells_a_box_from_a_ball():
    box = _slots(_scene([], shapes=("box", "ball")))
    red, blue = SLOT["red"], SLOT["blue"]
    assert box[:, red, SHAPE_H4].mean() > box[:, blue, SHAPE_H4].mean() + 0.2  # harmonic 4: box corners


def test_worlds_pair_generators_and_extractors():
    assert world(DEFAULT_WORLD).extractor == v4.EXTRACTOR_NAME and world(3).extractor == v3.EXTRACTOR_NAME
    assert world(2).extractor == v2.EXTRACTOR_NAME and world(4).generator_version == world(3).generator_version == 2
    assert extractor_module("synth-pixels-v2") is v2
    assert set(EXTRACTORS) == {v2.EXTRACTOR_NAME, v3.EXTRACTOR_NAME, v4.EXTRACTOR_NAME}
    assert world_of_manifest({"extractor": {"name": "synth-pixels-v2"}}).version == 2  # folders from before worlds
    assert world_of_manifest({"world": 3}).generator_version == 2
    with pytest.raises(UserInputError, match="unknown feature extractor 'c3d-real'"):
        extractor_module("c3d-real")
    with pytest.raises(UserInputError, match="unknown synthetic world 7"):
        world(7)


def test_probe_scores_known_cases():
    assert probe.roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert probe.roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5  # ties count half
    assert probe.roc_auc(np.array([0.9, 0.1, 0.8, 0.2]), np.array([0, 1, 0, 1])) == 0.0
    # binding swap: red spins while blue bounces, in one clip
    events = [[("red", "box", "spin"), ("blue", "ball", "bounce")]]
    cols, acts = list(COLOURS), list(probe.ACTIONS)
    idx = lambda c, a: cols.index(c) * len(acts) + acts.index(a)
    oracle = np.zeros((1, len(cols) * len(acts)))
    oracle[0, idx("red", "spin")] = oracle[0, idx("blue", "bounce")] = 1.0
    assert probe.swap_accuracy(oracle, events) == (1.0, 1)
    # a read-out that knows which colours and which actions are there, not which does which
    blind = np.zeros_like(oracle)
    for c in ("red", "blue"):
        for a in ("spin", "bounce"):
            blind[0, idx(c, a)] = 1.0
    assert probe.swap_accuracy(blind, events) == (0.5, 1)
    t = probe.targets(events)
    assert t["colour+shape+action"].sum() == 2 and t["action"][0, acts.index("spin")] == 1.0


def test_probe_reads_events_from_the_features():
    """The probe feature test: on a few probe scenes the v3 read-out beats chance where v2 is near it."""
    scores = {s.extractor: s for s in probe.run_probe(n_videos=14, frame_size=64, max_sec=40.0, progress=False)}
    v3s, v2s = scores[v3.EXTRACTOR_NAME], scores[v2.EXTRACTOR_NAME]
    assert v3s.auc["colour+action"] > 0.75 and v3s.auc["colour+action"] > v2s.auc["colour+action"] + 0.1
    assert v3s.n_swap_clips > 0 and v3s.swap_accuracy > 0.6
    assert "binding swap accuracy" in probe.format_probe(list(scores.values()))


def test_integer_fast_paths_match_the_float_definitions_to_the_bit():
    """The build labels pixels on integer block sums; it must give what the float definitions give."""
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    # saturated palette pixels, shaded and not, so that some pixels pass the chroma test
    palette = (np.array(list(COLOURS.values())) * 255).astype(np.uint8)
    frames[:, :8] = palette[rng.integers(0, len(palette), (8, 8, 32))]
    frames[:, 8:12] = (frames[:, :4] * 0.55).astype(np.uint8)
    s2 = v2.pool_sums(frames, 2)

    def box_means(k):  # the float definition: block means as the extractor has always scaled them
        return frames.reshape(8, 32 // k, k, 32 // k, k, 3).sum(axis=(2, 4)).astype(np.float32) * (1.0 / (k * k * 255.0))

    assert np.array_equal(v2.pool_scale(s2, 4), box_means(2))
    assert np.array_equal(v2.pool_scale(v2.pool_sums(s2, 2), 16), box_means(4))
    assert np.array_equal(v2._pool(frames, 4), box_means(4))
    x = v2.pool_scale(s2, 4)
    assert np.array_equal(v2.channel_sum(x), x.sum(axis=-1))
    every_code = np.stack(np.meshgrid(*[np.arange(0, 1021, 7, dtype=np.uint16)] * 3, indexing="ij"), axis=-1)
    for codes, levels, thresholds in [(s2, v3._LEVELS_2X2, v3._THRESHOLDS_2X2), (every_code, v3._LEVELS_2X2, v3._THRESHOLDS_2X2),
                                      (frames, v3._LEVELS_FRAME, v3._THRESHOLDS_FRAME)]:
        fast = v3.slot_labels_of_codes(codes, levels, thresholds)
        slow = v3.slot_labels(levels[codes])
        assert np.array_equal(fast, slow)
        assert (slow >= 0).any() and (slow < 0).any()
