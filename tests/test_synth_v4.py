"""World v4: v3's slots plus each slot's change over 2, 6 and 12 s, extracted chunk by chunk."""

import numpy as np

from svg_core.synth import extractor_v3 as v3
from svg_core.synth import extractor_v4 as v4
from svg_core.synth.build import RENDER_CHUNK_FRAMES, render_features
from svg_core.synth.render import render_frames
from svg_core.synth.scene import COLOURS, EventSpec, ObjectSpec, SceneSpec

FPS, SIZE = 8.0, 64
SLOT = {c: k for k, c in enumerate(COLOURS)}
# columns of one slot's change block: span-major, then (size, cx, cy, brightness)
SIZE_COLS = [4 * i for i in range(len(v4.SPANS_CLIPS))]
CX_COLS = [4 * i + 1 for i in range(len(v4.SPANS_CLIPS))]


def _scene(events: list[EventSpec], duration_sec: float = 24.0) -> SceneSpec:
    objects = [ObjectSpec("box", "red", "big", 0.09, 0.3, 0.55), ObjectSpec("ball", "blue", "big", 0.09, 0.7, 0.55)]
    return SceneSpec("v_t", "test", duration_sec, "grass field", 3, (1.0, 1.0, 1.0), objects, events)


def _change(scene: SceneSpec, size: int = SIZE) -> np.ndarray:
    """Change block of the scene's clips (1 s each): [n_clips, 7 slots, CHANGE_DIM]."""
    frames = render_frames(scene, size, FPS, 0, int(scene.duration_sec * FPS))
    local = v4.chunk_features(frames)
    return v4.change_block(local).reshape(len(local), v4.N_SLOTS, v4.CHANGE_DIM)


def test_v4_layout_and_chunked_extraction_equals_whole_video():
    scene = _scene([EventSpec(0, "grow", 2.0, 20.0, False, amount=1.6)], duration_sec=40.0)
    n_frames = int(scene.duration_sec * FPS)
    assert n_frames > RENDER_CHUNK_FRAMES  # the build renders this video in two chunks
    frames = render_frames(scene, SIZE, FPS, 0, n_frames)
    whole = v4.video_features(frames)
    assert whole.shape == (n_frames // 8, 500) and whole.dtype == np.float32 and np.isfinite(whole).all()
    chunked = render_features(scene, FPS, SIZE, extractor_name=v4.EXTRACTOR_NAME)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    assert v4.video_features(frames[:7]).shape == (0, 500)
    assert v4.describe()["name"] == v4.EXTRACTOR_NAME == "synth-pixels-v4"


def test_growing_object_changes_steadily_a_bouncing_one_does_not():
    """A grow raises the red slot's size change on every span; a bounce of the blue ball returns."""
    # at the build's 128 px: the size is counted on a 32 x 32 grid, so the 2 s span is coarse
    grow = _change(_scene([EventSpec(0, "grow", 4.0, 20.0, False, amount=1.6)]), size=128)
    bounce = _change(_scene([EventSpec(1, "bounce", 4.0, 20.0, True, cycles=10)]), size=128)
    red, blue = SLOT["red"], SLOT["blue"]
    inside = slice(5, 18)  # clips 5-18 s, inside both events
    short, mid, long = (grow[inside, red][:, c] for c in SIZE_COLS)
    assert short.mean() > 0.1 and (mid > 0.15).all() and (long > 0.15).all()
    # the bouncing ball's size comes back to where it was on every span
    assert np.abs(bounce[inside, blue][:, SIZE_COLS]).max() < 0.05
    # the ball that does nothing in the grow scene shows no change; absent slots are all zero
    assert np.abs(grow[:, blue]).max() < 0.02
    assert np.abs(grow[:, SLOT["green"]]).max() == 0.0


def test_slide_right_moves_the_centroid_change_its_way():
    right = _change(_scene([EventSpec(0, "slide_right", 4.0, 20.0, False, amount=0.3)]))
    left = _change(_scene([EventSpec(0, "slide_left", 4.0, 20.0, False, amount=-0.3)]))
    red = SLOT["red"]
    inside = slice(6, 16)
    assert (right[inside, red][:, CX_COLS] > 0).all() and (left[inside, red][:, CX_COLS] < 0).all()


def test_v4_keeps_the_v3_slot_block():
    """Before the mixing, v4's first 280 raw values are v3's slot rows."""
    scene = _scene([EventSpec(0, "spin", 0.0, 8.0, True, cycles=4)], duration_sec=8.0)
    clips = render_frames(scene, SIZE, FPS, 0, 64).reshape(-1, v3.CLIP_FRAMES, SIZE, SIZE, 3)
    s_dim = v3.N_SLOTS * v3.SLOT_DIM
    np.testing.assert_array_equal(v4.chunk_features(clips.reshape(-1, SIZE, SIZE, 3))[:, :s_dim],
                                  v3.raw_clip_features(clips)[:, :s_dim])
