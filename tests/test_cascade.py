"""ASR -> text grounding cascade: one demo-bundle query end to end, the no-query path, the CLI.

The text grounder is a tiny untrained ``TextConfig.small`` model (the contract, not accuracy,
is under test); the engines are the real ones, cached per process by ``get_engine``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from svg_core.asr import engines as asr
from svg_core.audio.frontend import load_audio, log_mel
from svg_core.asr.cascade import NO_QUERY, Cascade, main, normalize_text, word_error_rate
from svg_core.engine.checkpoint import save_checkpoint
from svg_core.data.annotations import load_annotations
from svg_core.data.dataset import DatasetLayout, GroundingDataset
from svg_core.data.video_features import VideoFeatureStore
from svg_core.models import BaseConfig, TextConfig, build_model, build_vocab
from svg_core.audio.noise import NoiseConfig
from svg_core.engine.predictor import Grounder
from tests.fixtures_build import make_tiny_dataset

BUNDLE = Path(__file__).resolve().parents[1] / "assets" / "demo_bundle"


def tiny_text_grounder(sentences: list[str]) -> Grounder:
    torch.manual_seed(0)
    cfg = TextConfig.small(vocab=build_vocab(sentences))
    return Grounder(build_model(cfg), cfg, device="cpu")


class FixedEngine:
    """An ASR stand-in that always "hears" the same text."""

    name = "fixed"
    device = "cpu"

    def __init__(self, text: str):
        self.text = text

    def transcribe(self, waveform: np.ndarray, sample_rate: int) -> asr.Transcript:
        return asr.Transcript(self.text, 0.0, self.name)


@pytest.fixture(scope="module")
def bundle_query():
    """The bundle's first query in the flite "slt" voice (the espeak voices of the bundle are
    harder: Whisper WER 5 % on slt vs 13-46 % on the espeak variants, measured by hand)."""
    records, _ = load_annotations(BUNDLE / "new_test_data.json")
    store = VideoFeatureStore(BUNDLE / "sub_activitynet_v1-3.c3d.hdf5")
    voices = {q["wav_name"]: q["voice"] for scene in json.loads((BUNDLE / "scenes.json").read_text())
              for q in scene["queries"]}
    rec = next(r for r in records if voices[r.wav_name] == "flite:slt")
    return rec, store.get(rec.video_id), load_audio(BUNDLE / "audio" / rec.wav_name), [r.sentence for r in records]


def test_cascade_end_to_end_on_demo_bundle_query(bundle_query):
    rec, video, wave, sentences = bundle_query
    cascade = Cascade("whisper", tiny_text_grounder(sentences))
    out = cascade.run(video, rec.duration_sec, wave, 16_000, reference=rec.sentence)
    assert out["engine"] == "whisper" and out["understood"] and out["message"] == ""
    assert out["wer"] <= 0.3, (out["transcript"], rec.sentence)  # clean speech, a clear voice
    assert out["known_words"]
    g = out["grounding"]
    assert 0.0 <= g["start_sec"] <= g["end_sec"] <= rec.duration_sec + 1e-6
    assert g["top5_sec"][0][:2] == [g["start_sec"], g["end_sec"]]
    lat = out["latency_sec"]
    assert lat["asr"] > 0 and lat["grounding"] > 0
    assert lat["total"] >= lat["asr"] + lat["grounding"] - 1e-3


@pytest.mark.parametrize("heard", ["", "   ", "zyzzyva qwerty"])
def test_no_known_word_reports_no_query(bundle_query, heard):
    rec, video, wave, sentences = bundle_query
    out = Cascade(FixedEngine(heard), tiny_text_grounder(sentences)).run(video, rec.duration_sec, wave, 16_000,
                                                                       reference=rec.sentence)
    assert out["understood"] is False and out["grounding"] is None
    assert out["message"].startswith(NO_QUERY)
    assert out["wer"] == 1.0  # every reference word deleted or substituted


def test_silence_through_real_engine_reports_no_query(bundle_query):
    rec, video, _, sentences = bundle_query
    cascade = Cascade("sphinx", tiny_text_grounder(sentences))
    out = cascade.run(video, rec.duration_sec, np.zeros(2 * 16_000, np.float32), 16_000)
    assert out["transcript"] == "" and not out["understood"] and out["wer"] is None


def test_original_caption_path(bundle_query):
    rec, video, _, sentences = bundle_query
    out = Cascade(FixedEngine(""), tiny_text_grounder(sentences)).ground_text(video, rec.duration_sec, rec.sentence)
    assert out["understood"] and out["grounding"]["end_sec"] >= out["grounding"]["start_sec"]


def test_cascade_needs_a_text_grounder():
    cfg = BaseConfig.small()
    with pytest.raises(ValueError, match="text grounder"):
        Cascade(FixedEngine("x"), Grounder(build_model(cfg), cfg))


def test_wer_normalisation():
    assert normalize_text("A man's T-shirt, RED.") == "a mans tshirt red"
    assert word_error_rate(["A man runs.", "the dog"], ["a man runs", ""]) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="as many"):
        word_error_rate(["a"], [])
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["?!"], ["a"])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = make_tiny_dataset(tmp_path_factory.mktemp("tiny"), n_videos=2, queries_per_video=2)
    records, _ = load_annotations(root / "new_train_data.json")
    ckpt = tmp_path_factory.mktemp("ckpt")
    grounder = tiny_text_grounder([r.sentence for r in records])
    save_checkpoint(ckpt, grounder.model, grounder.cfg)
    return root, ckpt


def test_noisy_query_matches_dataset_noise(tiny_data):
    root, _ = tiny_data
    noise = NoiseConfig(preset="large", kinds=("white", "pink"))
    ds = GroundingDataset(DatasetLayout.from_dir(root), "test", noise=noise, seed=3)
    for index in range(2):
        wave, span, snr_db = ds.noisy_wave(index)
        assert span[1] > span[0] and np.isfinite(snr_db)
        torch.testing.assert_close(log_mel(wave), ds[index]["audio"])  # what the audio model hears


def test_evaluate_cli(tiny_data, capsys):
    root, ckpt = tiny_data
    args = ["evaluate", "--data", str(root), "--checkpoint", str(ckpt), "--limit", "2"]
    assert main(args + ["--engine", "sphinx", "--noise", "normal"]) == 0
    printed = capsys.readouterr().out
    assert "WER" in printed and "mIoU" in printed and "noise=normal" in printed and "(n = 2 queries)" in printed
    assert main(args + ["--oracle"]) == 0  # original captions: WER 0 by construction
    printed = capsys.readouterr().out
    assert "WER 0.0%" in printed and "no query understood: 0/2" in printed


def _report(printed: str) -> list[str]:
    """The report's lines after the header, the measured ASR time left out (it varies run to run)."""
    return [re.sub(r"median ASR time [\d.]+ s", "median ASR time", line) for line in printed.splitlines()[1:]]


def test_transcript_cache_reuses_asr(tiny_data, tmp_path, capsys, monkeypatch):
    root, ckpt = tiny_data
    cache, pred = tmp_path / "transcripts.jsonl", tmp_path / "pred.jsonl"
    args = ["evaluate", "--data", str(root), "--checkpoint", str(ckpt), "--limit", "2", "--engine", "sphinx",
            "--noise", "normal", "--transcripts", str(cache), "--out", str(pred)]
    assert main(args) == 0
    first = capsys.readouterr().out
    lines = [json.loads(x) for x in cache.read_text().splitlines()]
    assert len(lines) == 2 and {x["engine"] for x in lines} == {"sphinx"} and {x["noise"] for x in lines} == {"normal"}
    assert len(pred.read_text().splitlines()) == 2

    def no_asr(*_args, **_kwargs):
        raise AssertionError("ASR ran although every transcript was cached")

    monkeypatch.setattr("svg_core.asr.cascade.get_engine", no_asr)
    assert main(args) == 0
    second = capsys.readouterr().out
    assert _report(second) == _report(first)  # same WER and metrics from the cache
    assert len(cache.read_text().splitlines()) == 2  # nothing appended
    # the same wav names with other audio (a re-voiced build) never take these transcripts
    stale = [{**x, "audio": "0" * 32, "transcript": "a stale transcript"} for x in lines]
    cache.write_text("".join(json.dumps(x) + "\n" for x in stale))
    monkeypatch.undo()
    assert main(args) == 0
    assert _report(capsys.readouterr().out) == _report(first)  # heard anew, not the stale text
    assert len(cache.read_text().splitlines()) == 4  # the two fresh transcripts appended
    legacy = [{k: v for k, v in x.items() if k != "audio"} for x in lines]  # a file from before the digest
    cache.write_text("".join(json.dumps(x) + "\n" for x in legacy))
    monkeypatch.setattr("svg_core.asr.cascade.get_engine", no_asr)
    assert main(args) == 0 and _report(capsys.readouterr().out) == _report(first)
    cache.write_text("not json\n")
    assert main(args) == 2  # a bad cache is a user error: one error line naming the line
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "line 1 is not a transcript record" in err[-1]


def test_bench_latency_table(tiny_data, capsys):
    from svg_core.reporting.bench import main as bench_main

    root, ckpt = tiny_data
    assert bench_main(["latency", "--data", str(root), "--text-checkpoint", str(ckpt), "--queries", "2",
                       "--warmup", "0", "--engines", "sphinx", "--cpu-only"]) == 0
    printed = capsys.readouterr().out
    assert "end-to-end audio (BaseGrounder)" in printed and "sphinx (cpu) + text grounding" in printed
    assert "1.0x" in printed and "0.044 s" in printed  # E2E ratio row and the SIL Table 2 anchor
    assert "text grounding alone (caption, no ASR)" in printed


def test_bench_latency_without_engines(tiny_data, capsys):
    """No ASR engine: the grounder rows only (the Whisper front-end row where its encoder files exist)."""
    from svg_core.reporting.bench import main as bench_main

    root, ckpt = tiny_data
    assert bench_main(["latency", "--data", str(root), "--text-checkpoint", str(ckpt), "--queries", "2",
                       "--warmup", "0", "--engines", "--cpu-only"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cpu ")]
    names = [" ".join(r.split()[1:6]) for r in rows]
    assert names[0].startswith("end-to-end audio") and names[-1].startswith("text grounding")
    assert all("Whisper base encoder" in n for n in names[1:-1]) and len(names) <= 3, names
