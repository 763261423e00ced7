"""FSAN training: timestamp blindness, train -> save -> Grounder -> evaluator round trip (text and speech), CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from svg_core.engine import training as train
from svg_core.engine.checkpoint import load_checkpoint, load_state_dict_file
from svg_core.models import FSANConfig
from tests.test_sil_training import _corrupted_copy, _rows

FAST = ["--epochs", "2", "--batch-size", "4", "--noise", "clean", "--no-progress", "--threads", "1"]
SMALLER = ["--set", "model_dim=32", "--set", "heads=2", "--set", "layers=1", "--set", "map_dim=16",
           "--set", "embed_dim=16", "--set", "audio_width=16"]


@pytest.mark.parametrize("model", ["fsan_speech", "fsan_text"])
def test_training_is_blind_to_timestamps(tiny_dataset_dir, tmp_path, model):
    """Same seed, train timestamps corrupted: identical training losses and weights."""
    bad = _corrupted_copy(tiny_dataset_dir, tmp_path / "bad")
    for name, data in (("real", tiny_dataset_dir), ("bad", bad)):
        assert train.main(["--data", str(data), "--model", model, "--out", str(tmp_path / f"run_{name}"),
                           "--log-every", "1", *FAST, *SMALLER]) == 0
    real_steps, bad_steps = _rows(tmp_path / "run_real" / "steps.csv"), _rows(tmp_path / "run_bad" / "steps.csv")
    assert len(real_steps) == 4 and [r["loss"] for r in real_steps] == [r["loss"] for r in bad_steps]
    real_w = load_state_dict_file(tmp_path / "run_real" / "last" / "model.safetensors")
    bad_w = load_state_dict_file(tmp_path / "run_bad" / "last" / "model.safetensors")
    assert real_w.keys() == bad_w.keys() and all(torch.equal(real_w[k], bad_w[k]) for k in real_w)
    summary = json.loads((tmp_path / "run_real" / "summary.json").read_text())
    assert "no timestamps" in summary["supervision"] and "val split's timestamps" in summary["model_selection"]


@pytest.mark.parametrize("model", ["fsan_text", "fsan_speech"])
def test_train_grounder_and_evaluator_round_trip(tiny_dataset_dir, tmp_path, capsys, model):
    run = tmp_path / model
    assert train.main(["--data", str(tiny_dataset_dir), "--model", model, "--out", str(run), *FAST, *SMALLER]) == 0
    _, cfg, _ = load_checkpoint(run / "best")
    assert isinstance(cfg, FSANConfig) and cfg.query == model.split("_")[1]

    from svg_core.audio.frontend import load_audio
    from svg_core.data.dataset import DatasetLayout
    from svg_core.data.video_features import VideoFeatureStore
    from svg_core.engine.predictor import Grounder

    grounder = Grounder.from_checkpoint(run / "best")
    assert grounder.supervision == "weakly supervised"
    layout = DatasetLayout.from_dir(tiny_dataset_dir)
    record = layout.records("test")[0][0]
    feats = VideoFeatureStore(layout.features).get(record.video_id)
    query = ({"text": record.sentence} if cfg.query == "text"
             else {"audio": load_audio(layout.audio_dir / record.wav_name)})
    result = grounder.localize(feats, record.duration_sec, **query)
    amap = grounder.alignment_map(feats, record.duration_sec, **query)
    n_v = cfg.n_video_frames
    assert amap["map"].shape[1] == n_v and len(amap["tokens"]) == amap["map"].shape[0]
    assert ((amap["map"] > 0) & (amap["map"] < 1)).all()
    assert (amap["start_sec"], amap["end_sec"]) == (result["start_sec"], result["end_sec"])
    s, e = amap["segment_clips"]
    assert 0 <= s <= e < n_v and result["proposal_map"].shape == (n_v, n_v)
    assert 0 <= result["start_sec"] < result["end_sec"] <= record.duration_sec + 1e-6 and len(result["top5_sec"]) == 5
    if cfg.query == "text":
        assert amap["tokens"] == result["words"] and amap["step_sec"] is None
    else:
        assert amap["step_sec"] > 0 and amap["tokens"][0] == "t=0.0s"

    from svg_core.engine import evaluation as evaluate

    capsys.readouterr()
    metrics_path = tmp_path / "metrics.json"
    assert evaluate.main(["--checkpoint", str(run / "best"), "--data", str(tiny_dataset_dir), "--noise", "clean",
                          "--listening", "--metrics-out", str(metrics_path), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "R1@0.1" in printed and "R5@0.7" in printed and "Does it listen?" in printed
    saved = json.loads(metrics_path.read_text())
    assert {"R1@0.1", "R1@0.3", "R1@0.5", "R1@0.7", "R5@0.1", "R5@0.3", "R5@0.5", "R5@0.7", "mIoU"} <= set(saved["metrics"])
    controls = set(saved["listening"]["controls"])
    assert ({"silent", "other_video", "shuffled_words"} if cfg.query == "text" else {"silent", "other_video"}) <= controls


def test_bad_fsan_flags_print_one_error_line(tiny_dataset_dir, tmp_path, capsys):
    for extra, needle in ((["--set", "query=speech"], "query"), (["--stage", "pretrain"], "pre-training"),
                          (["--set", "heads=3"], "heads")):
        capsys.readouterr()
        assert train.main(["--data", str(tiny_dataset_dir), "--model", "fsan_text", "--out", str(tmp_path / "x"),
                           *FAST, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]


def test_grounder_alignment_map_refuses_other_families():
    from svg_core.engine.predictor import Grounder
    from svg_core.errors import UserInputError
    from svg_core.models import build_model
    from tests.test_sil import tiny_sil

    cfg = tiny_sil()
    grounder = Grounder(build_model(cfg), cfg)
    with pytest.raises(UserInputError, match="alignment map"):
        grounder.alignment_map(np.zeros((20, 500), np.float32), 10.0, audio=np.zeros(16000, np.float32))


@pytest.mark.parametrize("query", ["speech", "text"])
def test_app_menu_labels_fsan_and_draws_its_alignment_map(tmp_path, query):
    from types import SimpleNamespace

    from app import plots
    from app.resources import discover_checkpoints
    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.engine.predictor import Grounder
    from svg_core.models import build_model
    from tests.test_fsan import tiny_fsan

    cfg = tiny_fsan(query)
    save_checkpoint(tmp_path / f"fsan_{query}", build_model(cfg), cfg)
    found = discover_checkpoints(tmp_path)
    assert [(c.name, c.query) for c in found] == [(f"fsan_{query} (weakly supervised)", "audio" if query == "speech" else "text")]
    grounder = Grounder.from_checkpoint(found[0].path)
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(32000)).astype(np.float32)
    q = {"audio": wave} if query == "speech" else {"text": "a man throws a ball"}
    e2e = grounder.localize(rng.standard_normal((40, 500)).astype(np.float32), 20.0, **q)
    result = SimpleNamespace(e2e=e2e, duration_sec=20.0, query=SimpleNamespace(gt_sec=(2.0, 9.0)), fake={},
                             noisy_wave=wave, noise_span_sec=(0.0, 0.0))
    fig = plots.alignment_map_figure(result)
    ax = fig.axes[0]
    assert ax.get_title().startswith("Alignment map (weakly supervised)")
    dashed = [line.get_ydata()[0] for line in ax.get_lines()]
    assert dashed == pytest.approx([e2e["start_sec"], e2e["end_sec"]])  # the chosen segment is marked
    if query == "text":
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "man", "throws", "a", "ball"]
    else:  # next to the context-query attention view
        heat = plots.heatmap_figure(result, np.zeros((201, 128), np.float32))
        titles = [a.get_title() for a in heat.axes]
        assert any(t.startswith("Alignment map") for t in titles) and any(t.startswith("Context-query") for t in titles)
        assert plots.save_png(heat, tmp_path / "figs", "heatmap").stat().st_size > 0
    assert plots.save_png(fig, tmp_path / "figs", "alignment").stat().st_size > 0


def test_app_cascade_keeps_the_supervised_text_model_beside_a_text_fsan(tmp_path):
    """A shipped text FSAN sorts before ``text`` alphabetically; the cascade still grounds the
    transcript with the supervised text model, and the FSAN stays in the text models."""
    from app.resources import AppConfig, Backend
    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.models import TextConfig, build_model, build_vocab
    from tests.model_batches import SENTENCES
    from tests.test_fsan import tiny_fsan

    text_cfg = TextConfig.small(vocab=build_vocab(SENTENCES))
    save_checkpoint(tmp_path / "text", build_model(text_cfg), text_cfg)
    fsan_cfg = tiny_fsan("text")
    save_checkpoint(tmp_path / "fsan_text", build_model(fsan_cfg), fsan_cfg)
    backend = Backend(AppConfig(checkpoints_dir=tmp_path))
    assert list(backend.text_models) == ["text", "fsan_text (weakly supervised)"]
    assert type(backend.text_grounder().cfg).__name__ == "TextConfig"


def test_sibling_captions_come_from_the_same_video_and_rotate(tiny_dataset_dir, tmp_path):
    from svg_core.data.annotations import QueryRecord
    from svg_core.engine.sil_training import sibling_captions

    rec = lambda vid, s: QueryRecord(video_id=vid, duration_sec=10.0, start_sec=0.0, end_sec=1.0, sentence=s,  # noqa: E731
                                     wav_name=None, index=0)
    siblings = {"v0": ["a", "b", "c"], "v1": ["d"]}
    first, ok = sibling_captions([rec("v0", "a"), rec("v1", "d")], siblings, 0)
    second, _ = sibling_captions([rec("v0", "a"), rec("v1", "d")], siblings, 1)
    assert ok == [True, False] and first[0] in ("b", "c") and first[1] == "d"
    assert {first[0], second[0]} == {"b", "c"}  # the next batch offers the other sibling
    run = tmp_path / "sib"
    assert train.main(["--data", str(tiny_dataset_dir), "--model", "fsan_text", "--out", str(run), *FAST, *SMALLER,
                       "--set", "sibling_negative=true", "--set", "video_positions=false"]) == 0
    _, cfg, _ = load_checkpoint(run / "best")
    assert cfg.sibling_negative and not cfg.video_positions


def test_spoken_fsan_with_word_reconstruction_trains_and_stays_blind(tiny_dataset_dir, tmp_path):
    """fsan_speech + recon_weight: the vocabulary comes from the train captions, the batches keep the
    caption (read by the reconstruction only) and still carry no timestamps."""
    bad = _corrupted_copy(tiny_dataset_dir, tmp_path / "bad")
    for name, data in (("real", tiny_dataset_dir), ("bad", bad)):
        assert train.main(["--data", str(data), "--model", "fsan_speech", "--out", str(tmp_path / f"run_{name}"),
                           "--log-every", "1", *FAST, *SMALLER, "--set", "recon_weight=1.0"]) == 0
    real_steps, bad_steps = _rows(tmp_path / "run_real" / "steps.csv"), _rows(tmp_path / "run_bad" / "steps.csv")
    assert [r["loss"] for r in real_steps] == [r["loss"] for r in bad_steps]
    _, cfg, _ = load_checkpoint(tmp_path / "run_real" / "best")
    assert cfg.query == "speech" and cfg.recon_weight == 1.0 and len(cfg.vocab) > 2
