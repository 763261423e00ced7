"""SIL training: timestamp blindness, ASP -> weak grounding -> Grounder -> evaluator round trip, CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from svg_core.engine import training as train
from svg_core.engine.checkpoint import load_checkpoint, load_state_dict_file
from svg_core.engine.sil_training import TIMESTAMP_KEYS, sentence_embeddings, weak_collate
from svg_core.models import ASPConfig
from tests.test_speech_frontend import needs_whisper

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--epochs", "2", "--batch-size", "4", "--noise", "clean", "--no-progress", "--threads", "1"]
SMALLER = ["--set", "model_dim=64", "--set", "map_dim=32", "--set", "video_conv_layers=1"]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _corrupted_copy(src: Path, dest: Path, seed: int = 3) -> Path:
    """The same dataset with every train moment moved to a random (valid) window."""
    shutil.copytree(src, dest)
    path = dest / "new_train_data.json"
    items = json.loads(path.read_text())
    rng = np.random.default_rng(seed)
    for item in items:
        duration = item[1]
        start = round(float(rng.uniform(0, 0.5)) * duration, 2)
        item[2] = [start, round(min(duration, start + float(rng.uniform(0.05, 0.5)) * duration), 2)]
    path.write_text(json.dumps(items))
    return dest


def test_weak_batches_carry_no_timestamps(tiny_dataset_dir):
    from svg_core.data.dataset import DatasetLayout, GroundingDataset

    dataset = GroundingDataset(DatasetLayout.from_dir(tiny_dataset_dir), "train", n_video_frames=32)
    batch = weak_collate([dataset[0], dataset[1]])
    assert not set(TIMESTAMP_KEYS) & set(batch) and "sentence" not in batch
    assert {"video", "audio", "audio_lengths", "video_id", "query_id"} <= set(batch)


def test_training_is_blind_to_timestamps(tiny_dataset_dir, tmp_path):
    """Same seed, train timestamps corrupted: identical training losses and weights."""
    bad = _corrupted_copy(tiny_dataset_dir, tmp_path / "bad")
    original = json.loads((tiny_dataset_dir / "new_train_data.json").read_text())
    assert json.loads((bad / "new_train_data.json").read_text()) != original
    for name, data in (("real", tiny_dataset_dir), ("bad", bad)):
        assert train.main(["--data", str(data), "--model", "sil", "--out", str(tmp_path / f"run_{name}"),
                           "--log-every", "1", *FAST, *SMALLER]) == 0
    real_steps, bad_steps = _rows(tmp_path / "run_real" / "steps.csv"), _rows(tmp_path / "run_bad" / "steps.csv")
    assert len(real_steps) == 4 and [r["loss"] for r in real_steps] == [r["loss"] for r in bad_steps]
    real_w = load_state_dict_file(tmp_path / "run_real" / "last" / "model.safetensors")
    bad_w = load_state_dict_file(tmp_path / "run_bad" / "last" / "model.safetensors")
    assert real_w.keys() == bad_w.keys() and all(torch.equal(real_w[k], bad_w[k]) for k in real_w)
    # the check has teeth: a supervised model trained on the two copies does see the corruption
    for name, data in (("real", tiny_dataset_dir), ("bad", bad)):
        assert train.main(["--data", str(data), "--model", "base", "--out", str(tmp_path / f"base_{name}"),
                           "--log-every", "1", "--max-train-items", "4", *FAST]) == 0
    assert _rows(tmp_path / "base_real" / "steps.csv")[0]["loss"] != _rows(tmp_path / "base_bad" / "steps.csv")[0]["loss"]
    summary = json.loads((tmp_path / "run_real" / "summary.json").read_text())
    assert "no timestamps" in summary["supervision"] and "val split's timestamps" in summary["model_selection"]


def test_asp_then_sil_then_grounder_and_evaluator(tiny_dataset_dir, tmp_path, capsys):
    asp_dir, sil_dir = tmp_path / "asp", tmp_path / "sil"
    assert train.main(["--stage", "pretrain", "--model", "sil_asp", "--data", str(tiny_dataset_dir), "--out", str(asp_dir),
                       "--set", "sentence_encoder=words", "--set", "use_robustness=true", "--set", "ctc_unit=char",
                       "--set", "model_dim=64", *FAST]) == 0
    asp_model, asp_cfg, asp_meta = load_checkpoint(asp_dir / "encoder")
    assert isinstance(asp_cfg, ASPConfig) and asp_cfg.use_robustness and asp_cfg.ctc_unit == "char"
    assert {"rob_loss", "seq_loss", "word_loss", "nar_loss", "ctc_loss", "quantity_loss"} <= set(asp_meta["last_val"])
    assert asp_meta["sentence_encoder"] == "words"
    assert train.main(["--data", str(tiny_dataset_dir), "--model", "sil", "--pretrained-encoder", str(asp_dir / "encoder"),
                       "--out", str(sil_dir), *FAST, "--set", "model_dim=64", "--set", "map_dim=32"]) == 0
    model, cfg, meta = load_checkpoint(sil_dir / "last")
    assert cfg.asp == asp_cfg and cfg.freeze_speech_encoder and "frozen" in meta["speech_encoder"]
    encoder = model.speech.encoder.state_dict()  # frozen: still the pre-trained weights
    assert all(torch.equal(encoder[k], v) for k, v in asp_model.encoder.state_dict().items())

    from svg_core.data.dataset import DatasetLayout
    from svg_core.engine.predictor import Grounder

    grounder = Grounder.from_checkpoint(sil_dir / "best")
    assert grounder.supervision == "weakly supervised"
    layout = DatasetLayout.from_dir(tiny_dataset_dir)
    record = layout.records("test")[0][0]
    from svg_core.audio.frontend import load_audio
    from svg_core.data.video_features import VideoFeatureStore

    feats, wave = VideoFeatureStore(layout.features).get(record.video_id), load_audio(layout.audio_dir / record.wav_name)
    result = grounder.localize(feats, record.duration_sec, audio=wave)
    pmap = grounder.proposal_map(feats, record.duration_sec, audio=wave)
    assert pmap.shape == (32, 32) and np.isnan(pmap[5, 2]) and np.nanmax(pmap) == pytest.approx(result["score"])
    assert 0 <= result["start_sec"] < result["end_sec"] <= record.duration_sec + 1e-6 and len(result["top5_sec"]) == 5
    assert result["attention"].shape[0] == 32 and result["supervision"] == "weakly supervised"

    from svg_core.engine import evaluation as evaluate

    capsys.readouterr()
    metrics_path = tmp_path / "metrics.json"
    assert evaluate.main(["--checkpoint", str(sil_dir / "best"), "--data", str(tiny_dataset_dir), "--noise", "clean",
                          "--listening", "--metrics-out", str(metrics_path), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "R1@0.1" in printed and "R5@0.1" in printed and "Does it listen?" in printed
    saved = json.loads(metrics_path.read_text())
    assert {"R1@0.1", "R1@0.3", "R1@0.5", "R1@0.7", "R5@0.1", "mIoU"} <= set(saved["metrics"])
    assert {"silent", "other_video"} <= set(saved["listening"]["controls"])

    from svg_core.reporting.model_card import export_run

    card = export_run(sil_dir, tmp_path / "card", "SIL tiny").read_text()
    assert "**Weakly supervised.**" in card and "val split's" in card


def test_bad_sil_flags_print_one_error_line(tiny_dataset_dir, tmp_path, capsys):
    cases = [(["--stage", "pretrain", "--model", "sil"], "sil_asp"),
             (["--model", "sil_asp"], "--stage pretrain"),
             (["--model", "sil", "--set", "use_avcl=maybe"], "use_avcl"),
             (["--model", "sil", "--pretrained-encoder", str(ROOT / "checkpoints" / "text")], "ASP checkpoint"),
             (["--stage", "pretrain", "--model", "sil_asp", "--set", f"sentence_encoder_path={tmp_path}/none"], "not found")]
    for extra, words in cases:
        capsys.readouterr()
        assert train.main(["--data", str(tiny_dataset_dir), "--out", str(tmp_path / "x"), *extra, *FAST]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], (extra, err)


def test_sentence_embeddings():
    words = ASPConfig.small(sentence_encoder="words", text_emb_dim=16)
    a = sentence_embeddings(["a red ball", "a red ball", "the blue star"], words)
    assert a.shape == (3, 16) and np.array_equal(a[0], a[1]) and not np.allclose(a[0], a[2])
    shipped = ROOT / "checkpoints" / "text"
    if (shipped / "config.json").is_file():  # the project's own text grounder, the default
        emb = sentence_embeddings(["the red ball bounces", "a star spins"],
                                  ASPConfig.small(sentence_encoder_path=str(shipped)))
        width = json.loads((shipped / "config.json").read_text())["model_dim"]  # E = the grounder's D
        assert emb.shape == (2, width) and np.isfinite(emb).all() and not np.allclose(emb[0], emb[1])
        from svg_core.engine.sil_training import SentenceBank

        with pytest.warns(UserWarning, match="knows only"):  # the tiny fixture's captions: unknown words
            bank = SentenceBank(["query 0 about v_tiny000"], [], ASPConfig.small(sentence_encoder_path=str(shipped)))
        assert bank.coverage < 0.5


def test_app_menu_labels_sil_and_draws_its_proposal_map(tmp_path):
    from types import SimpleNamespace

    from app import plots
    from app.resources import discover_checkpoints
    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.engine.predictor import Grounder
    from svg_core.models import build_model
    from tests.test_sil import tiny_asp, tiny_sil

    cfg = tiny_sil()
    save_checkpoint(tmp_path / "sil_small", build_model(cfg), cfg)
    asp = build_model(tiny_asp())
    save_checkpoint(tmp_path / "sil_asp_encoder", asp, asp.cfg)
    found = discover_checkpoints(tmp_path)
    assert [c.name for c in found] == ["sil_small (weakly supervised)"]  # the ASP encoder is no grounder
    grounder = Grounder.from_checkpoint(found[0].path)
    rng = np.random.default_rng(0)
    e2e = grounder.localize(rng.standard_normal((40, 500)).astype(np.float32), 20.0,
                            audio=(0.1 * rng.standard_normal(16000)).astype(np.float32))
    result = SimpleNamespace(e2e=e2e, duration_sec=20.0, query=SimpleNamespace(gt_sec=(2.0, 9.0)), fake={},
                             noisy_wave=np.zeros(16000, np.float32), noise_span_sec=(0.0, 0.0))
    fig = plots.proposal_map_figure(result)
    assert fig.axes[0].get_title().startswith("Proposal map (weakly supervised)")
    heat = plots.heatmap_figure(result, np.zeros((101, 128), np.float32))
    assert any(ax.get_title().startswith("Proposal map") for ax in heat.axes)
    assert plots.save_png(heat, tmp_path / "figs", "heatmap").stat().st_size > 0


@needs_whisper
def test_sil_on_the_speech_front_end_trains_and_grounds_a_wave(tiny_dataset_dir, tmp_path):
    """SIL with audio_frontend=whisper_base: trained (encoder live, no cache), then the Grounder runs the
    frozen encoder on a wav and draws the proposal map; the summary names the front-end."""
    from svg_core.audio.frontend import load_audio
    from svg_core.data.dataset import DatasetLayout
    from svg_core.data.video_features import VideoFeatureStore
    from svg_core.engine.predictor import Grounder

    run = tmp_path / "sil_fe"
    assert train.main(["--data", str(tiny_dataset_dir), "--model", "sil", "--out", str(run), "--frontend-cache", "none",
                       "--set", "audio_frontend=whisper_base", "--set", "adapter_dim=32", *SMALLER, *FAST]) == 0
    notes = json.loads((run / "summary.json").read_text())
    assert "frozen whisper_base encoder" in json.dumps(notes)
    grounder = Grounder.from_checkpoint(run / "best")
    assert grounder.audio_frontend == "whisper_base" and grounder.supervision == "weakly supervised"
    layout = DatasetLayout.from_dir(tiny_dataset_dir)
    record = layout.records("test")[0][0]
    feats, wave = VideoFeatureStore(layout.features).get(record.video_id), load_audio(layout.audio_dir / record.wav_name)
    result = grounder.localize(feats, record.duration_sec, audio=wave)
    pmap = grounder.proposal_map(feats, record.duration_sec, audio=wave)
    assert np.nanmax(pmap) == pytest.approx(result["score"]) and len(result["top5_sec"]) == 5
    # the one evaluator runs the frozen encoder live for it too (the test split is never cached)
    from svg_core.evaluate import main as evaluate_main

    assert evaluate_main(["--checkpoint", str(run / "best"), "--data", str(tiny_dataset_dir), "--split", "test",
                          "--listening", "--out", str(tmp_path / "sil_fe_test.jsonl")]) == 0
    assert len((tmp_path / "sil_fe_test.jsonl").read_text().splitlines()) == len(layout.records("test")[0])


def test_shipped_sil_checkpoint_loads_strictly_and_its_map_follows_the_query():
    """checkpoints/sil_whisper: the card's recipe is in its config (product fusion, four video
    negatives), the weights fit exactly, and two different speeches on one video give two different
    proposal maps (the paper's BiGRU model's maps differ only by an offset; this one's argmax can
    move). Encoder features stand in for the frozen Whisper encoder's output."""
    model, cfg, _ = load_checkpoint(ROOT / "checkpoints" / "sil_whisper")
    assert (cfg.clip_fusion, cfg.video_attention, cfg.mil_negatives, cfg.audio_frontend) == ("product", False, 4, "whisper_base")
    g = torch.Generator().manual_seed(0)
    video = torch.randn(1, cfg.n_video_frames, cfg.video_dim_in, generator=g).expand(2, -1, -1)
    speech = torch.randn(2, 60, 512, generator=g)
    with torch.no_grad():
        out = model.eval()({"video": video, "audio": speech, "audio_lengths": torch.tensor([60, 60])})
    scores, cells = out["proposal_scores"], out["proposal_mask"]
    assert bool(cells.any()) and not torch.allclose(scores[0][cells[0]], scores[1][cells[1]], atol=1e-4)
    shift = scores[0][cells[0]] - scores[1][cells[1]]
    assert float(shift.max() - shift.min()) > 1e-3  # not one offset over the whole map
    top = [int(scores[i].masked_fill(~cells[i], float("-inf")).argmax()) for i in range(2)]
    assert top[0] != top[1]  # the best proposal moves with the speech
    assert "Below the blind prior" in (ROOT / "checkpoints" / "sil_whisper" / "README.md").read_text()  # the card says so
