"""Grounding models (Base, VSLNet-audio, Base with a VGCL first stage): consistency, losses, presets."""

from __future__ import annotations

import json

import pytest
import torch

from svg_core.models import (
    BaseConfig,
    CPCConfig,
    TextConfig,
    VSLNetConfig,
    build_model,
    build_vocab,
    config_from_dict,
    config_to_dict,
)
from tests.model_batches import SENTENCES, make_batch, overfit, select

from tests.conftest import TINY, TINY_CPC, tiny_configs  # noqa: E402  (shared tiny configs)


@pytest.mark.parametrize("name", list(tiny_configs()))
def test_padded_batch_equals_single_items(name):
    torch.manual_seed(0)
    model = build_model(tiny_configs()[name]).eval()
    batch = make_batch([180, 61, 9, 0], seed=1)
    with torch.no_grad():
        out = model(batch)
        for i in range(4):
            single = model(select(batch, i))
            for key in ("start_prob", "end_prob", "inside_prob"):
                torch.testing.assert_close(out[key][i], single[key][0], atol=2e-5, rtol=1e-4)
            n_q = int(single["query_mask"][0].sum())
            assert int(out["query_mask"][i].sum()) == n_q
            torch.testing.assert_close(out["cq_attention"][i, :, :n_q], single["cq_attention"][0], atol=2e-5, rtol=1e-4)
            assert float(out["cq_attention"][i, :, n_q:].abs().sum()) == 0.0
            if "cross_attention" in single:
                n_z = single["cross_attention"].shape[1]
                torch.testing.assert_close(
                    out["cross_attention"][i, :n_z], single["cross_attention"][0], atol=2e-5, rtol=1e-4
                )


@pytest.mark.parametrize("name", ["base", "base_vgcl"])
def test_garbage_in_audio_padding_changes_nothing(name):
    model = build_model(tiny_configs()[name]).eval()
    batch = make_batch([120, 40], seed=2)
    noisy = dict(batch, audio=batch["audio"] + 50.0 * (~batch["audio_mask"]).unsqueeze(-1))
    with torch.no_grad():
        a, b = model(batch), model(noisy)
    torch.testing.assert_close(a["start_prob"], b["start_prob"])
    torch.testing.assert_close(a["inside_prob"], b["inside_prob"])


@pytest.mark.parametrize("name", ["base", "vslnet", "base_vgcl"])
def test_output_contract(name):
    cfg = tiny_configs()[name]
    model = build_model(cfg).eval()
    batch = make_batch([100, 30], seed=3)
    with torch.no_grad():
        out = model(batch)
    for key in ("start_logits", "end_logits", "inside_logits", "start_prob", "end_prob", "inside_prob"):
        assert out[key].shape == (2, 64), key
        assert torch.isfinite(out[key]).all(), key
    torch.testing.assert_close(out["start_prob"].sum(1), torch.ones(2))
    torch.testing.assert_close(torch.softmax(out["start_logits"], 1), out["start_prob"])
    assert out["cq_attention"].shape[:2] == (2, 64)
    assert out["query_mask"].shape == (2, out["cq_attention"].shape[2])
    if name == "base_vgcl":  # T_q' = ceil(T_a / k) / 4 steps attending over [full video; masked video]
        steps = {1: 25, 4: 6}[cfg.audio_subsample]  # 100 frames -> 25 (k = 1); -> 25 stacked -> 6 (k = 4)
        assert out["cross_attention"].shape == (2, steps, 128)


@pytest.mark.parametrize("name", ["base", "base_vgcl"])
def test_zero_length_and_very_short_audio(name):
    model = build_model(tiny_configs()[name]).eval()
    empty = make_batch([0], seed=4)
    empty["audio"] = torch.zeros(1, 0, 128)
    empty["audio_mask"] = torch.zeros(1, 0, dtype=torch.bool)
    with torch.no_grad():
        for batch in (empty, make_batch([1, 2, 3], seed=4)):
            out = model(batch)
            assert torch.isfinite(out["start_prob"]).all() and torch.isfinite(out["inside_prob"]).all()
            assert (out["query_mask"].sum(1) >= 1).all()
    model.train()
    batch = make_batch([0, 3], seed=5)
    loss, _ = model.loss(model(batch), batch)
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", ["base", "vslnet"])
def test_tiny_batch_overfits(name):
    torch.manual_seed(0)
    model = build_model(tiny_configs()[name]).train()
    batch = make_batch([40, 28], n_video=32, seed=6, spans=[(5.0, 12.0), (20.0, 30.0)])
    first, out, final = overfit(model, batch)
    assert final < 0.25 * first, (first, final)
    assert out["start_prob"].argmax(1).tolist() == [5, 20]


def test_boundary_losses_match_hand_computation():
    model = build_model(tiny_configs()["base"])
    n, c = 64, 2
    batch = make_batch([10], spans=[(10.0, 20.0)])
    uniform = {"start_logits_chunks": torch.zeros(1, c, n), "end_logits_chunks": torch.zeros(1, c, n),
               "video_mask": torch.ones(1, n, dtype=torch.bool)}  # fmt: skip
    # paper CE: 1/2 [CE_s + CE_e] = log N for uniform predictions
    torch.testing.assert_close(model.boundary_loss(uniform, batch), torch.tensor(float(torch.log(torch.tensor(64.0)))))
    # released KL: zero when the prediction is the Gaussian target itself
    model.cfg.boundary_loss = "kl"
    frames = torch.arange(n, dtype=torch.float32)
    sigma = (1 + 10 / 64) ** 0.5
    targets = [torch.exp(-0.5 * ((frames - mu) / sigma) ** 2) for mu in (10.0, 19.0)]
    logits = [torch.log(t / t.sum()).expand(1, c, n) for t in targets]
    exact = {"start_logits_chunks": logits[0], "end_logits_chunks": logits[1], "video_mask": uniform["video_mask"]}
    assert float(model.boundary_loss(exact, batch)) == pytest.approx(0.0, abs=1e-5)
    assert float(model.boundary_loss(uniform, batch)) > 1.0


def test_total_loss_uses_released_weights():
    cfg = tiny_configs()["base"]
    assert (cfg.boundary_weight, cfg.inside_weight) == (1.0, 6.0)
    model = build_model(cfg)
    batch = make_batch([50, 20])
    loss, logs = model.loss(model(batch), batch)
    assert float(loss.detach()) == pytest.approx(float(logs["boundary_loss"] + 6.0 * logs["inside_loss"]), rel=1e-5)


def test_freeze_pretrained_stage():
    cfg = BaseConfig.small(**TINY, cpc=CPCConfig.small(**TINY_CPC), freeze_pretrained=True)
    model = build_model(cfg).train()
    stage1 = model.query_encoder.encoder.stage1
    assert not any(p.requires_grad for p in stage1.parameters())
    assert not stage1.training and model.query_encoder.encoder.stage2.training
    assert any(p.requires_grad for p in model.query_encoder.encoder.stage2.parameters())


@pytest.mark.parametrize("name", list(tiny_configs()))
def test_config_json_round_trip(name):
    cfg = tiny_configs()[name]
    data = json.loads(json.dumps(config_to_dict(cfg)))
    assert data["family"] in {"base", "vslnet", "text"}
    assert config_from_dict(data) == cfg
    with pytest.raises(ValueError, match="unknown"):
        config_from_dict({**data, "not_a_field": 1})
    with pytest.raises(ValueError, match="family"):
        config_from_dict({k: v for k, v in data.items() if k != "family"})


def test_invalid_configs_raise():
    with pytest.raises(ValueError, match="chunk_num"):
        BaseConfig(model_dim=100, chunk_num=8)
    with pytest.raises(ValueError, match="davenet2_dims"):
        BaseConfig.small(model_dim=256, davenet2_dims=(128, 128))
    with pytest.raises(ValueError, match="no model family"):
        build_model(object())  # type: ignore[arg-type]


def test_paper_presets_construct_and_run_one_item():
    cfg = BaseConfig.paper()
    assert (cfg.model_dim, cfg.n_video_frames, cfg.max_audio_frames, cfg.chunk_num) == (1024, 64, 1024, 8)
    model = build_model(cfg).eval()
    n_params = sum(p.numel() for p in model.parameters())
    assert 30e6 < n_params < 80e6  # DAVEnet2 alone is ~42 M (method-notes 2.2)
    with torch.no_grad():
        out = model(make_batch([1024], seed=7))
    assert out["start_prob"].shape == (1, 64)
    assert out["cq_attention"].shape == (1, 64, 64)  # 1024 frames / 16
    vsl = build_model(VSLNetConfig.paper())
    assert type(vsl).__name__ == "VSLNetGrounder"
    small = BaseConfig.small()
    assert small.model_dim < 512 and small.chunk_num == 1


def test_models_package_never_imports_the_engine():
    """Models are built from their config alone: no module under svg_core/models names svg_core.engine."""
    from pathlib import Path

    import svg_core.models

    root = Path(svg_core.models.__file__).parent
    offenders = [p.name for p in root.glob("*.py") if
                 any(ln.lstrip().startswith(("from svg_core.engine", "import svg_core.engine"))
                     for ln in p.read_text().splitlines())]
    assert offenders == []


def test_build_model_refuses_an_unread_pretrained_encoder(tmp_path):
    cfg = BaseConfig.small(pretrained_encoder=str(tmp_path / "cpc"))
    with pytest.raises(ValueError, match="build_with_pretrained"):
        build_model(cfg)


def test_the_small_preset_widens_its_last_davenet2_stage_with_model_dim():
    # --set model_dim=256 alone builds a log-Mel model (the world-5 recipe), for Base and VSLNet alike
    for family in (BaseConfig, VSLNetConfig):
        cfg = family.small(model_dim=256)
        assert cfg.davenet2_dims == (128, 256) and cfg.model_dim == 256
        assert build_model(cfg).query_encoder.encoder.out_dim == 256
        assert family.small().davenet2_dims == (128, 128)
        assert family.small(model_dim=256, davenet2_dims=(64, 256)).davenet2_dims == (64, 256)  # set wins
    assert VSLNetConfig.small(model_dim=256).head_rnn == "lstm"
