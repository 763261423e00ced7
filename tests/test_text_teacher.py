"""The text model as teacher of a spoken grounder: weight transfer, distillation loss, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from svg_core.engine import training as train
from svg_core.engine.checkpoint import load_checkpoint
from svg_core.engine.text_teacher import distill_loss, init_from_teacher, load_text_teacher
from svg_core.errors import UserInputError
from svg_core.models import BaseConfig, build_model

SMALL = ["--set", "model_dim=32", "--set", "chunk_num=2", "--set", "n_video_frames=16"]


@pytest.fixture(scope="module")
def text_ck(tiny_dataset_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "text"
    assert train.main(["--data", str(tiny_dataset_dir), "--model", "text", "--out", str(out), "--epochs", "1",
                       "--batch-size", "8", "--no-progress", *SMALL]) == 0
    return out / "best"


def _student_cfg(**overrides) -> BaseConfig:
    tiny = dict(model_dim=32, chunk_num=2, n_video_frames=16, davenet1_stem=16, davenet1_dims=(16, 32),
                audio_gru_dim=32, davenet2_stem=32, davenet2_dims=(32, 32))
    return BaseConfig.small(**{**tiny, **overrides})


def test_init_copies_the_grounding_side_and_not_the_query_encoder(text_ck):
    teacher = load_text_teacher(text_ck, _student_cfg())
    torch.manual_seed(0)
    student = build_model(_student_cfg())
    before = {k: v.clone() for k, v in student.state_dict().items()}
    copied = init_from_teacher(student, teacher)
    after, taught = student.state_dict(), teacher.state_dict()
    assert copied and all(not k.startswith("query_encoder.") for k in copied)
    assert {k.split(".")[0] for k in copied} == {"video_encoder", "video_attention", "cqa", "predictor"}
    for k in copied:
        assert torch.equal(after[k], taught[k]), k
    for k in after:
        if k.startswith("query_encoder."):
            assert torch.equal(after[k], before[k]), k  # the spoken query encoder is the student's own
    assert not any(p.requires_grad for p in teacher.parameters())  # the teacher stays frozen


def test_teacher_must_match_the_students_grounding_side(text_ck, tmp_path):
    with pytest.raises(UserInputError, match="n_video_frames=16.*the student 64"):
        load_text_teacher(text_ck, _student_cfg(n_video_frames=64))
    with pytest.raises(UserInputError, match="video_kernel=1, the student 3: train both with the same --set video_kernel"):
        load_text_teacher(text_ck, _student_cfg(video_kernel=3))  # the video conv would not be copied
    with pytest.raises(UserInputError, match="has no config.json"):
        load_text_teacher(tmp_path, _student_cfg())


def test_distill_loss_is_zero_on_itself_and_grows_with_disagreement():
    n = 8
    mask = torch.ones(2, n, dtype=torch.bool)

    def out(start, end, inside):
        return {"start_prob": torch.softmax(start, -1), "end_prob": torch.softmax(end, -1),
                "inside_prob": torch.sigmoid(inside), "video_mask": mask}

    g = torch.Generator().manual_seed(0)
    s, e, i = (torch.randn(2, n, generator=g) * 3 for _ in range(3))
    teacher = out(s, e, torch.full((2, n), -30.0))  # hard inside targets: BCE alone goes to ~0 when matched
    same = distill_loss(out(s, e, torch.full((2, n), -30.0)), teacher)
    near = distill_loss(out(s + 0.1 * torch.randn(2, n, generator=g), e, i), teacher)
    far = distill_loss(out(-s, -e, -i), teacher)
    assert abs(float(same)) < 1e-4
    assert 0 < float(near) < float(far)


def test_cli_trains_a_spoken_model_from_a_text_teacher(tiny_dataset_dir, text_ck, tmp_path):
    out = tmp_path / "student"
    args = ["--data", str(tiny_dataset_dir), "--model", "base", "--out", str(out), "--epochs", "1",
            "--batch-size", "4", "--max-train-items", "8", "--noise", "clean", "--no-progress", *SMALL,
            "--set", "davenet2_dims=32,32", "--set", "davenet2_stem=32", "--init-from-text", str(text_ck), "--distill-from", str(text_ck), "--distill-weight", "0.5"]
    assert train.main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["distill_from"] == {"checkpoint": str(text_ck), "weight": 0.5}
    assert summary["init_from_text"]["tensors_copied"] > 10
    header = (out / "log.csv").read_text().splitlines()[0]
    assert "train_distill_loss" in header
    model, cfg, _ = load_checkpoint(out / "best")  # the student alone: a plain Base checkpoint
    assert type(cfg).__name__ == "BaseConfig" and not any(k.startswith("teacher") for k in model.state_dict())

    with pytest.raises(UserInputError, match="teach a spoken model"):
        train._main(["--data", str(tiny_dataset_dir), "--model", "text", "--out", str(tmp_path / "bad"),
                     "--epochs", "1", "--no-progress", "--distill-from", str(text_ck)])


def test_warm_start_copies_every_weight_and_names_a_differing_field(text_ck):
    from dataclasses import replace

    from svg_core.engine.checkpoint import warm_start

    source, cfg, _ = load_checkpoint(text_ck)
    torch.manual_seed(123)  # another initialisation than the checkpoint's
    model = build_model(cfg)
    assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    assert warm_start(model, cfg, text_ck) == len(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    with pytest.raises(ValueError, match="its model_dim is 32, this run's 64"):
        warm_start(build_model(replace(cfg, model_dim=64)), replace(cfg, model_dim=64), text_ck)


def test_cli_init_from_continues_a_run_on_its_weights(tiny_dataset_dir, text_ck, tmp_path):
    out = tmp_path / "continued"
    common = ["--data", str(tiny_dataset_dir), "--model", "text", "--epochs", "1", "--batch-size", "8",
              "--no-progress", *SMALL]
    assert train.main([*common, "--out", str(out), "--init-from", str(text_ck)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["init_from"]["checkpoint"] == str(text_ck)
    assert summary["init_from"]["tensors_copied"] == len(load_checkpoint(text_ck)[0].state_dict())
    assert train.main([*common, "--out", str(tmp_path / "wide"), "--init-from", str(text_ck),
                       "--set", "model_dim=48"]) == 2  # one error line, exit 2: the widths differ
    with pytest.raises(UserInputError, match="--init-from and --init-from-text both set the weights"):
        train._main(["--data", str(tiny_dataset_dir), "--model", "base", "--out", str(tmp_path / "both"),
                     "--epochs", "1", "--no-progress", "--init-from", str(text_ck), "--init-from-text", str(text_ck)])
