"""The "Does it listen?" panel and new scenes (app/listen.py, app/scenes.py), on the fake grounder,
on tiny real checkpoints, and through the Blocks app built in this process (named endpoints)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app import handlers as H
from app import listen as L
from app import plots
from app import scenes as S
from app.fake import write_tiny_demo_set
from app.resources import DEFAULT_DATA_DIR, FAKE_MODEL, AppConfig, Backend, DemoSet
from svg_core.synth.new_scene import SceneFormat, plan_new_scene
from svg_core.synth.worlds import DEFAULT_WORLD, world

SHORT_SEED, OTHER_SHORT_SEED = 23, 48  # 12 s scenes: quick to render


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return write_tiny_demo_set(tmp_path_factory.mktemp("demo"), n_videos=2, queries_per_video=2)


@pytest.fixture()
def demo(demo_dir):
    return DemoSet(demo_dir)  # one per test: new scenes join it


@pytest.fixture(scope="module")
def backend(demo_dir):
    return Backend(AppConfig(data_dir=demo_dir, fake=True))


def test_listen_on_the_fake_grounder_gives_both_predictions(backend, demo, tmp_path):
    record = demo.queries("v_fake0")[0]
    query = H.load_query(backend, demo, H.SOURCE_OWN, "v_fake0", query_id=record.query_id)
    res = L.listen(backend, demo, query, "v_fake0", H.NoiseSettings("white", 5.0, 0.6, 3), FAKE_MODEL)
    silent = backend.grounder(FAKE_MODEL).localize(demo.video_features("v_fake0"), demo.duration_sec("v_fake0"),
                                                   audio=np.zeros(len(res.grounding.noisy_wave), np.float32))
    assert (res.silent["start_sec"], res.silent["end_sec"]) == (silent["start_sec"], silent["end_sec"])
    assert res.grounding.cascade_message == "pending"  # no ASR run for the panel
    summary = res.summary()
    json.dumps(summary)
    assert summary["your_query_sec"] != summary["silent_query_sec"]  # the fake hashes the waveform
    assert summary["ground_truth_sec"] == [round(record.start_sec, 2), round(record.end_sec, 2)]
    assert 0.0 <= summary["effect"]["iou"] <= 1.0 and summary["effect"]["verdict"] in (
        "listens", "barely listens", "does not listen")
    assert summary["text"]["words"] == record.sentence and summary["text"]["shuffled"] != record.sentence
    text = L.listen_markdown(res)
    assert "IoU between your-query and silent-query predictions" in text and "FAKE" in text
    assert "Against the ground truth" in text
    assert plots.save_png(plots.listen_figure(res), tmp_path, "listen").read_bytes()[:4] == b"\x89PNG"


def test_listen_on_a_recorded_query_has_no_text_control(backend, demo):
    t = np.arange(24_000) / 16_000
    wave = (0.4 * np.sin(2 * np.pi * 200 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)
    res = L.listen(backend, demo, H.SpokenQuery(wave, H.SOURCE_AUDIO), "v_fake1", H.NoiseSettings(), FAKE_MODEL)
    assert res.text is None and "no shuffled-words control" in res.text_note
    assert res.gt_sec is None and res.silent_iou is None
    assert "No ground truth" in L.listen_markdown(res)
    assert plots.listen_figure(res) is not None


def test_listen_with_tiny_real_checkpoints(demo_dir, demo, tmp_path):
    """The non-fake path: untrained tiny svg_core checkpoints for the end-to-end and the text model."""
    import torch

    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.engine.predictor import Grounder
    from svg_core.models import BaseConfig, TextConfig, build_model, build_vocab
    from tests.conftest import TINY

    torch.manual_seed(0)
    cfg = BaseConfig.small(**TINY)
    save_checkpoint(tmp_path / "ckpts" / "base_tiny", build_model(cfg), cfg)
    cfg = TextConfig.small(model_dim=64, chunk_num=2, attn_layers=1,
                           vocab=build_vocab([r.sentence for r in demo.records]))
    save_checkpoint(tmp_path / "ckpts" / "text_tiny", build_model(cfg), cfg)
    backend = Backend(AppConfig(data_dir=demo_dir, checkpoints_dir=tmp_path / "ckpts"))
    assert backend.model_names() == ["base_tiny"] and not backend.text_is_fake()
    assert isinstance(backend.text_grounder(), Grounder) and backend.text_grounder().query_kind == "text"
    record = demo.queries("v_fake1")[0]
    query = H.load_query(backend, demo, H.SOURCE_OWN, "v_fake1", query_id=record.query_id)
    res = L.listen(backend, demo, query, "v_fake1", H.NoiseSettings("pink", 10.0, 0.5), "base_tiny")
    assert res.grounding.fake["model"] is False and res.grounding.fake["text_grounder"] is False
    feats, duration = demo.video_features("v_fake1"), demo.duration_sec("v_fake1")
    want = backend.grounder("base_tiny").localize(feats, duration, audio=np.zeros(len(res.grounding.noisy_wave),
                                                                                  np.float32))
    assert np.array_equal(res.silent["inside_prob"], want["inside_prob"])
    for pred in (res.grounding.e2e, res.silent, res.text.words_pred, res.text.shuffled_pred):
        assert 0.0 <= pred["start_sec"] <= pred["end_sec"] <= duration
    assert "FAKE" not in L.listen_markdown(res)


def test_new_scene_joins_the_demo_set_and_grounds_without_ground_truth(backend, demo, tmp_path):
    store = S.SceneStore(demo, tmp_path / "scenes", allow_default_extractor=True)
    seen = []
    scene = store.render(SHORT_SEED, progress=lambda f, d: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert scene.video_id == "v_new000023" and scene.mp4_path.is_file() and scene.features.shape == (12, 500)
    assert store.render(float(SHORT_SEED)) is scene  # kept: the same seed is not rendered twice
    assert "v_new000023" in store.describe(scene) and "no ground truth" in store.describe(scene)
    H.check_video(demo, scene.video_id)
    assert demo.queries(scene.video_id) == [] and demo.video_path(scene.video_id) == scene.mp4_path
    assert scene.video_id not in demo.video_ids  # the failure-case table stays the annotated set
    with pytest.raises(H.UserError, match="is a new scene: it has no spoken queries"):
        H.load_query(backend, demo, H.SOURCE_OWN, scene.video_id, query_id=demo.records[0].query_id)
    query = H.load_query(backend, demo, H.SOURCE_TTS, scene.video_id, typed_text=scene.captions[0])
    result = H.ground(backend, demo, query, scene.video_id, H.NoiseSettings(), FAKE_MODEL, "whisper")
    assert result.query.gt_sec is None and result.e2e_iou is None and result.duration_sec == scene.duration_sec
    assert result.video_path == scene.mp4_path
    res = L.listen(backend, demo, query, scene.video_id, H.NoiseSettings(), FAKE_MODEL)
    assert res.gt_sec is None and res.text is not None


@pytest.mark.parametrize("bad", [-1, 1_000_000, 2.5, None, "x"])
def test_new_scene_seed_is_checked(demo, tmp_path, bad):
    store = S.SceneStore(demo, tmp_path, allow_default_extractor=True)
    with pytest.raises(H.UserError, match="whole number from 0 to 999999"):
        store.render(bad)


def test_new_scene_needs_a_known_extractor(demo, tmp_path, monkeypatch):
    store = S.SceneStore(demo, tmp_path)  # the tiny fake set's manifest names no extractor
    with pytest.raises(H.UserError, match="names no feature extractor"):
        store.render(SHORT_SEED)
    monkeypatch.setitem(demo.layout.manifest, "extractor", {"name": "synth-pixels-v9"})
    with pytest.raises(H.UserError, match="unknown feature extractor 'synth-pixels-v9'"):
        S.SceneStore(demo, tmp_path).render(SHORT_SEED)


def test_bundle_manifest_sets_the_scene_format(tmp_path):
    """The bundle is the default world: new scenes get its generator and features."""
    bundle = DemoSet(DEFAULT_DATA_DIR)
    store = S.SceneStore(bundle, tmp_path)
    assert store.format == SceneFormat(DEFAULT_WORLD, "synth-pixels-v4", 8.0, 128) and store.problem == ""
    scene = store.render(SHORT_SEED)
    assert (scene.world, scene.extractor_name) == (DEFAULT_WORLD, "synth-pixels-v4") and scene.features.shape == (12, 500)
    assert np.array_equal(bundle.video_features(scene.video_id), scene.features)


def test_fake_mode_without_an_extractor_renders_the_default_world(demo, tmp_path):
    store = S.SceneStore(demo, tmp_path, allow_default_extractor=True)
    assert store.format == SceneFormat(DEFAULT_WORLD, world(DEFAULT_WORLD).extractor, 8.0, 128)


def test_oldest_scene_is_dropped_beyond_the_limit(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(S, "MAX_SCENES", 1)
    store = S.SceneStore(demo, tmp_path, allow_default_extractor=True)
    first = store.render(SHORT_SEED)
    store.render(OTHER_SHORT_SEED)
    assert first.video_id not in demo.added and not first.mp4_path.exists()
    with pytest.raises(H.UserError, match="press New scene with its seed first"):
        H.check_video(demo, first.video_id)


def test_blocks_app_names_the_endpoints_and_runs_them(demo_dir, tmp_path, monkeypatch):
    """build_demo in this process (no server): every public event has an api_name, and the
    /new_scene and /listen functions work as the page calls them."""
    from app import app as A

    demo = A.build_demo(AppConfig(data_dir=demo_dir, fake=True))
    monkeypatch.setattr(demo.scene_store, "folder", tmp_path / "scenes")
    fns = {fn.api_name: fn.fn for fn in demo.fns.values() if fn.api_name}
    assert {"ground", "robustness", "evaluate_demo_set", "listen", "new_scene"} <= set(fns)
    video_id, mp4, info, captions = fns["new_scene"](SHORT_SEED)
    assert video_id == "v_new000023" and mp4.endswith(".mp4") and captions == [
        u.text for u in plan_new_scene(SHORT_SEED).utterances]
    with pytest.raises(Exception, match="whole number from 0 to 999999"):
        fns["new_scene"](-3)
    figure, text, summary = fns["listen"](H.SOURCE_TTS, None, captions[0], None, video_id, "none", 10, 0.6, 0,
                                          FAKE_MODEL, "whisper")
    assert figure.endswith(".png") and "silent-query" in text and summary["video_id"] == video_id
    assert summary["your_query_sec"] and summary["silent_query_sec"]
