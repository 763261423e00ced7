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
    (["-m", "svg_core.search", "evaluate", "--data", "/nonexistent_search"], "nonexistent_search"),
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


# --- app: typed text, data folders, checkpoints, failure cases (issue 18, second part) ---------


def _demo(tmp_path, n_videos=3, name="demo"):
    from app.fake import write_tiny_demo_set

    return write_tiny_demo_set(tmp_path / name, n_videos=n_videos, queries_per_video=2, with_mp4=False)


def _poison_features(folder, video_id, how):
    import h5py

    with h5py.File(folder / "sub_activitynet_v1-3.c3d.hdf5", "a") as h5:
        data = h5[video_id]["c3d_features"][()]
        del h5[video_id]["c3d_features"]
        if how == "nan":
            data[3] = np.nan
        elif how == "width":
            data = data[:, :300]
        elif how == "empty":
            data = data[:0]
        h5[video_id].create_dataset("c3d_features", data=data)


@pytest.mark.parametrize("text, message", [
    ("a man\x00 jumps", "control character U\\+0000"),
    ("\x1b[31mred ball", "control character U\\+001B"),
    ("zero\u200bwidth", "control character U\\+200B"),
    ("...", "no word to speak"),
    ("-", "no word to speak"),
    ("   ", "No sentence"),
])
def test_typed_text_that_no_voice_can_say(tmp_path, text, message):
    from app import handlers as H
    from app.resources import AppConfig, Backend, DemoSet

    demo_dir = _demo(tmp_path, n_videos=1)
    demo = DemoSet(demo_dir)
    backend = Backend(AppConfig(data_dir=demo_dir, fake=True))
    with pytest.raises(H.UserError, match=message):
        H.load_query(backend, demo, H.SOURCE_TTS, demo.video_ids[0], typed_text=text)


def test_library_speak_refuses_unspeakable_text():
    from svg_core.audio.tts import speak
    from svg_core.errors import UserInputError

    with pytest.raises(UserInputError, match="no word to speak"):
        speak("?!", "espeak:en-us")


@pytest.mark.parametrize("how, message", [("nan", "NaN or inf"), ("width", "expected features of shape"),
                                          ("empty", "no rows")])
def test_bad_features_leave_out_one_video_and_say_so(tmp_path, how, message):
    from app.resources import DemoSet

    demo_dir = _demo(tmp_path)
    _poison_features(demo_dir, "v_fake1", how)
    demo = DemoSet(demo_dir)  # no mp4: thumbnails are drawn from the features
    assert demo.video_ids == ["v_fake0", "v_fake2"]
    assert message in demo.problems["v_fake1"]
    assert all(demo.thumbnail(v, tmp_path / "thumbs").exists() for v in demo.video_ids)


def test_a_duration_the_features_cannot_carry(tmp_path):
    from app.resources import DemoSet
    from svg_core.data.video_features import VideoFeatureError
    from svg_core.engine.predictor import Grounder
    from svg_core.models import build_model
    from tests.conftest import tiny_configs

    demo_dir = _demo(tmp_path)
    path = demo_dir / "new_test_data.json"
    items = json.loads(path.read_text())
    items = [[v, 1e9 if v == "v_fake2" else d, *rest] for v, d, *rest in items]
    path.write_text(json.dumps(items))
    demo = DemoSet(demo_dir)
    assert "v_fake2" not in demo.video_ids and "s per row" in demo.problems["v_fake2"]
    cfg = tiny_configs()["base"]
    grounder = Grounder(build_model(cfg).eval(), cfg)
    with pytest.raises(VideoFeatureError, match="duration_sec 1e\\+09 s over 126 feature rows"):
        grounder.localize(np.zeros((126, 500), np.float32), duration_sec=1e9, audio=np.ones(16000, np.float32) * 0.1)


def test_skipped_annotation_items_are_listed(tmp_path):
    from app.resources import DemoSet

    demo_dir = _demo(tmp_path)
    path = demo_dir / "new_test_data.json"
    items = json.loads(path.read_text())
    items[0][2] = [5.0, 1.0]  # reversed moment
    path.write_text(json.dumps(items))
    demo = DemoSet(demo_dir)
    (key, reason), = demo.problems.items()
    assert key == "test item 0" and reason


def test_a_folder_with_no_usable_video(tmp_path):
    from app.resources import DemoSet
    from svg_core.errors import UserInputError

    demo_dir = _demo(tmp_path, n_videos=1)
    _poison_features(demo_dir, "v_fake0", "nan")
    with pytest.raises(UserInputError, match="no usable video.*v_fake0.*NaN"):
        DemoSet(demo_dir)


def test_corrupt_hdf5_names_the_file(tmp_path):
    from svg_core.data.video_features import VideoFeatureError, VideoFeatureStore

    bad = tmp_path / "features.hdf5"
    bad.write_bytes(b"\x89HDF\r\n" + b"\x00" * 100)
    store = VideoFeatureStore(bad)
    with pytest.raises(VideoFeatureError, match="features.hdf5 is not a readable HDF5 file"):
        store.get("v_x")
    folder = tmp_path / "per_video"
    folder.mkdir()
    (folder / "v_y.h5").write_bytes(b"truncated")
    with pytest.raises(VideoFeatureError, match="v_y.h5 is not a readable HDF5 file"):
        VideoFeatureStore(folder).get("v_y")


def test_model_menu_offers_only_checkpoints_that_load(tmp_path):
    import shutil
    from pathlib import Path

    from app.app import _left_out_markdown
    from app.resources import AppConfig, Backend, DemoSet

    root = Path(__file__).resolve().parents[1]
    ckpts = tmp_path / "ckpts"
    shutil.copytree(root / "checkpoints" / "base", ckpts / "good")
    shutil.copytree(root / "checkpoints" / "base", ckpts / "garbage_weights")
    (ckpts / "garbage_weights" / "model.safetensors").write_bytes(b"not safetensors at all")
    shutil.copytree(root / "checkpoints" / "base", ckpts / "bad_json")
    (ckpts / "bad_json" / "config.json").write_text("{broken")
    shutil.copytree(root / "checkpoints" / "base", ckpts / "wrong_shapes")
    cfg = json.loads((ckpts / "wrong_shapes" / "config.json").read_text())
    (ckpts / "wrong_shapes" / "config.json").write_text(json.dumps({**cfg, "model_dim": 32}))
    demo_dir = _demo(tmp_path, n_videos=1)
    backend = Backend(AppConfig(data_dir=demo_dir, checkpoints_dir=ckpts))
    assert backend.model_names() == ["good"]
    assert set(backend.checkpoint_problems) == {"garbage_weights", "bad_json", "wrong_shapes"}
    banner = _left_out_markdown(DemoSet(demo_dir), backend)
    assert "3 checkpoints left out" in banner and "garbage_weights" in banner and str(tmp_path) not in banner


def test_one_corrupt_wav_costs_its_row_not_the_table(tmp_path):
    from app import handlers as H
    from app.resources import FAKE_MODEL, AppConfig, Backend, DemoSet

    demo_dir = _demo(tmp_path, n_videos=2)
    demo = DemoSet(demo_dir)
    victim = demo.records[0]
    (demo_dir / "audio" / victim.wav_name).write_bytes(b"RIFF\x00\x00garbage")
    skipped = []
    rows = H.evaluate_demo_set(Backend(AppConfig(data_dir=demo_dir, fake=True)), demo, H.NoiseSettings("none", 10, 0.6),
                               FAKE_MODEL, "whisper", skipped=skipped)
    assert len(rows) == len(demo.records) - 1 and victim.query_id not in {r["query_id"] for r in rows}
    assert skipped[0][0] == victim.query_id and "audio" in skipped[0][1].lower()


def test_user_errors_in_the_app_carry_no_server_paths():
    from app.app import ROOT, public_message

    err = ValueError(f"{ROOT}/assets/demo_bundle/features.hdf5 is broken; /tmp/gradio/1a2b/upload.wav too long")
    assert public_message(err) == "assets/demo_bundle/features.hdf5 is broken; upload.wav too long"


@pytest.mark.slow  # about a minute: 130 cases, some of them training or decoding
def test_the_probe_finds_no_answer_other_than_a_clear_message_or_a_valid_result(tmp_path, capsys):
    from app.probe import main as probe_main

    assert probe_main(["--out", str(tmp_path / "probe.json")]) == 0, capsys.readouterr().out
    results = json.loads((tmp_path / "probe.json").read_text())
    assert len(results) >= 100 and {r["answer"] for r in results} <= {"clear", "processed"}
    assert sum(r["answer"] == "clear" for r in results) >= 100


def test_synth_build_into_a_folder_that_holds_files_is_one_error_line(tmp_path, capsys):
    from svg_core.synth.__main__ import main

    (tmp_path / "keep.txt").write_text("mine")
    assert main(["build", "--out", str(tmp_path), "--videos", "1", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: ") and "--overwrite" in err, err
    assert (tmp_path / "keep.txt").read_text() == "mine"  # nothing lost
