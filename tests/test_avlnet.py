"""AVLnet: smoke, zero-length, batch-vs-single, the MMS loss on hand-made similarities, training."""

from __future__ import annotations

import math

import pytest
import torch

from svg_core.engine.metrics import retrieval_metrics
from svg_core.models import AVLnetConfig, build_model, config_from_dict, config_to_dict
from svg_core.models.avlnet import mms_loss
from tests.model_batches import make_batch, select
from tests.test_speech_frontend import needs_whisper

TINY_AVLNET = dict(stem_dim=16, stage_dims=(16, 32), blocks_per_stage=(1, 1), kernel=5, embed_dim=32,
                   n_video_frames=16)


def tiny(**overrides) -> AVLnetConfig:
    return AVLnetConfig.small(**{**TINY_AVLNET, **overrides})


@pytest.mark.parametrize("projection", ["gated", "linear", "mlp"])
@pytest.mark.parametrize("loss", ["mms", "infonce"])
def test_smoke_forward_backward(projection, loss):
    torch.manual_seed(0)
    model = build_model(tiny(projection=projection, loss=loss))
    batch = make_batch([40, 25, 33], n_video=16, spans=[(2, 6), (0, 16), (9, 12)])
    out = model(batch)
    assert out["audio_emb"].shape == (3, 32) and out["moment_emb"].shape == (3, 32)
    assert out["has_outside"].tolist() == [True, False, True]
    value, logs = model.loss(out, batch)
    assert torch.isfinite(value) and set(logs) == {"loss", "a2v", "v2a"}
    value.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_zero_length_audio_gives_finite_embedding():
    model = build_model(tiny()).eval()
    batch = make_batch([0, 30], n_video=16)
    out = model(batch)
    assert torch.isfinite(out["audio_emb"]).all()
    short = model.embed_audio(torch.zeros(1, 2, 128), torch.tensor([2]))  # shorter than the x4 down-sampling
    assert torch.isfinite(short).all()


def test_batch_equals_single_items():
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    batch = make_batch([50, 17, 33], n_video=16, spans=[(2, 6), (1, 15), (9, 12)])
    with torch.no_grad():
        together = model(batch)
        for i in range(3):
            alone = model(select(batch, i))
            for key in ("audio_emb", "moment_emb", "outside_emb"):
                torch.testing.assert_close(together[key][i:i + 1], alone[key], atol=1e-5, rtol=1e-4)


def test_config_round_trips_json():
    cfg = tiny(projection="mlp", loss="infonce")
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_mms_known_value_both_directions():
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    value, logs = mms_loss(sim, margin=0.0)
    assert math.isclose(float(value), math.log(1 + math.exp(-1)), rel_tol=1e-6)
    assert math.isclose(logs["a2v"], logs["v2a"], rel_tol=1e-6)
    # asymmetric similarities: the two directions differ
    sim = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
    _, logs = mms_loss(sim, margin=0.0)
    a2v = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-1))) / 2
    v2a = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(0))) / 2
    assert math.isclose(logs["a2v"], a2v, rel_tol=1e-6) and math.isclose(logs["v2a"], v2a, rel_tol=1e-6)


def test_mms_margin_lowers_the_positive_logit():
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    delta = 0.5
    value, _ = mms_loss(sim, margin=delta)
    assert math.isclose(float(value), math.log(1 + math.exp(-(1 - delta))), rel_tol=1e-6)
    assert float(mms_loss(sim, margin=0.001)[0]) > float(mms_loss(sim, margin=0.0)[0])


def test_mms_same_video_negatives_enter_the_audio_side_only():
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    extra = torch.tensor([[1.0], [-1e9]])  # query 0's own video outside its moment scores 1.0; query 1 has none
    _, logs = mms_loss(sim, margin=0.0, extra_negatives=extra)
    want_a2v = (-math.log(math.e / (math.e + 1 + math.e)) + math.log(1 + math.exp(-1))) / 2
    assert math.isclose(logs["a2v"], want_a2v, rel_tol=1e-6)
    assert math.isclose(logs["v2a"], math.log(1 + math.exp(-1)), rel_tol=1e-6)


def test_mms_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        mms_loss(torch.zeros(2, 3))


def test_model_loss_includes_same_video_negative():
    torch.manual_seed(0)
    batch = make_batch([30, 30], n_video=16, spans=[(2, 6), (8, 12)])
    with_neg = build_model(tiny()).eval()
    without = build_model(tiny(same_video_negatives=False)).eval()
    without.load_state_dict(with_neg.state_dict())
    with torch.no_grad():
        a = with_neg.loss(with_neg(batch), batch)[1]
        b = without.loss(without(batch), batch)[1]
    assert a["a2v"] > b["a2v"] and math.isclose(a["v2a"], b["v2a"], rel_tol=1e-6)


def test_retrieval_metrics():
    assert retrieval_metrics([1, 2, 7, 30], ks=(1, 5, 10)) == {"R@1": 25.0, "R@5": 50.0, "R@10": 75.0,
                                                                "MedR": 4.5, "n": 4}


def test_train_avlnet_cli_writes_checkpoint(tiny_dataset_dir, tmp_path):
    from svg_core.engine.checkpoint import load_checkpoint
    from svg_core.engine.training import main

    out = tmp_path / "run"
    sets = [f"--set={k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY_AVLNET.items()]
    code = main(["--data", str(tiny_dataset_dir), "--model", "avlnet", "--out", str(out), "--epochs", "1",
                 "--batch-size", "4", "--noise", "clean", "--no-progress", *sets])
    assert code == 0
    assert (out / "best" / "model.safetensors").is_file() and (out / "best" / "config.json").is_file()
    model, cfg, _ = load_checkpoint(out / "best")
    assert isinstance(cfg, AVLnetConfig) and cfg.embed_dim == 32


def test_front_end_variant_reads_encoder_features_with_padding_masked():
    """audio_frontend=whisper_base: the audio branch is the SpeechAdapter over [B, T_e, 512] features."""
    from svg_core.models.speech_frontend import SpeechAdapter

    torch.manual_seed(0)
    cfg = tiny(audio_frontend="whisper_base", adapter_dim=24)
    model = build_model(cfg).eval()
    assert isinstance(model.audio_cnn, SpeechAdapter) and cfg.audio_in_dim == 512
    feats = torch.randn(2, 30, 512)
    lengths = torch.tensor([30, 12])
    with torch.no_grad():
        both = model.embed_audio(feats, lengths)
        padded = feats.clone()
        padded[1, 12:] = 7.0  # what lies past a query's length must not change its embedding
        torch.testing.assert_close(model.embed_audio(padded, lengths), both)
        torch.testing.assert_close(model.embed_audio(feats[1:, :12], lengths[1:]), both[1:], atol=1e-5, rtol=1e-4)
    assert both.shape == (2, 32) and torch.isfinite(both).all()
    with pytest.raises(ValueError, match=r"\[batch, frames, 512\] \(whisper_base\)"):
        model.embed_audio(torch.zeros(1, 30, 128), torch.tensor([30]))  # log-Mels into a front-end model
    assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="audio_frontend must be one of"):
        tiny(audio_frontend="wav2vec")


@needs_whisper
def test_front_end_variant_trains_and_embeds_spoken_queries(tiny_dataset_dir, tmp_path):
    """AVLnet on the frozen Whisper base encoder: a tiny training run (encoder live, no cache), then
    the search embedder runs the encoder on a wave and gives the model's embedding."""
    import numpy as np

    from svg_core.engine.training import main
    from svg_core.search.encode import Embedder

    out = tmp_path / "run"
    sets = [f"--set={k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY_AVLNET.items()]
    assert main(["--data", str(tiny_dataset_dir), "--model", "avlnet", "--out", str(out), "--epochs", "1",
                 "--batch-size", "4", "--noise", "clean", "--no-progress", "--frontend-cache", "none",
                 "--set", "audio_frontend=whisper_base", *sets]) == 0
    embedder = Embedder.from_checkpoint(out / "best")
    assert embedder.cfg.audio_frontend == "whisper_base"
    wave = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)
    emb = embedder.embed_waves([wave, wave[:8000]])
    assert emb.shape == (2, 32) and np.isfinite(emb).all()
    np.testing.assert_allclose(embedder.embed_waves([wave])[0], emb[0], rtol=1e-4, atol=1e-5)  # batch = alone
