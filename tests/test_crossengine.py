"""``python -m svg_core.synth crossengine``: train/val without the held-out TTS engine, test with it only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from svg_core.data.dataset import DatasetLayout
from svg_core.synth.__main__ import main as synth_main
from svg_core.synth.crossengine import build_crossengine, heldout_voices

VOICES = {"train": ("piper:joe", "espeak:en-us+m1", "flite:kal"), "val": ("flite:rms", "espeak:en-us+m5"),
          "test": ("flite:slt", "espeak:en-us+m6")}


@pytest.fixture
def voiced(tmp_path) -> Path:
    """The tiny dataset with a scenes.json naming a voice (cycling through each split's pool) per wav."""
    from tests.fixtures_build import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "src", n_videos=3, queries_per_video=2, seed=1)
    queries = []
    for split, pool in VOICES.items():
        for i, item in enumerate(json.loads((root / f"new_{split}_data.json").read_text())):
            queries.append({"text": item[3], "wav_name": item[4], "voice": pool[i % len(pool)], "speed": 1.0,
                            "pitch_semitones": 0.0, "gain_db": -1.0, "lead_sec": 0.1, "trail_sec": 0.1})
    (root / "scenes.json").write_text(json.dumps([{"video_id": "all", "queries": queries}]))
    return root


def test_heldout_voices():
    assert heldout_voices("flite") == ["flite:slt"] and heldout_voices("piper") == ["piper:joe"]
    assert all(v.startswith("espeak:") for v in heldout_voices("espeak"))


@pytest.mark.needs_binary("flite")
def test_heldout_flite_folder(voiced, tmp_path):
    out = tmp_path / "xe"
    block = build_crossengine(voiced, out, "flite", progress=False)
    table = json.loads((out / "crossengine.json").read_text())
    layout = DatasetLayout.from_dir(out)
    for split in ("train", "val"):
        records = layout.records(split)[0]
        assert records and all(table[r.wav_name]["engine"] != "flite" for r in records)
    test = layout.records("test")[0]
    assert len(test) == 6 and {table[r.wav_name]["voice"] for r in test} == {"flite:slt"}
    respoken = [r.wav_name for r in test if table[r.wav_name]["resynthesised"]]
    assert len(respoken) == 3 and block["counts"]["test"]["resynthesised"] == 3
    for r in test:
        path = out / "audio" / r.wav_name
        assert path.is_symlink() != (r.wav_name in respoken)  # kept wavs link to the source, re-voiced are new
        assert sf.info(str(path)).samplerate == 16000
    assert block["counts"]["train"]["dropped"] == 2 and block["train_engines"] == ["espeak", "piper"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["train"]["queries"] == 4 and manifest["crossengine"]["heldout_engine"] == "flite"
    assert (out / "sub_activitynet_v1-3.c3d.hdf5").is_symlink()


def test_cli_no_resynth_and_bad_input(voiced, tmp_path, capsys):
    out = tmp_path / "xe_piper"
    assert synth_main(["crossengine", str(voiced), "--heldout", "piper", "--out", str(out), "--no-resynth"]) == 2
    assert capsys.readouterr().err.strip() == (f"error: no test query of {voiced} is spoken by piper: drop "
                                               "--no-resynth to re-voice them")
    assert not out.exists()
    assert synth_main(["crossengine", str(voiced), "--heldout", "espeak", "--out", str(out), "--no-resynth"]) == 0
    printed = capsys.readouterr().out
    assert "test 3 queries (3 dropped, 0 re-voiced)" in printed and "test engine espeak only" in printed
    assert synth_main(["crossengine", str(voiced), "--heldout", "espeak", "--out", str(out)]) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    (voiced / "scenes.json").unlink()
    assert synth_main(["crossengine", str(voiced), "--heldout", "flite", "--out", str(tmp_path / "z")]) == 2
    assert "crossengine needs the voice of every wav" in capsys.readouterr().err
