"""Checkpoints: round trip, no pickled code, atomic writes."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from torch import nn

import svg_core.engine.checkpoint as ckpt
from svg_core.models import config_to_dict
from tests.fixtures_build import tiny_base_config


class _Evil:
    """Stands for any class a malicious pickle could name."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _model_and_cfg(seed: int = 0):
    from svg_core.models import build_model

    torch.manual_seed(seed)
    cfg = tiny_base_config()
    return build_model(cfg), cfg


def _batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([50, 37])
    audio = torch.randn(2, 50, 128, generator=g) * (torch.arange(50)[None, :, None] < lengths[:, None, None])
    return {"video": torch.randn(2, 64, 500, generator=g), "video_mask": torch.ones(2, 64, dtype=torch.bool),
            "audio": audio, "audio_lengths": lengths, "audio_mask": torch.arange(50)[None] < lengths[:, None]}


def test_round_trip_gives_identical_weights_and_outputs(tmp_path):
    model, cfg = _model_and_cfg()
    model.eval()
    ckpt.save_checkpoint(tmp_path / "ck", model, cfg, extra={"val": {"R1@0.5": 12.5}})
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["family"] == "base"
    loaded, cfg2, meta = ckpt.load_checkpoint(tmp_path / "ck")
    assert config_to_dict(cfg2) == config_to_dict(cfg)
    assert meta["val"] == {"R1@0.5": 12.5}
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    batch = _batch()
    with torch.no_grad():
        assert torch.equal(model(batch)["start_prob"], loaded(batch)["start_prob"])


def test_ddp_wrapper_prefix_is_not_saved(tmp_path):
    model, cfg = _model_and_cfg()
    wrapped = nn.DataParallel(model)  # same "module." prefix as DistributedDataParallel
    ckpt.save_checkpoint(tmp_path / "ck", wrapped, cfg)
    names = ckpt.load_state_dict_file(tmp_path / "ck" / "model.safetensors").keys()
    assert not any(n.startswith("module.") for n in names)
    ckpt.load_checkpoint(tmp_path / "ck")


def test_load_refuses_model_pt_carrying_a_custom_class(tmp_path):
    model, cfg = _model_and_cfg()
    ckpt.save_checkpoint(tmp_path / "ck", model, cfg)
    (tmp_path / "ck" / "model.safetensors").unlink()
    state = dict(model.state_dict())
    state["payload"] = _Evil()
    torch.save(state, tmp_path / "ck" / "model.pt")
    with pytest.raises(ValueError, match="refusing to load .*pickled code"):
        ckpt.load_checkpoint(tmp_path / "ck")


def test_load_refuses_pickle_posing_as_safetensors(tmp_path):
    model, cfg = _model_and_cfg()
    ckpt.save_checkpoint(tmp_path / "ck", model, cfg)
    with open(tmp_path / "ck" / "model.safetensors", "wb") as f:
        pickle.dump(_Evil(), f)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        ckpt.load_checkpoint(tmp_path / "ck")


def test_training_state_refuses_a_pickled_global(tmp_path):
    path = tmp_path / "training_state.pt"
    with open(path, "wb") as f:
        pickle.dump({"epoch": 1, "hook": os.system}, f, protocol=2)  # a global: code to run at load
    with pytest.raises(ValueError, match="refusing to load .*(GLOBAL|Unsupported)"):
        ckpt.load_training_state(path)


def test_training_state_round_trip_and_unsafe_state_never_written(tmp_path):
    model, _ = _model_and_cfg()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(_batch())["start_logits"].sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "rng": {"torch": torch.get_rng_state()}, "epoch": 3,
             "best": {"score": [12.5, 30.0], "metrics": {"mIoU": 30.0}}}
    path = ckpt.save_training_state(tmp_path / "last" / "training_state.pt", state)
    back = ckpt.load_training_state(path)
    assert back["epoch"] == 3 and torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    opt.load_state_dict(back["optimizer"])
    with pytest.raises(ValueError, match="refusing"):
        ckpt.save_training_state(tmp_path / "bad" / "training_state.pt", {"x": _Evil()})
    assert list((tmp_path / "bad").iterdir()) == []  # neither the file nor a temporary remains


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model, cfg = _model_and_cfg(seed=0)
    ckpt.save_checkpoint(tmp_path / "ck", model, cfg)
    before = (tmp_path / "ck" / "model.safetensors").read_bytes()

    def crash_mid_write(state, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")  # half a file on disk...
        raise OSError("disk full")  # ...then the writer dies

    monkeypatch.setattr(ckpt, "save_file", crash_mid_write)
    other, _ = _model_and_cfg(seed=1)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path / "ck", other, cfg)
    assert (tmp_path / "ck" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "model.safetensors"]
    ckpt.load_checkpoint(tmp_path / "ck")


def test_missing_files_and_mismatched_weights_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        ckpt.load_checkpoint(tmp_path)
    model, cfg = _model_and_cfg()
    ckpt.save_checkpoint(tmp_path / "ck", model, cfg)
    (tmp_path / "ck" / "config.json").write_text(json.dumps(config_to_dict(tiny_base_config(model_dim=64, davenet2_dims=(32, 64)))))
    with pytest.raises(ValueError, match="do not match the config|size mismatch"):
        ckpt.load_checkpoint(tmp_path / "ck")
