"""App handlers, resources, plots and CLI on the fake predictor and a tiny generated demo set."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from app import cli
from app import handlers as H
from app import plots
from app.fake import FakeASR, FakeGrounder, write_tiny_demo_set
from app.resources import FAKE_MODEL, AppConfig, Backend, DemoSet, discover_checkpoints
from svg_core.asr.cascade import word_error_rate

SR = 16_000


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return write_tiny_demo_set(tmp_path_factory.mktemp("demo"), n_videos=2, queries_per_video=2)


@pytest.fixture(scope="module")
def demo(demo_dir):
    return DemoSet(demo_dir)


@pytest.fixture(scope="module")
def backend(demo_dir):
    return Backend(AppConfig(data_dir=demo_dir, fake=True))


def speech(seconds=1.5, rate=SR, channels=1, seed=0):
    """Voiced-like test signal: a 200 Hz tone with a syllable envelope."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.4 * np.sin(2 * np.pi * 200 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    wave = wave.astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def test_own_query_knows_ground_truth_iou_and_wer(backend, demo):
    record = demo.queries("v_fake0")[0]
    query = H.load_query(backend, demo, H.SOURCE_OWN, "v_fake0", query_id=record.query_id)
    assert query.gt_sec == (record.start_sec, record.end_sec) and query.reference == record.sentence
    result = H.ground(backend, demo, query, "v_fake0", H.NoiseSettings("white", 5.0, 0.6, 3), FAKE_MODEL, "whisper")
    assert 0.0 <= result.e2e_iou <= 1.0 and 0.0 <= result.cascade_iou <= 1.0
    assert result.transcript == FakeASR.TEXT
    assert result.wer == pytest.approx(word_error_rate([record.sentence], [FakeASR.TEXT])) and result.wer > 0
    assert 0 < result.noise_span_sec[1] - result.noise_span_sec[0] <= len(query.wave) / SR
    assert result.video_path is not None and result.video_path.suffix == ".mp4"
    summary = result.summary()
    json.dumps(summary)  # JSON-able
    assert summary["fake"] == {"model": True, "asr": True, "text_grounder": True}
    assert set(summary["latency_sec"]) == {"end_to_end", "asr", "text_grounding", "cascade"}


@pytest.mark.parametrize("fmt,rate,channels", [("wav", 44_100, 2), ("flac", 22_050, 1), ("ogg", 48_000, 2),
                                               ("mp3", 44_100, 1)])
def test_upload_any_rate_channels_and_format(backend, demo, tmp_path, fmt, rate, channels):
    path = tmp_path / f"q.{fmt}"
    sf.write(path, speech(1.5, rate, channels), rate)
    query = H.load_query(backend, demo, H.SOURCE_AUDIO, "v_fake1", audio_path=path)
    assert query.wave.ndim == 1 and abs(len(query.wave) / SR - 1.5) < 0.1
    assert query.gt_sec is None and query.reference is None
    result = H.ground(backend, demo, query, "v_fake1", H.NoiseSettings(), FAKE_MODEL, "sphinx")
    assert result.e2e_iou is None and result.wer is None
    assert result.e2e["attention"].shape == (64, len(query.wave) // 160 + 1)


def test_typed_sentence_is_spoken_and_scored(backend, demo):
    query = H.load_query(backend, demo, H.SOURCE_TTS, "v_fake0", typed_text="  the red ball bounces ")
    assert query.reference == "the red ball bounces" and query.wave.size > SR // 2
    result = H.ground(backend, demo, query, "v_fake0", H.NoiseSettings(), FAKE_MODEL, "whisper")
    assert result.wer is not None


def _write(path, wave, rate=SR):
    sf.write(path, wave, rate)
    return path


@pytest.mark.parametrize("case,match", [
    ("no_audio", "No audio"),
    ("silence", "silent"),
    ("too_long", "limit is 30"),
    ("corrupt", "could not decode"),
    ("empty_file", "empty"),
    ("unknown_video", "unknown video"),
    ("no_video", "No video"),
    ("no_text", "No sentence"),
    ("long_text", "characters long"),
    ("no_query", "No query chosen"),
    ("unknown_query", "unknown query"),
    ("other_video_query", "belongs to video"),
    ("bad_source", "Unknown speech source"),
])
def test_load_query_user_errors(backend, demo, tmp_path, case, match):
    kwargs = {"source": H.SOURCE_AUDIO, "video_id": "v_fake0"}
    if case == "silence":
        kwargs["audio_path"] = _write(tmp_path / "s.wav", np.zeros(SR, np.float32))
    elif case == "too_long":
        kwargs["audio_path"] = _write(tmp_path / "l.wav", speech(31.0, 8000), 8000)
    elif case == "corrupt":
        (tmp_path / "c.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
        kwargs["audio_path"] = tmp_path / "c.wav"
    elif case == "empty_file":
        (tmp_path / "e.wav").write_bytes(b"")
        kwargs["audio_path"] = tmp_path / "e.wav"
    elif case == "unknown_video":
        kwargs.update(video_id="v_nope", audio_path=_write(tmp_path / "a.wav", speech()))
    elif case == "no_video":
        kwargs.update(video_id="")
    elif case in ("no_text", "long_text"):
        kwargs.update(source=H.SOURCE_TTS, typed_text="   " if case == "no_text" else "word " * 100)
    elif case in ("no_query", "unknown_query", "other_video_query"):
        qid = {"no_query": None, "unknown_query": "nope.wav",
               "other_video_query": demo.queries("v_fake1")[0].query_id}[case]
        kwargs.update(source=H.SOURCE_OWN, query_id=qid)
    elif case == "bad_source":
        kwargs.update(source="telepathy")
    with pytest.raises(H.UserError, match=match):
        H.load_query(backend, demo, **kwargs)


def test_ground_rejects_unknown_model_engine_and_noise(backend, demo):
    query = H.SpokenQuery(speech(), H.SOURCE_AUDIO)
    with pytest.raises(H.UserError, match="Unknown model"):
        H.ground(backend, demo, query, "v_fake0", H.NoiseSettings(), "gpt", "whisper")
    with pytest.raises(H.UserError, match="Unknown ASR engine"):
        H.ground(backend, demo, query, "v_fake0", H.NoiseSettings(), FAKE_MODEL, "siri")
    with pytest.raises(H.UserError, match="unknown noise kind"):
        H.ground(backend, demo, query, "v_fake0", H.NoiseSettings("jackhammer", 0, 0.5), FAKE_MODEL, "whisper")
    with pytest.raises(H.UserError, match="needs an ESC-50 folder"):
        H.ground(backend, demo, query, "v_fake0", H.NoiseSettings("esc50:dog", 0, 0.5), FAKE_MODEL, "whisper")
    with pytest.raises(H.UserError, match="proportion"):
        H.add_noise(speech(), H.NoiseSettings("white", 0, 1.5))


def test_add_noise_is_seeded_and_covers_the_asked_share():
    wave = speech(2.0)
    a, span_a = H.add_noise(wave, H.NoiseSettings("pink", 0.0, 0.5, seed=7))
    b, span_b = H.add_noise(wave, H.NoiseSettings("pink", 0.0, 0.5, seed=7))
    c, _ = H.add_noise(wave, H.NoiseSettings("pink", 0.0, 0.5, seed=8))
    assert np.array_equal(a, b) and span_a == span_b and not np.array_equal(a, c)
    assert span_a[1] - span_a[0] == pytest.approx(1.0, abs=0.01)
    assert np.max(np.abs(a)) <= 0.99 + 1e-6
    clean, span = H.add_noise(wave, H.NoiseSettings("white", 0.0, 0.0))
    assert np.array_equal(clean, wave) and span == (0.0, 0.0)


def test_empty_transcript_means_no_cascade_answer(backend, demo, monkeypatch):
    monkeypatch.setattr(FakeASR, "TEXT", "")
    result = H.ground(backend, demo, H.SpokenQuery(speech(), H.SOURCE_AUDIO), "v_fake0", H.NoiseSettings(),
                      FAKE_MODEL, "whisper")
    assert result.cascade is None and result.cascade_iou is None and result.transcript == ""
    assert result.cascade_message.startswith("no query understood")
    fig = plots.timeline_figure(result)
    labels = " ".join(t.get_text() for t in fig.axes[0].get_yticklabels())
    assert "no query understood" in labels


def test_plots_show_every_path(backend, demo):
    record = demo.queries("v_fake0")[0]
    query = H.load_query(backend, demo, H.SOURCE_OWN, "v_fake0", query_id=record.query_id)
    result = H.ground(backend, demo, query, "v_fake0", H.NoiseSettings("brown", 0.0, 0.5, 1), FAKE_MODEL, "whisper")
    timeline = plots.timeline_figure(result)
    labels = [t.get_text() for t in timeline.axes[0].get_yticklabels()]
    assert labels[-1].startswith("ground truth") and any("IoU" in x for x in labels)
    assert [line.get_label() for line in timeline.axes[1].get_lines()] == [
        "start (end-to-end)", "end (end-to-end)", "inside (end-to-end)"]
    spec = H.spectrogram(result.noisy_wave)
    heat = plots.heatmap_figure(result, spec)
    ax_spec, ax_att = heat.axes[:2]
    audio_sec = len(result.noisy_wave) / SR
    assert ax_spec.get_xlim() == pytest.approx((0, audio_sec)) and ax_att.get_xlim() == pytest.approx((0, audio_sec))
    assert ax_att.images[0].get_array().shape == result.e2e["attention"].shape
    assert len(ax_att.patches) == 1  # the noise-covered span is shaded


def test_robustness_sweep_with_and_without_ground_truth(backend, demo):
    record = demo.queries("v_fake1")[0]
    own = H.load_query(backend, demo, H.SOURCE_OWN, "v_fake1", query_id=record.query_id)
    sweep = H.robustness_sweep(backend, demo, own, "v_fake1", H.NoiseSettings(), FAKE_MODEL, "whisper",
                               snrs_db=(20, 0, -5))
    assert sweep.reference == "ground truth" and sweep.kind == H.SWEEP_FALLBACK_KIND
    assert sweep.snr_db == [20, 0, -5] and len(sweep.e2e_iou) == len(sweep.cascade_iou) == 3
    assert all(0 <= x <= 1 for x in sweep.e2e_iou + sweep.cascade_iou)
    upload = H.SpokenQuery(speech(), H.SOURCE_AUDIO)
    sweep = H.robustness_sweep(backend, demo, upload, "v_fake1", H.NoiseSettings("white", 5, 0.3), FAKE_MODEL,
                               "whisper", snrs_db=(10, 0))
    assert sweep.reference == "clean prediction" and sweep.kind == "white" and sweep.proportion == 0.3
    assert len(plots.robustness_figure(sweep).axes[0].get_lines()) == 2


def test_failure_cases_evaluate_sort_and_table(backend, demo):
    rows = H.evaluate_demo_set(backend, demo, H.NoiseSettings("white", 0, 0.6), FAKE_MODEL, "whisper")
    assert len(rows) == len(demo.records) == 4
    for row in rows:
        assert row["e2e_minus_cascade"] == pytest.approx(row["e2e_iou"] - row["cascade_iou"], abs=2e-3)
    worst = H.sort_cases(rows, "end-to-end IoU (worst first)")
    assert [r["e2e_iou"] for r in worst] == sorted(r["e2e_iou"] for r in rows)
    e2e_better = H.sort_cases(rows, "end-to-end minus cascade (end-to-end better first)")
    assert [r["e2e_minus_cascade"] for r in e2e_better] == sorted((r["e2e_minus_cascade"] for r in rows), reverse=True)
    table = H.cases_table(worst)
    assert len(table[0]) == len(H.CASE_COLUMNS) and table[0][0] == worst[0]["query_id"]
    with pytest.raises(H.UserError, match="Unknown sort order"):
        H.sort_cases(rows, "random")


def test_fake_grounder_contract():
    grounder = FakeGrounder()
    feats = np.zeros((30, 500), np.float32)
    out = grounder.localize(feats, 20.0, audio=speech(1.0))
    assert 0 <= out["start_sec"] < out["end_sec"] <= 20.0
    for key in ("start_prob", "end_prob", "inside_prob"):
        assert out[key].shape == (64,)
    assert out["attention"].shape == (64, 101) and len(out["top5_sec"]) == 5
    again = grounder.localize(feats, 20.0, audio=speech(1.0))
    assert again["start_sec"] == out["start_sec"] and np.array_equal(again["attention"], out["attention"])
    with pytest.raises(ValueError, match="exactly one"):
        grounder.localize(feats, 20.0)


def test_resources_config_checkpoints_and_thumbnails(demo, demo_dir, tmp_path, monkeypatch):
    for name, config in (("vgcl", {"family": "base"}), ("text", {"family": "text"}), ("broken", None),
                         ("no_weights", {"family": "base"}), ("cpc_encoder", {"family": "cpc"})):
        folder = tmp_path / "ckpts" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{oops" if config is None else json.dumps(config))
        if name != "no_weights":
            (folder / "model.safetensors").write_bytes(b"")
    found = {c.name: c.query for c in discover_checkpoints(tmp_path / "ckpts")}
    assert found == {"vgcl": "audio", "text": "text"}

    monkeypatch.setenv("SVG_DATA_DIR", str(demo_dir))
    monkeypatch.setenv("SVG_ESC50_DIR", str(tmp_path / "esc"))
    monkeypatch.setenv("SVG_APP_FAKE", "1")
    config = AppConfig.from_env()
    assert config.data_dir == demo_dir and config.esc50_dir == tmp_path / "esc" and config.fake
    parser = __import__("argparse").ArgumentParser()
    AppConfig.add_arguments(parser)
    config = AppConfig.from_args(parser.parse_args(["--data", str(tmp_path), "--esc50", str(demo_dir)]))
    assert config.data_dir == tmp_path and config.esc50_dir == demo_dir  # flags beat env vars

    thumb = demo.thumbnail("v_fake0", tmp_path / "thumbs")
    assert thumb.read_bytes()[:4] == b"\x89PNG"
    no_mp4 = DemoSet(write_tiny_demo_set(tmp_path / "nomp4", n_videos=1, queries_per_video=1, with_mp4=False))
    assert no_mp4.video_path("v_fake0") is None
    assert no_mp4.thumbnail("v_fake0", tmp_path / "thumbs2").read_bytes()[:4] == b"\x89PNG"


def test_cli_grounds_a_file_and_reports_errors(demo_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SVG_APP_FAKE", "1")
    wav = _write(tmp_path / "q.wav", speech(1.2, 22_050, 2), 22_050)
    assert cli.main(["--video", "v_fake0", "--wav", str(wav), "--data", str(demo_dir), "--noise", "white",
                     "--snr-db", "5"]) == 0
    out = capsys.readouterr().out
    assert "end-to-end:" in out and "cascade (whisper)" in out and "FAKE" in out
    assert cli.main(["--video", "v_nope", "--wav", str(wav), "--data", str(demo_dir)]) == 2
    assert "unknown video" in capsys.readouterr().err

    class NoDevice(types.ModuleType):
        def query_devices(self, kind=None):
            raise ValueError("No input device matching")
    monkeypatch.setitem(sys.modules, "sounddevice", NoDevice("sounddevice"))
    assert cli.main(["--video", "v_fake0", "--record", "2", "--data", str(demo_dir)]) == 2
    assert "no microphone found" in capsys.readouterr().err


def test_real_grounders_and_cascade_on_untrained_checkpoints(demo_dir, demo, tmp_path):
    """The non-fake path end to end: svg_core Grounder checkpoints (small, untrained, written
    here) for both the end-to-end model and the cascade's text model, PocketSphinx for the ASR."""
    import torch

    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.models import BaseConfig, TextConfig, build_model, build_vocab

    torch.manual_seed(0)
    cfg = BaseConfig.small()
    save_checkpoint(tmp_path / "ckpts" / "base_small", build_model(cfg), cfg)
    cfg = TextConfig.small(vocab=build_vocab([r.sentence for r in demo.records]))
    save_checkpoint(tmp_path / "ckpts" / "text_small", build_model(cfg), cfg)
    backend = Backend(AppConfig(data_dir=demo_dir, checkpoints_dir=tmp_path / "ckpts"))
    assert backend.model_names() == ["base_small"] and not backend.text_is_fake()
    record = demo.queries("v_fake1")[0]
    query = H.load_query(backend, demo, H.SOURCE_OWN, "v_fake1", query_id=record.query_id)
    result = H.ground(backend, demo, query, "v_fake1", H.NoiseSettings("white", 10.0, 0.5), "base_small", "sphinx")
    assert result.fake == {"model": False, "asr": False, "text_grounder": False}
    assert 0 <= result.e2e["start_sec"] <= result.e2e["end_sec"] <= result.duration_sec
    assert result.e2e["attention"].shape == (64, len(query.wave) // 160 + 1)
    assert result.wer is not None and result.latency_sec["asr"] > 0
    # Tone bursts are no English: either nothing the text model knows, or a grounded transcript.
    assert (result.cascade is None) == result.cascade_message.startswith("no query understood")
    assert plots.timeline_figure(result) is not None
