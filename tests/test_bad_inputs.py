"""Every bad input gets one clear answer (issue 18)."""

import json

import numpy as np
import pytest
import soundfile as sf

from svg_core.audio.frontend import AudioError, load_audio
from svg_core.data.annotations import load_annotations
from svg_core.engine.evaluation import main as evaluate_main

GOOD = {"duration_sec": 10.0, "gt_window_sec": [1.0, 4.0], "pred_windows_sec": [[1.0, 3.0, 0.5]]}


@pytest.mark.parametrize("patch, message", [
    ({"gt_window_sec": [1.0]}, "2 numbers"),
    ({"gt_window_sec": [4.0, 1.0]}, "start < end"),
    ({"gt_window_sec": [-1.0, 1.0]}, "start < end"),
    ({"pred_windows_sec": [[1.0, float("nan"), 0.1]]}, "finite"),
    ({"pred_windows_sec": [[1.0, 30.0, 0.1]]}, "past duration_sec"),
    ({"pred_windows_sec": None}, "pred_windows_sec must be a list"),
])
def test_evaluate_pred_refuses_bad_record(tmp_path, capsys, patch, message):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, **patch}) + "\n")
    assert evaluate_main(["--pred", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 2" in err and message in err


def test_evaluate_pred_bad_json_line(tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    path.write_text("{not json\n")
    assert evaluate_main(["--pred", str(path)]) == 2
    assert "line 1: not valid JSON" in capsys.readouterr().err


def test_annotations_folder_and_utf8_and_traversal(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        load_annotations(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[["v", 1.0, [0, 1], "\xff"]]')
    with pytest.raises(ValueError, match="UTF-8"):
        load_annotations(bad)
    trav = tmp_path / "t.json"
    trav.write_text(json.dumps([["v", 10.0, [0, 1], "a man", "../../etc/x.wav"]]))
    with pytest.raises(ValueError, match="no '..'"):
        load_annotations(trav)


def test_huge_flac_refused_from_header(tmp_path):
    import tracemalloc
    path = tmp_path / "big.flac"
    with sf.SoundFile(path, "w", samplerate=96_000, channels=8, format="FLAC") as f:
        block = np.zeros((96_000, 8), np.float32)
        for _ in range(400):
            f.write(block)
    tracemalloc.start()
    with pytest.raises(AudioError, match="would decode to"):
        load_audio(path, max_sec=None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100 * 2**20


def test_float_wav_far_beyond_unit_range(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.full(16_000, 50.0, np.float32), 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="far beyond"):
        load_audio(path)


@pytest.mark.parametrize("argv, message", [
    (["-m", "app.cli", "--video", "v_x", "--wav", "q.wav", "--snr-db", "nan"], "--snr-db must be a finite number"),
    (["-m", "app.cli", "--video", "v_x", "--wav", "q.wav", "--seed", "-1"], "--seed must be an integer"),
    (["-m", "app.cli", "--video", "v_x", "--wav", "q.wav", "--proportion", "2"], "--proportion must be in [0, 1]"),
    (["-m", "svg_core.train", "--data", "/nonexistent_dir", "--model", "base", "--out", "/tmp/svg_x"], "/nonexistent_dir"),
    (["-m", "svg_core.results", "/nonexistent_runs"], "nonexistent_runs"),
    (["-m", "svg_core.synth", "stats", "/nonexistent_synth"], "nonexistent_synth"),
])
def test_every_cli_answers_a_user_error_with_one_line_and_exit_2(argv, message):
    import subprocess
    import sys

    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stderr[-500:])
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and message in out.stderr, out.stderr


@pytest.mark.parametrize("kwargs, message", [
    ({"snr_db": float("nan")}, "SNR must be a finite number"),
    ({"snr_db": 1e9}, "SNR must be a finite number"),
    ({"proportion": 1.5}, "covered proportion must be in [0, 1]"),
    ({"seed": -1}, "seed must be an integer in [0, 2**32 - 1]"),
    ({"seed": 2**64}, "seed must be an integer in [0, 2**32 - 1]"),
])
def test_app_noise_settings_are_checked_before_any_work(kwargs, message):
    from app import handlers as H

    with pytest.raises(H.UserError) as err:
        H.NoiseSettings(kind="white", **kwargs)
    assert message in str(err.value)
