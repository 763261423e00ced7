"""Grounder.localize on randomly initialised tiny models (no weights needed) and from checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from svg_core.engine.checkpoint import save_checkpoint
from svg_core.models import BaseConfig, CPCConfig, TextConfig, build_model, build_vocab
from svg_core.engine.predictor import Grounder

from tests.conftest import TINY, TINY_CPC  # shared tiny configs


def wave(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def video(n_rows: int = 37, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_rows, 500)).astype(np.float32)


@pytest.fixture(scope="module")
def grounder() -> Grounder:
    torch.manual_seed(0)
    cfg = BaseConfig.small(**TINY)
    return Grounder(build_model(cfg), cfg)


def test_localize_audio_contract(grounder):
    result = grounder.localize(video(), duration_sec=80.0, audio=wave(1.5))
    assert 0.0 <= result["start_sec"] < result["end_sec"] <= 80.0
    assert result["score"] == result["top5_sec"][0][2]
    assert 1 <= len(result["top5_sec"]) <= 5
    for start_sec, end_sec, score in result["top5_sec"]:
        assert 0.0 <= start_sec < end_sec <= 80.0 and 0.0 <= score <= 1.0
        assert (end_sec - start_sec) * 64 / 80.0 == pytest.approx(round((end_sec - start_sec) * 64 / 80.0))
    for key in ("start_prob", "end_prob", "inside_prob"):
        assert result[key].shape == (64,) and result[key].dtype == np.float32
    n_frames = 1 + 24000 // 160
    assert result["attention"].shape == (64, n_frames)
    np.testing.assert_allclose(result["attention"].sum(1), 1.0, rtol=1e-4)
    assert result["latency_sec"] > 0 and result["device"] == "cpu"
    assert "cross_attention" not in result


def test_localize_matches_the_batched_model(grounder):
    from svg_core.audio.frontend import log_mel
    from svg_core.data.video_features import resample_features

    feats, audio = video(100, seed=1), wave(2.0, seed=1)
    result = grounder.localize(feats, duration_sec=50.0, audio=audio)
    mel = log_mel(torch.from_numpy(audio))
    batch = {"video": torch.from_numpy(resample_features(feats, 64)).unsqueeze(0),
             "audio": mel.unsqueeze(0), "audio_lengths": torch.tensor([mel.shape[0]])}  # fmt: skip
    with torch.no_grad():
        out = grounder.model(batch)
    np.testing.assert_allclose(result["start_prob"], out["start_prob"][0].numpy(), rtol=1e-5, atol=1e-6)


def test_short_and_empty_audio(grounder):
    result = grounder.localize(video(), duration_sec=10.0, audio=wave(0.005))  # 80 samples
    assert result["attention"].shape[0] == 64 and result["attention"].shape[1] >= 1
    assert result["start_sec"] <= result["end_sec"]
    with pytest.raises(ValueError, match="empty"):
        grounder.localize(video(), duration_sec=10.0, audio=np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="duration_sec"):
        grounder.localize(video(), duration_sec=0.0, audio=wave(1.0))
    with pytest.raises(ValueError, match="spoken query"):
        grounder.localize(video(), duration_sec=10.0, text="a man")
    with pytest.raises(ValueError, match="mono"):
        grounder.localize(video(), duration_sec=10.0, audio=np.zeros((2, 100), np.float32))


def test_vgcl_model_returns_cross_attention():
    cfg = BaseConfig.small(**TINY, cpc=CPCConfig.small(**TINY_CPC))
    result = Grounder(build_model(cfg), cfg).localize(video(), duration_sec=30.0, audio=wave(1.0))
    assert result["cross_attention"].shape == (101, 128)
    np.testing.assert_allclose(result["cross_attention"].sum(1), 1.0, rtol=1e-4)


def test_text_grounder():
    cfg = TextConfig.small(model_dim=64, chunk_num=2, attn_layers=1, vocab=build_vocab(["a man runs fast"]))
    grounder = Grounder(build_model(cfg), cfg)
    assert grounder.query_kind == "text"
    result = grounder.localize(video(), duration_sec=20.0, text="A man runs, very fast")
    assert result["words"] == ["a", "man", "runs", "very", "fast"]
    assert result["attention"].shape == (64, 5) and result["start_sec"] <= result["end_sec"]
    with pytest.raises(ValueError, match="text query"):
        grounder.localize(video(), duration_sec=20.0, audio=wave(1.0))


def test_from_checkpoint_round_trip(grounder, tmp_path):
    save_checkpoint(tmp_path, grounder.model, grounder.cfg, extra={"R1@0.5": 0.1})
    loaded = Grounder.from_checkpoint(tmp_path)
    assert loaded.meta["R1@0.5"] == 0.1
    a = grounder.localize(video(), duration_sec=40.0, audio=wave(1.0))
    b = loaded.localize(video(), duration_sec=40.0, audio=wave(1.0))
    np.testing.assert_allclose(a["end_prob"], b["end_prob"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.array(a["top5_sec"]), np.array(b["top5_sec"]), rtol=1e-5, atol=1e-7)


def test_pretraining_checkpoint_is_refused(tmp_path):
    cpc = build_model(CPCConfig.small(**TINY_CPC))
    save_checkpoint(tmp_path, cpc, cpc.cfg)
    with pytest.raises(ValueError, match="grounding model"):
        Grounder.from_checkpoint(tmp_path)
