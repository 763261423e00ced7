"""Tests of svg_core.reporting.model_card: a tiny trained run becomes a checkpoint folder with a model card."""

import json
import shlex
from pathlib import Path

import pytest
import torch

from svg_core.engine import training as train
from svg_core.engine.checkpoint import load_checkpoint
from svg_core.reporting.model_card import _main, export_run, train_command
from tests.fixtures_build import make_tiny_dataset


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("export")
    data = make_tiny_dataset(root / "data", n_videos=3, queries_per_video=2, seed=1)
    run = root / "run"
    assert train.main(["--data", str(data), "--model", "text", "--out", str(run), "--epochs", "1",
                       "--batch-size", "4", "--no-progress", "--set", "attn_layers=2", "--seed", "3"]) == 0
    return data, run


def test_export_copies_weights_logs_and_writes_a_card(text_run, tmp_path):
    data, run = text_run
    (tmp_path / "eval.txt").write_text("tqdm-bar 10%\rtqdm-bar 20%\ncheckpoint x on y [test]\n  R1@0.3   R1@0.5\n   1.00   2.00\n(n = 4 queries)\n")
    card = export_run(run, tmp_path / "ckpt", "Tiny text model", data_dir=None, test_eval=tmp_path / "eval.txt",
                      caveats=["made in a test"])
    names = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert names == {"model.safetensors", "config.json", "metrics.json", "train_log.csv", "README.md"}
    model, cfg, meta = load_checkpoint(tmp_path / "ckpt")
    assert cfg.attn_layers == 2 and meta["epoch"] == 1
    text = card.read_text()
    assert text.startswith("# Tiny text model") and "- made in a test" in text
    assert "checkpoint x on y [test]" in text and "(n = 4 queries)" in text and "tqdm-bar" not in text
    assert "python -m svg_core.synth build --world 2`" in text  # the fixture names no world: a pre-worlds folder
    assert f"preset (D = {cfg.model_dim})" in text  # the run's own width, not a fixed one


def test_train_command_round_trips(text_run):
    _, run = text_run
    args = json.loads((run / "best" / "metrics.json").read_text())["train_args"]
    command = train_command(args)
    assert command.startswith("python -m svg_core.train ") and "--set attn_layers=2" in command
    parsed = vars(train.build_parser().parse_args(shlex.split(command)[3:]))
    assert {k: parsed[k] for k in args} == args  # the same run, flag for flag


def test_export_refuses_unfinished_runs(tmp_path, capsys):
    (tmp_path / "run" / "best").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors"):
        _main([str(tmp_path / "run"), str(tmp_path / "out"), "--title", "x"])
