"""Annotation reader: formats, repairs and every kind of malformed item."""

import json
from pathlib import Path

import pytest

from svg_core.data.__main__ import main as data_main
from svg_core.data.annotations import load_annotations, save_annotations

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "activitynet_speech" / "new_test_data.json"

GOOD5 = ["v_a", 55.15, [0, 4.14], " Two men talk.", "a_val_2_1.wav"]
GOOD4 = ["v_b", 20.0, [1.5, 3.0], "A dog runs."]


def write(tmp_path, items, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(items))
    return path


def test_reads_5_and_4_field_items(tmp_path):
    records, report = load_annotations(write(tmp_path, [GOOD5, GOOD4]))
    assert report.n_items == 2 and report.n_loaded == 2
    a, b = records
    assert (a.video_id, a.duration_sec, a.start_sec, a.end_sec) == ("v_a", 55.15, 0.0, 4.14)
    assert a.sentence == "Two men talk." and a.wav_name == "a_val_2_1.wav"
    assert b.wav_name is None and b.query_id == "v_b#1"


def test_end_past_duration_is_clipped_and_counted(tmp_path):
    records, report = load_annotations(write(tmp_path, [["v_c", 234.93, [200.0, 234.94], "x", "c.wav"]]))
    assert records[0].end_sec == 234.93
    assert report.n_end_clipped == 1


@pytest.mark.parametrize(
    "item, message",
    [
        (["v_a", 10.0, [5.0, 5.0], "s", "w.wav"], "must be before end"),
        (["v_a", 10.0, [6.0, 2.0], "s", "w.wav"], "must be before end"),
        (["v_a", 10.0, [-1.0, 2.0], "s", "w.wav"], "negative time"),
        (["v_a", "ten", [0.0, 2.0], "s", "w.wav"], "duration must be a number"),
        (["v_a", 10.0, ["0", 2.0], "s", "w.wav"], "start must be a number"),
        (["v_a", 10.0, [0.0, None], "s", "w.wav"], "end must be a number"),
        (["v_a", 10.0, [0.0, 2.0]], "expected a list"),
        (["v_a", 10.0, [0.0], "s", "w.wav"], "timestamps must be"),
        (["v_a", 10.0, [0.0, 2.0], "", "w.wav"], "sentence must be"),
        (["v_a", 10.0, [0.0, float("nan")], "s", "w.wav"], "must be finite"),
        ({"video": "v_a"}, "expected a list"),
    ],
)
def test_bad_items_raise_with_file_and_index(tmp_path, item, message):
    path = write(tmp_path, [GOOD5, item])
    with pytest.raises(ValueError, match=message) as info:
        load_annotations(path)
    assert f"{path} item 1" in str(info.value)


def test_skip_mode_counts_bad_items(tmp_path):
    items = [GOOD5, ["v_a", 10.0, [5.0, 1.0], "s", "w.wav"], GOOD4, ["v_a", 10.0, [-2, 1.0], "s", "w.wav"]]
    records, report = load_annotations(write(tmp_path, items), on_error="skip")
    assert [r.index for r in records] == [0, 2]
    assert [i for i, _ in report.skipped] == [1, 3]


def test_file_level_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_annotations(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_annotations(bad)
    with pytest.raises(ValueError, match="expected a JSON list"):
        load_annotations(write(tmp_path, {"a": 1}, "dict.json"))
    with pytest.raises(ValueError, match="on_error"):
        load_annotations(write(tmp_path, []), on_error="ignore")


def test_round_trip(tmp_path):
    records, _ = load_annotations(write(tmp_path, [GOOD5, GOOD4]))
    out = tmp_path / "out.json"
    save_annotations(records, out)
    again, _ = load_annotations(out)
    assert [(r.video_id, r.start_sec, r.end_sec, r.wav_name) for r in again] == [
        (r.video_id, r.start_sec, r.end_sec, r.wav_name) for r in records]


@pytest.mark.skipif(not REAL.exists(), reason="needs ../shared/data/activitynet_speech (this workplace's shared folder)")
def test_real_file_loads_and_inspect_prints_counts(capsys):
    records, report = load_annotations(REAL)  # load time: `time python -m svg_core.data inspect ...`
    assert len(records) == 17_031 and len({r.video_id for r in records}) == 4_885
    assert report.n_end_clipped == 1
    assert data_main(["inspect", str(REAL)]) == 0
    out = capsys.readouterr().out
    assert "17,031" in out and "4,885" in out and "1 end clipped" in out
