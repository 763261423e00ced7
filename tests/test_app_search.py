"""The "Search all videos" tab: handler on the fake backend, the real AVLnet searcher, the layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from app import handlers as H
from app import search as S
from app.fake import write_tiny_demo_set
from app.resources import FAKE_MODEL, AppConfig, Backend, DemoSet, discover_checkpoints

SR = 16_000


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return write_tiny_demo_set(tmp_path_factory.mktemp("demo"), n_videos=3, queries_per_video=1)


@pytest.fixture(scope="module")
def demo(demo_dir):
    return DemoSet(demo_dir)


@pytest.fixture
def wav(tmp_path):
    t = np.arange(int(1.5 * SR)) / SR
    wave = (0.4 * np.sin(2 * np.pi * 200 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)
    path = tmp_path / "q.wav"
    sf.write(path, wave, SR)
    return str(path)


def test_search_ranks_every_video_and_grounds_the_top_one(demo_dir, demo, wav):
    backend = Backend(AppConfig(data_dir=demo_dir, fake=True))
    res = S.search_all(backend, demo, H.SOURCE_AUDIO, wav, None, FAKE_MODEL)
    assert res.fake and sorted(h["video_id"] for h in res.hits) == sorted(demo.video_ids)
    scores = [h["score"] for h in res.hits]
    assert scores == sorted(scores, reverse=True)
    assert res.grounding.video_id == res.hits[0]["video_id"]
    assert [row[0] for row in res.table()] == [1, 2, 3]
    json.dumps(res.summary())
    again = S.search_all(backend, demo, H.SOURCE_AUDIO, wav, None, FAKE_MODEL)
    assert again.hits == res.hits  # stable for the same query
    typed = S.search_all(backend, demo, H.SOURCE_TTS, None, "a man throws a ball", FAKE_MODEL)
    assert len(typed.hits) == 3


def test_search_user_errors(demo_dir, demo):
    backend = Backend(AppConfig(data_dir=demo_dir, fake=True))
    with pytest.raises(H.UserError, match="No audio"):
        S.search_all(backend, demo, H.SOURCE_AUDIO, None, None, FAKE_MODEL)
    with pytest.raises(H.UserError, match="No sentence"):
        S.search_all(backend, demo, H.SOURCE_TTS, None, "  ", FAKE_MODEL)
    with pytest.raises(H.UserError, match="speech source"):
        S.search_all(backend, demo, H.SOURCE_OWN, None, None, FAKE_MODEL)


def test_avlnet_checkpoint_drives_the_searcher_and_stays_out_of_the_model_menu(demo_dir, demo, wav, tmp_path):
    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.models import AVLnetConfig
    from svg_core.search import Embedder

    ckpts = tmp_path / "ckpts"
    embedder = Embedder.untrained(AVLnetConfig.small(stem_dim=16, stage_dims=(16, 32), blocks_per_stage=(1, 1),
                                                     embed_dim=32, n_video_frames=16, window_clips=4, stride_clips=2))
    save_checkpoint(ckpts / "avlnet", embedder.model, embedder.cfg)
    assert discover_checkpoints(ckpts) == [] and S.find_search_checkpoint(ckpts) == ckpts / "avlnet"
    searcher = S.Searcher(ckpts / "avlnet", demo)
    hits = searcher.search(H._load_file(wav))
    assert sorted(h["video_id"] for h in hits) == sorted(demo.video_ids)


def test_search_endpoint_is_named(demo_dir):
    from app.app import build_demo

    blocks = build_demo(AppConfig(data_dir=demo_dir, fake=True))
    names = [getattr(fn, "api_name", None) for fn in blocks.fns.values()]
    assert "search" in names
