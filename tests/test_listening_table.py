"""The "Does it listen?" table (svg_core.reporting.listening_table) on hand-made metrics JSON files,
and the results CLI writing that block alone (``--only LISTENING --into MARKER``)."""

import json
from pathlib import Path

import pytest

from svg_core.reporting import listening_table, results

HEADER = ("| model | discrimination % (pairs) | real mIoU | real R1@0.5 | silent mIoU (drop) | silent R1@0.5 (drop)"
          " | other video mIoU (drop) | other video R1@0.5 (drop) | shuffled words mIoU (drop)"
          " | shuffled words R1@0.5 (drop) | seeds | queries |")


def _write_preds(path: Path, hits: list[bool]) -> dict:
    """One query per entry, on its moment (IoU 1) or far off (IoU 0); returns its real-query figures."""
    with path.open("w") as f:
        for i, hit in enumerate(hits):
            pred = [10.0, 20.0, 1.0] if hit else [80.0, 90.0, 1.0]
            f.write(json.dumps({"query_id": f"q{i}", "video_id": "v", "duration_sec": 100.0,
                                "gt_window_sec": [10.0, 20.0], "pred_windows_sec": [pred]}) + "\n")
    share = 100.0 * sum(hits) / len(hits)
    return {"mIoU": share, "R1@0.5": share}


def _write_metrics(pred_path: Path, real: dict, discrimination: float | None, n_pairs: int = 12,
                   controls: dict | None = None) -> None:
    """The JSON of ``svg_core.evaluate --metrics-out`` beside ``pred_path``; ``discrimination=None``
    writes it as an evaluation without ``--listening`` does (``"listening": null``)."""
    listening = None
    if discrimination is not None:
        rows = {"real": {**real, "drop_mIoU": 0.0, "drop_R1@0.5": 0.0}}
        for name, (miou, r1) in (controls or {}).items():
            rows[name] = {"mIoU": miou, "R1@0.5": r1, "drop_mIoU": real["mIoU"] - miou,
                          "drop_R1@0.5": real["R1@0.5"] - r1}
        listening = {"discrimination": {"discrimination_pct": discrimination, "n_pairs": n_pairs, "n_ties": 0},
                     "controls": rows}
    path = listening_table.metrics_json_path(pred_path)
    path.write_text(json.dumps({"metrics": dict(real, n_queries=4), "listening": listening}))


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    """Base with listening data, text with the shuffled-words control too, VSLNet without any,
    VGCL with a metrics JSON written without --listening."""
    ev = tmp_path / "eval"
    ev.mkdir()
    real = _write_preds(ev / "base_s0_normal.jsonl", [True, True, False, False])  # mIoU = R1@0.5 = 50
    _write_metrics(ev / "base_s0_normal.jsonl", real, 75.0,
                   controls={"silent": (30.0, 25.0), "other_video": (40.0, 50.0)})
    real = _write_preds(ev / "text_s0_normal.jsonl", [True, True, True, False])  # 75
    _write_metrics(ev / "text_s0_normal.jsonl", real, 62.5, n_pairs=8,
                   controls={"silent": (25.0, 0.0), "other_video": (80.0, 100.0), "shuffled_words": (70.0, 75.0)})
    _write_preds(ev / "vslnet_s0_normal.jsonl", [True, False, False, False])  # no metrics JSON at all
    real = _write_preds(ev / "vgcl_base_s0_normal.jsonl", [True, True, True, True])
    _write_metrics(ev / "vgcl_base_s0_normal.jsonl", real, None)
    return tmp_path


def test_known_numbers_give_known_cells(runs):
    table = listening_table.listening_block(runs).splitlines()
    assert table[0] == HEADER
    assert table[2:] == [
        "| Base | 75.00 (12) | 50.00 | 50.00 | 30.00 (20.00) | 25.00 (25.00) | 40.00 (10.00) | 50.00 (0.00)"
        " | n/a | n/a | 0 | 4 |",  # an audio query: no shuffled-words control
        "| VSLNet (audio) | — | 25.00 | 25.00 | — | — | — | — | — | — | 0 | 4 |",  # no metrics JSON
        "| VGCL (full) | — | 100.00 | 100.00 | — | — | — | — | — | — | 0 | 4 |",  # "listening": null
        "| Text, original caption | 62.50 (8) | 75.00 | 75.00 | 25.00 (50.00) | 0.00 (75.00) | 80.00 (-5.00)"
        " | 100.00 (-25.00) | 70.00 (5.00) | 75.00 (0.00) | 0 | 4 |",  # a control above the real query: negative
    ]


def test_seeds_average_and_only_seeds_with_listening_count(runs):
    ev = runs / "eval"
    real = _write_preds(ev / "base_s1_normal.jsonl", [True, True, True, False])  # 75
    _write_metrics(ev / "base_s1_normal.jsonl", real, 85.0,
                   controls={"silent": (40.0, 25.0), "other_video": (50.0, 50.0)})
    _write_preds(ev / "base_s2_normal.jsonl", [False] * 4)  # evaluated without --listening: left out of the row
    base = listening_table.listening_rows(runs)[0]
    assert base.seeds == [0, 1] and len(base.listening) == 2
    row = next(ln for ln in listening_table.listening_block(runs).splitlines() if ln.startswith("| Base |"))
    # seeds 0 and 1: discrimination 75 and 85, real 50 and 75, silent mIoU 30 and 40 (drops 20 and 35)
    assert row.startswith("| Base | 80.00 ± 7.07 (12) | 62.50 ± 17.68 | 62.50 ± 17.68 | 35.00 ± 7.07 (27.50) |")
    assert row.endswith("| n/a | n/a | 0,1 | 4 |")


def test_a_metrics_json_of_another_evaluation_is_refused(runs):
    ev = runs / "eval"
    _write_metrics(ev / "base_s0_normal.jsonl", {"mIoU": 51.0, "R1@0.5": 50.0}, 75.0)
    with pytest.raises(ValueError, match="real-query mIoU 51.0000 is not that of base_s0_normal.jsonl"):
        listening_table.listening_rows(runs)


def test_an_empty_folder_and_the_console_report(tmp_path, runs, capsys):
    (tmp_path / "empty" / "eval").mkdir(parents=True)
    assert listening_table.listening_block(tmp_path / "empty").startswith("(not run yet")
    assert "LISTENING" in results.markdown_blocks(runs)
    results.main([str(runs)])
    out = capsys.readouterr().out
    assert "Does it listen?" in out and "| VSLNet (audio) | — |" in out


PAGE = ("# Results\n<!-- TABLE2 -->\nold table 2\n<!-- /TABLE2 -->\n"
        "Walls: <!-- WALL_TIMES -->old<!-- /WALL_TIMES -->.\n"
        "## Does it listen?\n<!-- LISTENING_DEMO -->\nold listening\n<!-- /LISTENING_DEMO -->\nend\n")


def test_cli_rewrites_only_the_listening_block(runs, tmp_path, capsys):
    page = tmp_path / "RESULTS.md"
    page.write_text(PAGE)
    assert results.main([str(runs), "--only", "LISTENING", "--into", "LISTENING_DEMO", "--update-md", str(page)]) == 0
    assert "updated" in capsys.readouterr().out
    want = PAGE.replace("old listening", listening_table.listening_block(runs))
    assert page.read_text() == want  # TABLE2 and WALL_TIMES kept as written
    results.main([str(runs), "--only", "LISTENING", "--into", "LISTENING_DEMO", "--update-md", str(page)])
    assert page.read_text() == want  # filling twice changes nothing


def test_cli_only_refuses_a_page_without_the_marker_and_into_without_one_block(runs, tmp_path, capsys):
    page = tmp_path / "RESULTS.md"
    page.write_text(PAGE)
    assert results.main([str(runs), "--only", "LISTENING", "--update-md", str(page)]) == 2  # no <!-- LISTENING -->
    assert "no <!-- LISTENING --> ... <!-- /LISTENING --> marker" in capsys.readouterr().err
    assert results.main([str(runs), "--into", "LISTENING_DEMO", "--update-md", str(page)]) == 2
    assert "--into MARKER needs exactly one --only BLOCK" in capsys.readouterr().err
    assert page.read_text() == PAGE
