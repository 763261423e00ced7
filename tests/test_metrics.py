"""The evaluator and span helpers against hand-computed cases."""

import doctest
import json

import numpy as np
import pytest
import torch

import svg_core.engine.metrics as evaluate
import svg_core.engine.spans as spans
from svg_core.engine.evaluation import main
from svg_core.engine.metrics import compute_metrics, read_predictions, write_predictions
from svg_core.engine.spans import decode_spans, grid_to_sec, iou_xx


def test_doctests():
    for module in (spans, evaluate):
        assert doctest.testmod(module).failed == 0


def test_iou_hand_cases():
    assert iou_xx([0, 10], [0, 10]) == 1.0
    assert iou_xx([0, 10], [5, 15]) == pytest.approx(5 / 15)
    assert iou_xx([0, 4], [6, 10]) == 0.0
    assert iou_xx([0, 10], [2, 4]) == pytest.approx(0.2)
    assert iou_xx([3, 3], [3, 3]) == 0.0


def test_metrics_hand_cases():
    recs = [
        {"gt_window_sec": [0, 10], "pred_windows_sec": [[0, 10, 1.0]]},          # IoU 1
        {"gt_window_sec": [0, 10], "pred_windows_sec": [[5, 15, 1.0], [0, 9, 0.5]]},  # 1/3, then 0.9
        {"gt_window_sec": [10, 20], "pred_windows_sec": [[0, 4, 1.0]]},           # 0
        {"gt_window_sec": [0, 10], "pred_windows_sec": []},                      # miss
    ]
    m = compute_metrics(recs)
    assert m["R1@0.3"] == pytest.approx(50.0) and m["R1@0.5"] == pytest.approx(25.0)
    assert m["R5@0.5"] == pytest.approx(50.0) and m["R5@0.7"] == pytest.approx(50.0)
    assert m["mIoU"] == pytest.approx((1 + 1 / 3) / 4 * 100)
    assert m["n_queries"] == 4
    exact = compute_metrics([{"gt_window_sec": [0, 10], "pred_windows_sec": [[0, 5, 1.0]]}])
    assert exact["R1@0.5"] == 100.0  # IoU = 0.5 counts (>=)
    with pytest.raises(ValueError):
        compute_metrics([])


def test_decode_end_after_start_and_nms():
    n = 16
    start = torch.full((2, n), 1e-3)
    end = torch.full((2, n), 1e-3)
    start[0, 10], end[0, 3] = 1.0, 1.0  # the end peak is before the start peak
    start[1, 2], end[1, 5] = 1.0, 1.0
    out = decode_spans(start.softmax(-1), end.softmax(-1), top_k=5)
    for item in out:
        assert all(e > s for s, e, _ in item) and len(item) == 5
        kept = np.array([k[:2] for k in item], float)
        for i in range(len(kept)):
            for j in range(i):
                assert iou_xx(kept[i], kept[j]) <= 0.5
    assert out[1][0][:2] == (2, 6)
    assert grid_to_sec(2, 6, 32.0, 16) == (4.0, 12.0)
    with pytest.raises(ValueError):
        decode_spans(torch.ones(3), torch.ones(3))


def test_jsonl_round_trip_and_cli(tmp_path, capsys):
    recs = [{"query_id": "q", "video_id": "v", "duration_sec": 10.0, "gt_window_sec": [0, 5],
             "pred_windows_sec": [[0, 5, 0.9]]}]
    path = tmp_path / "p.jsonl"
    write_predictions(recs, path)
    assert read_predictions(path) == recs
    assert main(["--pred", str(path)]) == 0
    assert "100.00" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"x": 1}) + "\n")
    with pytest.raises(ValueError, match="line 1"):
        read_predictions(bad)


def test_write_predictions_never_leaves_a_half_file(tmp_path):
    path = tmp_path / "preds.jsonl"
    good = [{"query_id": "q0", "gt_window_sec": [1.0, 2.0], "pred_windows_sec": [[1.0, 2.0, 1.0]], "duration_sec": 10.0}]
    write_predictions(good, path)
    with pytest.raises(TypeError):  # the second record cannot be written: the first file stays whole
        write_predictions(good + [{"query_id": object()}], path)
    assert [r["query_id"] for r in read_predictions(path)] == ["q0"]
    assert [p.name for p in tmp_path.iterdir()] == ["preds.jsonl"]  # no temporary file left behind
