"""``audio_subsample``: frame stacking before the first audio stage (Base, VSLNet, VGCL stage).

New configs stack 4 log-Mel frames per step; a config dict without the key (every checkpoint
written before the field) reads as 1 and builds the v2 network, weight for weight.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch.nn import functional as F

from svg_core.engine.checkpoint import load_checkpoint, save_checkpoint
from svg_core.models import (
    BaseConfig,
    CPCConfig,
    VSLNetConfig,
    build_model,
    config_from_dict,
    config_to_dict,
)
from svg_core.models.blocks import conv_out_lengths, stack_frames
from tests.conftest import TINY, TINY_CPC
from tests.model_batches import make_batch, overfit, select

ROOT = Path(__file__).resolve().parents[2]
# config.json of the world-2 checkpoints shipped before the field existed (git 058df32:checkpoints/NAME)
LEGACY = ["base", "base_cpc", "vgcl_full", "vslnet_audio"]
LEGACY_DIR = ROOT / "tests" / "fixtures" / "legacy_configs"


def query_steps(frames: int, k: int) -> int:
    """T_q of the Base encoder (kernel 5, two stride-2 stages per DAVEnet) for ``frames`` >= 1."""
    n = torch.tensor([math.ceil(frames / k)])
    for _ in range(4):
        n = conv_out_lengths(n, 5, 2, 2)
    return int(n)


def test_new_configs_default_to_4_and_presets_say_what_they_are():
    assert BaseConfig().audio_subsample == BaseConfig.small().audio_subsample == 4
    assert VSLNetConfig.small().audio_subsample == CPCConfig.small().audio_subsample == 4
    # the paper presets keep the paper's 10 ms steps
    assert BaseConfig.paper().audio_subsample == VSLNetConfig.paper().audio_subsample == 1
    assert CPCConfig.paper().audio_subsample == 1
    with pytest.raises(ValueError, match="audio_subsample"):
        BaseConfig.small(audio_subsample=0)
    with pytest.raises(ValueError, match="crop_frames"):
        CPCConfig.small(audio_subsample=16, crop_frames=128)  # 128 / 16 / 4 = 2 steps < K + 1


def test_stack_frames_is_a_kernel_k_stride_k_convolution():
    x = torch.randn(3, 10, 2)
    lengths = torch.tensor([10, 7, 0])
    x = x * (torch.arange(10)[None, :] < lengths[:, None]).unsqueeze(-1)
    stacked, steps = stack_frames(x, lengths, 4)
    assert stacked.shape == (3, 3, 8) and steps.tolist() == [3, 2, 0]  # ceil(10/4), ceil(7/4), 0
    torch.testing.assert_close(stacked[0, 1], x[0, 4:8].reshape(-1))  # frame-major: [f4, f5, f6, f7]
    assert float(stacked[0, 2, 4:].abs().sum()) == 0.0  # frames 10, 11 do not exist: zeros
    assert float(stacked[2].abs().sum()) == 0.0
    # a 1x1 convolution of the stacked steps == Conv1d(kernel=4, stride=4) over the frames
    weight = torch.randn(5, 8, 1)
    as_frames = weight.view(5, 4, 2).permute(0, 2, 1)  # [out, F, k]
    ref = F.conv1d(F.pad(x.transpose(1, 2), (0, 2)), as_frames, stride=4)
    torch.testing.assert_close(F.conv1d(stacked.transpose(1, 2), weight), ref)
    same, same_len = stack_frames(x, lengths, 1)
    assert same is x and same_len is lengths
    with pytest.raises(ValueError, match="factor"):
        stack_frames(x, lengths, 0)


def test_padding_garbage_never_reaches_a_partial_last_step():
    # lengths 61 and 38 are not multiples of 4: their last step is part frames, part padding
    model = build_model(BaseConfig.small(**TINY)).eval()
    batch = make_batch([61, 38], seed=2)
    noisy = dict(batch, audio=batch["audio"] + 50.0 * (~batch["audio_mask"]).unsqueeze(-1))
    with torch.no_grad():
        a, b = model(batch), model(noisy)
    for key in ("start_prob", "end_prob", "inside_prob"):
        torch.testing.assert_close(a[key], b[key])


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_query_lengths_use_ceil_and_the_mask_follows(k):
    model = build_model(BaseConfig.small(**TINY, audio_subsample=k)).eval()
    frames = [300, 61, 9, 1]
    with torch.no_grad():
        out = model(make_batch(frames, seed=3))
    assert out["query_mask"].sum(1).tolist() == [query_steps(n, k) for n in frames]
    assert out["cq_attention"].shape[2] == query_steps(300, k)
    # rows of the attention over query steps are zero past each item's steps, and sum to 1
    valid = out["query_mask"][:, None, :]
    assert float(out["cq_attention"].masked_select(~valid.expand_as(out["cq_attention"])).abs().sum()) == 0.0
    torch.testing.assert_close(out["cq_attention"].sum(-1), torch.ones(4, 64))


@pytest.mark.parametrize(
    "cfg",
    [BaseConfig.small(**TINY), VSLNetConfig.small(**TINY), BaseConfig.small(**TINY, cpc=CPCConfig.small(**TINY_CPC))],
    ids=["base", "vslnet", "base_vgcl"],
)
def test_fast_front_end_zero_length_short_audio_and_batch_vs_single(cfg):
    assert cfg.audio_subsample == 4 and (cfg.cpc is None or cfg.cpc.audio_subsample == 4)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    empty = make_batch([0], seed=4)
    empty["audio"], empty["audio_mask"] = torch.zeros(1, 0, 128), torch.zeros(1, 0, dtype=torch.bool)
    batch = make_batch([203, 17, 5, 3, 1, 0], seed=5)  # 1 to 3 frames: less than one full step
    with torch.no_grad():
        out = model(batch)
        for item in [empty] + [select(batch, i) for i in range(6)]:
            single = model(item)
            assert torch.isfinite(single["start_prob"]).all() and int(single["query_mask"].sum()) >= 1
        for i in range(6):
            single = model(select(batch, i))
            for key in ("start_prob", "end_prob", "inside_prob"):
                torch.testing.assert_close(out[key][i], single[key][0], atol=2e-5, rtol=1e-4)
            assert int(out["query_mask"][i].sum()) == int(single["query_mask"][0].sum())
    model.train()
    loss, _ = model.loss(model(batch), batch)
    loss.backward()
    assert torch.isfinite(loss)


def test_fast_small_preset_trains():
    """Smoke: the real small preset (not the tiny test sizes) at audio_subsample = 4 fits a batch."""
    torch.manual_seed(0)
    model = build_model(BaseConfig.small()).train()
    batch = make_batch([160, 96], n_video=32, seed=6, spans=[(5.0, 12.0), (20.0, 30.0)])
    first, out, final = overfit(model, batch)
    assert final < 0.25 * first, (first, final)
    assert out["start_prob"].argmax(1).tolist() == [5, 20]


@pytest.mark.parametrize("name", LEGACY)
def test_config_json_without_the_field_builds_the_v2_network(name):
    data = json.loads((LEGACY_DIR / f"{name}.json").read_text())
    assert "audio_subsample" not in data  # written before the field existed
    cfg = config_from_dict(data)
    assert isinstance(cfg, BaseConfig) and cfg.audio_subsample == 1
    assert cfg.cpc is None or cfg.cpc.audio_subsample == 1
    stem = "query_encoder.encoder.stage1." + ("genc.conv1.weight" if cfg.cpc else "cnn.stem.0.weight")
    v2 = build_model(cfg).state_dict()[stem]
    assert v2.shape[1] == cfg.n_mels  # one 10 ms log-Mel frame per step
    # with the new default the same dict is a different network
    fast = config_from_dict({**data, "audio_subsample": 4, **({"cpc": {**data["cpc"], "audio_subsample": 4}}
                                                            if data.get("cpc") else {})})
    assert build_model(fast).state_dict()[stem].shape[1] == 4 * v2.shape[1]


def test_new_configs_write_the_field_so_they_reload_as_written():
    cfg = BaseConfig.small(**TINY, cpc=CPCConfig.small(**TINY_CPC))
    data = json.loads(json.dumps(config_to_dict(cfg)))
    assert data["audio_subsample"] == 4 and data["cpc"]["audio_subsample"] == 4
    assert config_from_dict(data) == cfg


@pytest.mark.parametrize("name", ["base", "vgcl_full"])
def test_checkpoint_without_the_field_reloads_as_the_network_it_was_saved_from(name, tmp_path):
    """A world-2 checkpoint folder (config.json without audio_subsample) gives its saved network's outputs."""
    cfg = config_from_dict(json.loads((LEGACY_DIR / f"{name}.json").read_text()))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    save_checkpoint(tmp_path / name, model, cfg)
    written = json.loads((tmp_path / name / "config.json").read_text())
    (tmp_path / name / "config.json").write_text(json.dumps(
        {k: v for k, v in written.items() if k != "audio_subsample"}
        | ({"cpc": {k: v for k, v in written["cpc"].items() if k != "audio_subsample"}} if written.get("cpc") else {})))
    loaded, _, _ = load_checkpoint(tmp_path / name)
    batch = make_batch([300, 120], seed=1)
    with torch.no_grad():
        want, got = model(batch), loaded(batch)
    for key in ("start_prob", "end_prob", "inside_prob"):
        torch.testing.assert_close(got[key], want[key], atol=0, rtol=0, msg=f"{name} {key}")


def test_pretrained_stage_and_grounding_config_must_agree_on_the_framing():
    with pytest.raises(ValueError, match="audio_subsample=1"):
        build_model(BaseConfig.small(**TINY, cpc=CPCConfig.small(**TINY_CPC, audio_subsample=1)))
    both_v2 = BaseConfig.small(**TINY, audio_subsample=1, cpc=CPCConfig.small(**TINY_CPC, audio_subsample=1))
    with torch.no_grad():
        out = build_model(both_v2).eval()(make_batch([100, 30], seed=3))
    assert out["cross_attention"].shape == (2, 25, 128)  # 100 frames / 4, as before the field
