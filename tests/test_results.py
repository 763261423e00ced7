"""Tests of svg_core.results: seed discovery, mean ± std, subsets, wall times and the PNG plots."""

import json
from pathlib import Path

import pytest

from svg_core.reporting import plots as results_plots, results


def _write_preds(path: Path, hits: list[bool], per_video: int = 0) -> None:
    """One query per entry: a prediction on the ground truth (hit) or far from it (miss); all in
    video ``v``, or ``per_video`` queries per video ``v0``, ``v1``, ..."""
    with path.open("w") as f:
        for i, hit in enumerate(hits):
            pred = [10.0, 20.0, 1.0] if hit else [80.0, 90.0, 1.0]
            video = f"v{i // per_video}" if per_video else "v"
            f.write(json.dumps({"query_id": f"q{i}", "video_id": video, "duration_sec": 100.0,
                                "gt_window_sec": [10.0, 20.0], "pred_windows_sec": [pred]}) + "\n")


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    ev = tmp_path / "eval"
    ev.mkdir()
    _write_preds(ev / "base_s0_normal.jsonl", [True, True, False, False])  # R1@0.5 = 50
    _write_preds(ev / "base_s1_normal.jsonl", [True, True, True, False])  # 75
    _write_preds(ev / "base_s0_large.jsonl", [True, False, False, False])  # 25
    _write_preds(ev / "cascade_whisper_normal_text_s0.jsonl", [False, True])
    _write_preds(ev / "vslnet_s0_normalised.jsonl", [True])  # another suffix: not a seed file of "_normal"
    (tmp_path / "base_s0.log").write_text("epoch 1: ...\nbase_s0 wall 123.4 s\n")
    run = tmp_path / "base_s0"
    run.mkdir()
    (run / "log.csv").write_text("epoch,step,val_R1@0.5\n1,10,30.5\n2,20,41.0\n")
    return tmp_path


def test_table2_rows_mean_and_std_over_seeds(runs):
    rows = {r.label: r for r in results.table2(runs)}
    assert set(rows) == {"Base", "Cascade: Whisper -> text"}
    base = rows["Base"]
    assert base.seeds == [0, 1] and base.n_queries == 4
    assert base.mean("R1@0.5") == pytest.approx(62.5)
    assert base.std("R1@0.5") == pytest.approx(17.6777, abs=1e-3)  # sample std of 50 and 75
    assert rows["Cascade: Whisper -> text"].std("R1@0.5") == 0.0  # one seed
    first_two = {r.label: r for r in results.table2(runs, limit=2)}["Base"]
    assert first_two.mean("R1@0.5") == pytest.approx(100.0) and first_two.n_queries == 2
    table = results.format_table(list(rows.values()))
    assert "| Base | " in table and "62.50 ± 17.68" in table and "| 0,1 | 4 |" in table


def test_noise_rows_wall_times_and_curves(runs):
    levels = results.noise_rows(runs)
    assert set(levels["Base"]) == {"normal", "large"} and levels["Base"]["large"].mean("R1@0.5") == 25.0
    assert set(levels["Cascade: Whisper"]) == {"normal"}
    assert results.wall_seconds(runs) == {"base_s0": 123.4}
    (runs / "vgcl_base_s0.log").write_text("vgcl_base_s0 wall 100.0 s\nepoch 4 ...\nvgcl_base_s0 wall 50.5 s\n")
    assert results.wall_seconds(runs)["vgcl_base_s0"] == 150.5  # a resumed run: its parts add up
    assert results.val_curve(runs / "base_s0") == [(1, 30.5), (2, 41.0)]
    assert results.val_curve(runs / "missing") == []


def test_plots_write_pngs(runs, tmp_path):
    rows = results.table2(runs)
    results_plots.plot_rows(rows, tmp_path / "t2.png", title="t")
    results_plots.plot_noise(results.noise_rows(runs), tmp_path / "noise.png")
    results_plots.plot_curves({"base": results.val_curve(runs / "base_s0")}, tmp_path / "curves.png")
    for name in ("t2.png", "noise.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_needs_an_eval_folder(tmp_path, capsys):
    with pytest.raises(ValueError, match="eval not found"):
        results._main([str(tmp_path)])


def test_rows_by_need_groups_queries_by_caption_need(runs, tmp_path):
    scenes = [{"queries": [{"wav_name": "q0", "needs": ["colour"]}, {"wav_name": "q1", "needs": []},
                           {"wav_name": "q2", "needs": ["colour", "action"]}, {"wav_name": "q3", "needs": ["action"]}]}]
    (tmp_path / "scenes.json").write_text(json.dumps(scenes))
    rows = {r.label: r for r in results.rows_by_need(runs / "eval" / "base_s0_normal.jsonl", tmp_path / "scenes.json", "Base")}
    assert list(rows) == ["Base needs none", "Base needs colour", "Base needs action"]
    assert rows["Base needs colour"].mean("R1@0.5") == 50.0 and rows["Base needs colour"].n_queries == 2  # q0 hit, q2 miss
    assert rows["Base needs action"].mean("R1@0.5") == 0.0 and rows["Base needs none"].mean("R1@0.5") == 100.0
    (tmp_path / "scenes.json").write_text(json.dumps([{"queries": [{"wav_name": "other", "needs": []}]}]))
    with pytest.raises(ValueError, match="not in .*same build"):
        results.rows_by_need(runs / "eval" / "base_s0_normal.jsonl", tmp_path / "scenes.json")


def test_data_summary_lets_archived_runs_make_tables_without_the_dataset(runs, tmp_path, capsys):
    from svg_core.data.dataset import DatasetLayout
    from tests.fixtures_build import make_tiny_dataset

    data = make_tiny_dataset(tmp_path / "data", n_videos=4, queries_per_video=2, seed=0)
    test_ids = [r.query_id for r in DatasetLayout.from_dir(data).records("test")[0]]
    assert test_ids
    scenes = [{"queries": [{"wav_name": q, "needs": ["shape"] if i % 2 else []} for i, q in enumerate(test_ids)]
               + [{"wav_name": "a_train_query", "needs": ["colour"]}]}]
    (data / "scenes.json").write_text(json.dumps(scenes))
    with pytest.raises(ValueError, match="needs --data"):
        results._main([str(runs), "--save-data-summary"])
    results.main([str(runs), "--data", str(data), "--save-data-summary"])
    summary = json.loads((runs / results.DATA_SUMMARY).read_text())
    assert set(summary["needs"]) == set(test_ids)  # the test split only
    from_archive, from_data = results.prior_row(runs), results.prior_row(data)
    assert from_archive.per_seed == from_data.per_seed and from_archive.n_queries == len(test_ids)
    # predictions on the tiny test queries, grouped by need through the archive alone
    with (runs / "eval" / "text_s0_normal.jsonl").open("w") as f:
        for q in test_ids:
            f.write(json.dumps({"query_id": q, "video_id": "v", "duration_sec": 10.0,
                                "gt_window_sec": [1.0, 2.0], "pred_windows_sec": [[1.0, 2.0, 1.0]]}) + "\n")
    labels = [r.label for r in results.rows_by_need(runs / "eval" / "text_s0_normal.jsonl", runs, "Text")]
    assert labels[0] == "Text needs none" and ("Text needs shape" in labels) == (len(test_ids) > 1)
    capsys.readouterr()
    results.main([str(runs)])  # no --data: the prior row comes from the summary
    assert "| Blind prior (no query) |" in capsys.readouterr().out


def test_ablation_tables_find_their_variants(runs, capsys):
    _write_preds(runs / "eval" / "vgcl_base_s0_normal.jsonl", [True, False])
    _write_preds(runs / "eval" / "vgcl_base_nocl_s0_normal.jsonl", [False, False])
    _write_preds(runs / "eval" / "vgcl_base_exp5_s1_normal.jsonl", [True, True])
    t3 = {r.label: r.mean("R1@0.5") for r in results.table(runs, results.TABLE3_ROWS)}
    assert t3 == {"VGCL (full)": 50.0, "w/o curriculum": 0.0}
    t4 = {r.label: r.seeds for r in results.table(runs, results.TABLE4_ROWS)}
    assert t4 == {"linear, kappa 10 (full)": [0], "exponential, kappa 5": [1]}
    assert "VGCL (full)" in {r.label for r in results.table2(runs)}  # the full model is also a Table 2 row
    results.main([str(runs)])
    out = capsys.readouterr().out
    assert "Table 3 (VGCL ablations)" in out and "| w/o curriculum |" in out
    assert "exponential, kappa 5" not in out  # Tables 3/4 are at seed 0; that variant only has seed 1


def test_ablation_table_is_one_seed_with_paired_differences_to_the_full_model(runs):
    ev = runs / "eval"
    assert results.ablation_table(runs, results.TABLE3_ROWS) is None  # no variant yet
    _write_preds(ev / "vgcl_base_s0_normal.jsonl", [True, True, False, False], per_video=2)
    _write_preds(ev / "vgcl_base_s1_normal.jsonl", [True, True, True, True])  # not in the seed-0 table
    assert results.ablation_table(runs, results.TABLE3_ROWS) is None  # the full model alone
    _write_preds(ev / "vgcl_base_nocl_s0_normal.jsonl", [False, False, False, False], per_video=2)
    _write_preds(ev / "vgcl_base_nosa_s1_normal.jsonl", [True, True, True, True])  # seed 1: left out
    md = results.ablation_table(runs, results.TABLE3_ROWS)
    lines = md.splitlines()
    assert lines[2].startswith("| VGCL (full) | 50.00 | 50.00 | 50.00 |") and "(reference)" in lines[2]
    assert lines[3].startswith("| w/o curriculum | 0.00 | 0.00 | 0.00 | 0.00 | -50.00 [")  # paired on 4 queries
    assert lines[3].endswith("| 0 | 4 |") and "w/o self-attention" not in md
    # the full model's seed spread (seeds 0 and 1: 50 and 100) closes the table
    assert lines[-1].startswith("Full model over seeds 0,1: R1@0.5 75.00 ± 35.36")
    assert results.markdown_blocks(runs)["TABLE3"] == md
    _write_preds(ev / "vgcl_base_exp5_s0_normal.jsonl", [True, True, True, True], per_video=2)  # a Table 4 variant
    diffs = dict(results.ablation_differences(runs))  # Tables 3 and 4, seed 0, the full model left out
    assert set(diffs) == {"w/o curriculum", "exponential, kappa 5"}
    assert diffs["w/o curriculum"]["diff"] == -50.0 and diffs["exponential, kappa 5"]["diff"] == 50.0
    png = runs / "ablations.png"
    results_plots.plot_differences(list(diffs.items()), png, seed_std=35.36, title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _write_preds(ev / "vgcl_base_noent_s0_normal.jsonl", [True, True])  # other queries than the full model
    assert "| w/o entire video | 100.00 | 100.00 | 100.00 | 100.00 | not comparable: " in \
        results.ablation_table(runs, results.TABLE3_ROWS)  # the table says why ...
    assert "w/o entire video" not in dict(results.ablation_differences(runs))  # ... the plot leaves it out


def test_update_md_rewrites_only_the_marked_blocks(runs, tmp_path, capsys):
    page = tmp_path / "RESULTS.md"
    page.write_text("# Results\nkept prose\n<!-- TABLE2 -->\nold table\n<!-- /TABLE2 -->\n"
                    "Walls: <!-- WALL_TIMES -->old<!-- /WALL_TIMES -->.\n<!-- TABLE3 -->x<!-- /TABLE3 -->\nend\n")
    results.main([str(runs), "--update-md", str(page)])
    assert "updated" in capsys.readouterr().out
    text = page.read_text()
    assert text.startswith("# Results\nkept prose\n<!-- TABLE2 -->\n| method |") and text.endswith("end\n")
    assert "old table" not in text and "| Base | 62.50 ± 17.68 |" in text  # seeds 0 and 1: 50 and 75
    assert "| Base |" in text and "Walls: <!-- WALL_TIMES -->`base_s0` 2 min<!-- /WALL_TIMES -->." in text
    assert "<!-- TABLE3 -->(not run yet" in text  # no ablation run in the fixture
    blocks = results.markdown_blocks(runs)
    assert blocks["NEEDS"].startswith("(no data_summary.json")
    assert set(blocks) == set(results.BLOCK_NAMES) == {"TABLE2", "TABLE2_SUBSET", "PAIRED", "TABLE3", "TABLE4", "FIG4",
                                                       "FIG4_SUBSET", "NEEDS", "LISTENING", "WALL_TIMES"}
    # FIG4_SUBSET: every noise row on the cascades' first queries (base at large noise: its first query hits)
    assert "| Base, large | 100.00 |" in results.markdown_blocks(runs, cascade_limit=1)["FIG4_SUBSET"]
    assert "| Base, large | 25.00 |" in blocks["FIG4"]
    assert results.fill_markdown(page, blocks) == ["TABLE2", "TABLE3", "WALL_TIMES"]
    assert page.read_text() == text  # filling twice changes nothing


def test_update_md_refuses_a_broken_marker_and_keeps_the_page(runs, tmp_path):
    page = tmp_path / "RESULTS.md"
    broken = "<!-- TABLE2 -->\nold\n<!-- TABLE2 -->\nnever closed\n"
    page.write_text(broken)
    with pytest.raises(ValueError, match="must open once and close once"):
        results.fill_markdown(page, results.markdown_blocks(runs))
    assert page.read_text() == broken


def test_paired_difference_on_the_same_queries(runs):
    ev = runs / "eval"
    _write_preds(ev / "base_s0_normal.jsonl", [True, True, False, False], per_video=2)  # videos v0, v1
    _write_preds(ev / "base_s1_normal.jsonl", [True, True, True, False], per_video=2)
    _write_preds(ev / "vgcl_base_s0_normal.jsonl", [True, True, True, True], per_video=2)
    _write_preds(ev / "vgcl_base_s1_normal.jsonl", [True, True, True, False], per_video=2)
    files_a, files_b = results.seed_files(ev, "vgcl_base_s", "_normal"), results.seed_files(ev, "base_s", "_normal")
    out = results.paired_difference(files_a, files_b, "R1@0.5", n_boot=500)
    # per query, seed 0: 0, 0, +100, +100; seed 1: 0, 0, 0, 0 -> averaged 0, 0, 50, 50 -> mean +25
    assert out["diff"] == pytest.approx(25.0) and out["seeds"] == [0, 1] and out["n_queries"] == 4
    assert out["n_videos"] == 2
    # videos resampled whole: v0 adds 0 and v1 +50 per query, so a resample's mean is 0, 25 or 50
    assert out["ci_low"] == pytest.approx(0.0) and out["ci_high"] == pytest.approx(50.0)
    same = results.paired_difference(files_b, files_b, "mIoU", n_boot=200)
    assert (same["diff"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    assert results.paired_difference(files_a, files_b, n_boot=300) == results.paired_difference(files_a, files_b, n_boot=300)
    table = results.paired_table(runs)
    assert "| VGCL (full) - Base | +25.00 [" in table and "Base + CPC" not in table  # no CPC run in the fixture


def test_paired_difference_refuses_other_queries_or_no_common_seed(runs):
    ev = runs / "eval"
    _write_preds(ev / "vgcl_base_s0_normal.jsonl", [True] * 4)  # q0-q2 and x3 against base_s0's q0-q3
    other = ev / "vgcl_base_s0_normal.jsonl"
    other.write_text(other.read_text().replace('"q3"', '"x3"'))
    _write_preds(ev / "vgcl_base_s7_normal.jsonl", [True, True, True, True])
    base = results.seed_files(ev, "base_s", "_normal")
    with pytest.raises(ValueError, match="same queries"):
        results.paired_difference({0: ev / "vgcl_base_s0_normal.jsonl"}, base)
    with pytest.raises(ValueError, match="needs two"):  # every fixture query is in video "v"
        results.paired_difference({0: ev / "vgcl_base_s7_normal.jsonl"}, {0: ev / "base_s0_normal.jsonl"})
    with pytest.raises(ValueError, match="no seed in common"):
        results.paired_difference({7: ev / "vgcl_base_s7_normal.jsonl"}, base)
    assert "| VGCL (full) - Base | not comparable: the prediction files do not score the same queries" in \
        results.paired_table(runs)  # the table says so instead of failing the whole report


def test_paired_difference_of_a_first_n_run_uses_those_queries(runs):
    """A cascade run with --limit 2 is compared with the full run on its two queries only."""
    ev = runs / "eval"
    _write_preds(ev / "base_s0_large.jsonl", [True, True, False, False], per_video=1)  # 50 on q0-q3, 100 on q0-q1
    _write_preds(ev / "cascade_whisper_large_text_s0.jsonl", [False, True], per_video=1)  # q0, q1: 50
    out = results.paired_difference({0: ev / "base_s0_large.jsonl"}, {0: ev / "cascade_whisper_large_text_s0.jsonl"})
    assert (out["diff"], out["n_queries"], out["n_videos"]) == (50.0, 2, 2)
    flipped = results.paired_difference({0: ev / "cascade_whisper_large_text_s0.jsonl"}, {0: ev / "base_s0_large.jsonl"})
    assert flipped["diff"] == -50.0 and flipped["n_queries"] == 2


def test_paired_table_sides_may_name_their_suffix(runs):
    ev = runs / "eval"
    _write_preds(ev / "base_s0_large.jsonl", [True, False, False, False], per_video=2)  # 25
    _write_preds(ev / "cascade_whisper_large_text_s0.jsonl", [False, False, False, False], per_video=2)
    spec = (("front-end - cascade, large", ("base_s", "_large"), ("cascade_whisper_large_text_s", "")),)
    table = results.paired_table(runs, spec)
    assert "| front-end - cascade, large | +25.00 [+0.00, +50.00] |" in table and table.endswith("| 0 | 4 (2) |")
