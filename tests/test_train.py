"""Training: CLI, resume determinism, best-on-val selection, pre-training -> grounding, evaluate CLI."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from svg_core.engine import training as train
from svg_core.engine.checkpoint import load_checkpoint, load_state_dict_file
from svg_core.data.dataset import DatasetLayout, GroundingDataset
from svg_core.models import build_model
from svg_core.audio.noise import NoiseConfig
from svg_core.engine.loop import DistEnv, FitConfig, InverseSqrtSchedule, fit
from tests.fixtures_build import make_tiny_dataset, tiny_base_config


@pytest.fixture
def data_dir(tiny_dataset_dir) -> Path:
    return tiny_dataset_dir  # the shared tiny dataset of conftest.py (read only here)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _Killed(Exception):
    pass


@dataclass
class _KilledAtStep(train.GroundingTask):
    """A grounding task whose process 'dies' when it reaches ``kill_at_step``."""

    kill_at_step: int = -1

    def compute_loss(self, model, batch, step, total_steps):
        if step == self.kill_at_step:
            raise _Killed(f"killed at step {step}")
        return super().compute_loss(model, batch, step, total_steps)


def _tiny_task(data_dir: Path, kill_at_step: int = -1) -> train.GroundingTask:
    layout = DatasetLayout.from_dir(data_dir)
    noise = NoiseConfig(preset="normal", kinds=("white", "pink"))  # noise redrawn every epoch
    torch.manual_seed(0)
    cfg = tiny_base_config()
    model = build_model(cfg)
    return _KilledAtStep(model, cfg, GroundingDataset(layout, "train", noise=noise, seed=0),
                         GroundingDataset(layout, "val", noise=noise, seed=1), 8, False, kill_at_step=kill_at_step)


def test_cli_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--data", "--model", "--preset", "--resume", "--pretrained-encoder", "--freeze-encoder",
                 "--pacing", "--kappa", "--no-curriculum", "--no-entire-video", "--no-self-attention",
                 "--crop-frames", "--amp", "--device", "--max-train-items", "--noise"):
        assert flag in text
    parser = train.build_parser()
    assert all(action.help for action in parser._actions)


def test_inverse_sqrt_schedule_warms_up_then_decays():
    sched = InverseSqrtSchedule(warmup_steps=800, init_factor=1e-7 / 5e-4)
    assert sched(0) == pytest.approx(2e-4)
    assert sched(400) == pytest.approx(0.5, abs=1e-3)
    assert sched(800) == pytest.approx(1.0)
    assert sched(3200) == pytest.approx(0.5)  # 5e-4 * sqrt(800 / 3200)


def test_resume_after_kill_reaches_the_same_weights(data_dir, tmp_path):
    # 8 train items, global batch 4 -> 2 steps per epoch, 2 epochs = 4 steps.
    def config(out: Path, resume: bool) -> FitConfig:
        return FitConfig(out_dir=out, epochs=2, batch_size=4, lr=2e-3, seed=7, resume=resume,
                         log_every=1, progress=False)

    fit(_tiny_task(data_dir), config(tmp_path / "full", False), DistEnv())
    with pytest.raises(_Killed):  # dies in the middle of epoch 2 (after its first update)
        fit(_tiny_task(data_dir, kill_at_step=3), config(tmp_path / "cut", False), DistEnv())
    assert _rows(tmp_path / "cut" / "log.csv")[-1]["epoch"] == "1"
    summary = fit(_tiny_task(data_dir), config(tmp_path / "cut", True), DistEnv())
    assert summary["epochs_run"] == 1

    full = load_state_dict_file(tmp_path / "full" / "last" / "model.safetensors")
    resumed = load_state_dict_file(tmp_path / "cut" / "last" / "model.safetensors")
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    # the logs of the killed run's partial epoch are replaced, not duplicated
    assert [r["epoch"] for r in _rows(tmp_path / "cut" / "log.csv")] == ["1", "2"]
    assert [r["step"] for r in _rows(tmp_path / "cut" / "steps.csv")] == [str(s) for s in range(1, 5)]
    assert _rows(tmp_path / "cut" / "log.csv")[-1]["train_loss"] == _rows(tmp_path / "full" / "log.csv")[-1]["train_loss"]


def test_cli_trains_selects_best_on_val_and_evaluates(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--data", str(data_dir), "--model", "base", "--preset", "small", "--out", str(out),
                       "--epochs", "2", "--batch-size", "4", "--max-train-items", "4", "--noise", "clean", "--no-progress"]) == 0
    rows = _rows(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "val_R1@0.5", "val_mIoU", "lr", "train_samples_per_sec"} <= set(rows[0])
    assert list((out / "tb").glob("events.out.tfevents.*"))
    best_meta = json.loads((out / "best" / "metrics.json").read_text())
    assert best_meta["selected_on"] == "val"
    scores = [(float(r["val_R1@0.5"]), float(r["val_mIoU"])) for r in rows]
    assert best_meta["epoch"] == 1 + max(range(len(scores)), key=lambda i: (scores[i], -i))
    model, cfg, _ = load_checkpoint(out / "best")
    assert cfg.model_dim == 128  # the small preset

    from svg_core.engine import evaluation as evaluate

    capsys.readouterr()
    preds = tmp_path / "preds.jsonl"
    assert evaluate.main(["--checkpoint", str(out / "best"), "--data", str(data_dir), "--split", "test",
                          "--noise", "clean", "--out", str(preds)]) == 0
    printed = capsys.readouterr().out
    for key in ("R1@0.3", "R1@0.5", "R1@0.7", "R5@0.3", "R5@0.5", "R5@0.7", "mIoU"):
        assert key in printed
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(lines) == 8
    assert all(0 <= w[0] <= w[1] <= rec["duration_sec"] + 1e-6 for rec in lines for w in rec["pred_windows_sec"])


def test_pretrain_vgcl_then_ground_with_frozen_encoder(data_dir, tmp_path):
    pre = tmp_path / "pre"
    assert train.main(["--stage", "pretrain", "--model", "vgcl", "--data", str(data_dir), "--out", str(pre),
                       "--epochs", "1", "--batch-size", "4", "--kappa", "2", "--pacing", "exponential",
                       "--crop-frames", "128", "--log-every", "1", "--noise", "clean", "--no-progress"]) == 0
    enc_model, enc_cfg, enc_meta = load_checkpoint(pre / "encoder")
    assert enc_cfg.video_guided and enc_cfg.kappa == 2 and enc_cfg.crop_frames == 128
    assert "loss" in enc_meta["last_val"]
    steps = _rows(pre / "steps.csv")
    assert len(steps) == 2

    ground = tmp_path / "ground"
    assert train.main(["--data", str(data_dir), "--model", "vgcl_base", "--pretrained-encoder", str(pre / "encoder"),
                       "--freeze-encoder", "--out", str(ground), "--epochs", "1", "--batch-size", "4", "--noise", "clean",
                       "--max-train-items", "4", "--no-progress"]) == 0
    model, cfg, _ = load_checkpoint(ground / "last")
    assert cfg.cpc is not None and cfg.cpc.video_guided and cfg.freeze_pretrained
    # frozen: the grounding model's first audio stage still holds the pre-trained weights
    stage1 = model.query_encoder.encoder.stage1.state_dict()
    for name, value in enc_model.encoder.state_dict().items():
        assert torch.equal(stage1[name], value), name

    with pytest.raises(ValueError, match="needs a plain CPC encoder"):
        train._main(["--data", str(data_dir), "--model", "cpc_base", "--pretrained-encoder", str(pre / "encoder"),
                    "--out", str(tmp_path / "bad"), "--epochs", "1", "--no-progress"])


def test_text_model_trains_from_the_cli(data_dir, tmp_path):
    out = tmp_path / "text"
    assert train.main(["--data", str(data_dir), "--model", "text", "--out", str(out), "--epochs", "1",
                       "--batch-size", "8", "--no-progress", "--set", "chunk_num=2", "--set", "attn_layers=2",
                       "--crop-prob", "0.5"]) == 0  # the crop augmentation runs through a whole epoch
    _, cfg, meta = load_checkpoint(out / "best")
    assert "query" in cfg.vocab and meta["synthetic_data"] is True
    assert (cfg.chunk_num, cfg.attn_layers) == (2, 2)  # --set overrides reach the saved config


def test_set_overrides_are_typed_and_checked():
    from svg_core.models import BaseConfig, CPCConfig

    got = train.parse_overrides(["chunk_num=2", "davenet1_dims=32,64", "video_rnn=false", "dropout=0.2"], BaseConfig)
    assert got == {"chunk_num": 2, "davenet1_dims": (32, 64), "video_rnn": False, "dropout": 0.2}
    assert train.parse_overrides(["kappa=5"], CPCConfig) == {"kappa": 5}
    with pytest.raises(ValueError, match="KEY one of .*chunk_num"):
        train.parse_overrides(["chunks=2"], BaseConfig)
    with pytest.raises(ValueError, match="bad value for chunk_num"):
        train.parse_overrides(["chunk_num=two"], BaseConfig)
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        train.parse_overrides(["chunk_num"], BaseConfig)
    with pytest.raises(ValueError, match="bad value for head_rnn.*expected one of gru, lstm"):
        train.parse_overrides(["head_rnn=transformer"], BaseConfig)


def test_config_json_and_set_share_one_conversion():
    from svg_core.models import BaseConfig, coerce_fields, config_from_dict

    from_json = coerce_fields(BaseConfig, {"davenet1_dims": [32, 64], "video_rnn": False})
    from_text = coerce_fields(BaseConfig, {"davenet1_dims": "32,64", "video_rnn": "false"}, from_text=True)
    assert from_json == from_text == {"davenet1_dims": (32, 64), "video_rnn": False}
    with pytest.raises(ValueError, match="bad value for boundary_loss"):
        config_from_dict({"family": "base", "boundary_loss": "mse"})
    args = train.build_parser().parse_args(["--data", "d", "--model", "vgcl", "--stage", "pretrain", "--out", "o",
                                            "--set", "kappa=5"])
    with pytest.raises(ValueError, match="--set kappa: set by its own flag"):
        train.pretrain_config(args)
    args.overrides = ["z_dim=64"]
    assert train.pretrain_config(args).z_dim == 64


def test_bad_flags_raise_clear_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match="needs --pretrained-encoder"):
        train._main(["--data", str(data_dir), "--model", "vgcl_base", "--out", str(tmp_path / "x"), "--no-progress"])
    with pytest.raises(ValueError, match="--amp needs CUDA"):
        train._main(["--data", str(data_dir), "--model", "base", "--out", str(tmp_path / "y"), "--device", "cpu",
                    "--amp", "--epochs", "1", "--no-progress"])
    with pytest.raises(ValueError, match="--speech-cache .* does not exist"):
        train._main(["--data", str(data_dir), "--model", "base", "--out", str(tmp_path / "w"),
                    "--speech-cache", str(tmp_path / "missing.h5"), "--no-progress"])
    for refused in (["--model", "fsan_text"], ["--model", "cpc", "--stage", "pretrain"]):  # no moments to keep whole
        with pytest.raises(ValueError, match="--crop-prob is for supervised grounding"):
            train._main(["--data", str(data_dir), *refused, "--out", str(tmp_path / "c"), "--crop-prob", "0.5",
                        "--no-progress"])
    with pytest.raises(ValueError, match="no .*training_state.pt"):
        train._main(["--data", str(data_dir), "--model", "base", "--out", str(tmp_path / "z"), "--resume",
                    "--no-progress"])


def test_bench_train_prints_a_table(capsys):
    from svg_core.reporting import bench

    assert bench.main(["train", "--models", "text", "--steps", "1", "--warmup", "0", "--batch-size", "2",
                       "--cpu-only"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split() == ["model", "cpu"]
    name, value = lines[2].split()
    assert name == "text" and float(value) > 0


def test_norm_layers_and_biases_get_no_weight_decay():
    from torch import nn

    from svg_core.engine.loop import decay_groups

    model = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Conv1d(3, 2, 3), nn.BatchNorm1d(2))
    decayed, plain = decay_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model[0].weight), id(model[2].weight)}
    assert len(plain["params"]) == 6  # 2 biases, LayerNorm weight+bias, BatchNorm weight+bias
    model[0].weight.requires_grad_(False)
    assert id(model[0].weight) not in {id(p) for g in decay_groups(model, 0.1) for p in g["params"]}
