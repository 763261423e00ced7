"""The app's default end-to-end model: the best val score (R1@0.5, then mIoU) among the loaded
end-to-end checkpoints, read from each one's metrics.json; speech front-end checkpoints are in
the menu like the others (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from app.fake import write_tiny_demo_set
from app.resources import AppConfig, Backend, CheckpointInfo, default_audio_model, discover_checkpoints, val_score
from svg_core.engine.checkpoint import save_checkpoint
from svg_core.models import BaseConfig, build_model
from tests.conftest import TINY


def _info(tmp_path: Path, name: str, val: dict | None, query: str = "audio", raw: str | None = None) -> CheckpointInfo:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    if raw is not None:
        (folder / "metrics.json").write_text(raw)
    elif val is not None:
        (folder / "metrics.json").write_text(json.dumps({"val": val}))
    return CheckpointInfo(name, folder, query, {"family": "text" if query == "text" else "base"})


def test_best_val_score_wins_then_mIoU_then_menu_order(tmp_path):
    infos = [
        _info(tmp_path, "vgcl_full", {"R1@0.5": 52.9, "mIoU": 52.7}),
        _info(tmp_path, "base_cpc", {"R1@0.5": 53.7, "mIoU": 50.0}),
        _info(tmp_path, "base", {"R1@0.5": 53.7, "mIoU": 53.7}),  # same R1@0.5: mIoU decides
        _info(tmp_path, "text", {"R1@0.5": 90.0, "mIoU": 90.0}, query="text"),  # not end-to-end
    ]
    assert default_audio_model(infos) == "base"
    assert val_score(infos[2]) == (53.7, 53.7)
    tie = [_info(tmp_path / "t", "first", {"R1@0.5": 1.0, "mIoU": 1.0}),
           _info(tmp_path / "t", "second", {"R1@0.5": 1.0, "mIoU": 1.0})]
    assert default_audio_model(tie) == "first"  # a tie keeps the menu order


def test_unscored_checkpoints_rank_last(tmp_path):
    infos = [_info(tmp_path, "no_metrics", None), _info(tmp_path, "broken", None, raw="{oops"),
             _info(tmp_path, "nan", {"R1@0.5": float("nan"), "mIoU": 1.0}),
             _info(tmp_path, "no_val", None, raw=json.dumps({"epoch": 3})),
             _info(tmp_path, "low", {"R1@0.5": 0.1, "mIoU": 0.1})]
    assert [val_score(i) for i in infos[:4]] == [None] * 4
    assert default_audio_model(infos) == "low"
    assert default_audio_model(infos[:4]) == "no_metrics"  # none scored: menu order
    assert default_audio_model([]) is None


def test_backend_menu_puts_the_default_first_and_lists_frontend_models(tmp_path):
    torch.manual_seed(0)
    ckpts = tmp_path / "ckpts"
    for name, cfg, r1 in (("vgcl_like", BaseConfig.small(**TINY), 40.0),
                          ("base_whisper", BaseConfig.small(**TINY, audio_frontend="whisper_base", adapter_dim=32), 55.0),
                          ("base_logmel", BaseConfig.small(**TINY), 50.0)):
        save_checkpoint(ckpts / name, build_model(cfg), cfg, extra={"val": {"R1@0.5": r1, "mIoU": r1}})
    assert [c.name for c in discover_checkpoints(ckpts)] == ["vgcl_like", "base_logmel", "base_whisper"]
    backend = Backend(AppConfig(data_dir=write_tiny_demo_set(tmp_path / "demo", n_videos=1, queries_per_video=1),
                                checkpoints_dir=ckpts))
    assert not backend.checkpoint_problems  # the front-end checkpoint loads without its encoder
    assert backend.model_names() == ["base_whisper", "vgcl_like", "base_logmel"]
    assert backend.grounder("base_whisper").audio_frontend == "whisper_base"
