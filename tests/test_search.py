"""svg_core.search: window index (exact = brute force, IVF recall), video ranking, the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svg_core.search import IndexSettings, WindowIndex, make_faiss_index, rank_videos, recall_at_k, window_spans
from svg_core.search.__main__ import main
from svg_core.search.bench import run_bench
from svg_core.search.index import search_windows

TINY_SETS = dict(stem_dim=16, stage_dims=(16, 32), blocks_per_stage=(1, 1), kernel=5, embed_dim=32,
                 n_video_frames=16, window_clips=4, stride_clips=2)


def test_window_spans_cover_the_video():
    assert window_spans(16, 4, 2)[-1] == (12, 16) and len(window_spans(16, 4, 2)) == 7
    assert window_spans(10, 4, 4) == [(0, 4), (4, 8), (6, 10)]  # last window moved back to the end
    assert window_spans(3, 8, 4) == [(0, 3)]
    with pytest.raises(ValueError):
        window_spans(10, 0, 1)


def test_exact_search_equals_brute_force_numpy():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 24)).astype(np.float32)
    queries = rng.standard_normal((5, 24)).astype(np.float32)
    scores, ids = search_windows(make_faiss_index(vectors, "flat"), queries, k=20)
    brute = queries @ vectors.T
    want = np.argsort(-brute, axis=1, kind="stable")[:, :20]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, want, 1), rtol=1e-5, atol=1e-5)


def test_ivf_recall_against_exact():
    assert recall_at_k(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 1, 9], [-1, -1, -1]]), k=3) == pytest.approx(1 / 3)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((10, 16)).astype(np.float32)
    _, exact = search_windows(make_faiss_index(vectors, "flat"), queries, 10)
    _, full_probe = search_windows(make_faiss_index(vectors, "ivf", nlist=8, nprobe=8), queries, 10)
    assert recall_at_k(exact, full_probe, 10) == 1.0  # visiting every cell is exact
    _, one_probe = search_windows(make_faiss_index(vectors, "ivf", nlist=8, nprobe=1), queries, 10)
    assert 0.0 < recall_at_k(exact, one_probe, 10) < 1.0


def test_videos_ranked_by_best_window():
    ranked = rank_videos(np.array([0.9, 0.8, 0.7, 0.95]), np.array([0, 1, 2, 3]), ["a", "b", "a", "c"])
    assert [(v, round(s, 2), w) for v, s, w in ranked] == [("c", 0.95, 3), ("a", 0.9, 0), ("b", 0.8, 1)]


def test_index_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((6, 8)).astype(np.float32)
    windows = [{"video_id": f"v{i // 3}", "start_clip": i % 3, "end_clip": i % 3 + 1,
                "start_sec": float(i % 3), "end_sec": float(i % 3 + 1)} for i in range(6)]
    index = WindowIndex.build(vectors, windows, IndexSettings("ivf", nlist=2, nprobe=2))
    loaded = WindowIndex.load(index.save(tmp_path / "ix"))
    query = vectors[4]
    assert loaded.search_videos(query)[0]["video_id"] == "v1"
    assert loaded.search_videos(query) == index.search_videos(query)


def test_bench_rows_have_both_kinds():
    rows = run_bench(sizes=(200,), dim=8, n_queries=5, nprobes=(1, 1000))
    assert [r["windows"] for r in rows] == [200, 200] and rows[0]["exact_ms"] > 0 and 0 <= rows[0]["ivf_recall@10"] <= 1
    assert rows[1]["nprobe"] == rows[1]["nlist"] and rows[1]["ivf_recall@10"] == 1.0  # every cell visited: exact


@pytest.fixture
def tiny_avlnet_checkpoint(tmp_path):
    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.models import AVLnetConfig
    from svg_core.search import Embedder

    embedder = Embedder.untrained(AVLnetConfig.small(**TINY_SETS), seed=0)
    return save_checkpoint(tmp_path / "avlnet", embedder.model, embedder.cfg)


def test_evaluate_prints_metrics_on_tiny_fixture(tiny_dataset_dir, tiny_avlnet_checkpoint, capsys, tmp_path):
    out_json = tmp_path / "summary.json"
    code = main(["evaluate", "--data", str(tiny_dataset_dir), "--checkpoint", str(tiny_avlnet_checkpoint),
                 "--asr-engine", "oracle", "--transcripts", "none", "--limit", "3", "--spans-per-video", "3",
                 "--no-progress", "--json", str(out_json)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "video retrieval: R@1" in printed and "median rank" in printed
    for system in ("avlnet+grounder", "grounder only", "asr+text"):
        assert f"VCMR {system}" in printed
    summary = json.loads(out_json.read_text())
    assert summary["n_queries"] == 3 and set(summary["video"]) == {"R@1", "R@5", "R@10", "MedR", "n"}
    assert "R@100,IoU=0.7" in summary["vcmr"]["grounder only"]
    for system in ("grounder only", "asr+text"):  # the baselines rank whole videos too
        assert f"video retrieval, {system}" in printed
        assert summary["video_baselines"][system]["n"] == 3
        assert 1 <= summary["video_baselines"][system]["MedR"] <= summary["n_videos"]


def test_evaluate_untrained_without_vcmr(tiny_dataset_dir, capsys):
    assert main(["evaluate", "--data", str(tiny_dataset_dir), "--no-vcmr", "--no-progress"]) == 0
    assert "untrained" in capsys.readouterr().out


def test_index_then_query_cli(tiny_dataset_dir, tiny_avlnet_checkpoint, tmp_path, capsys):
    out = tmp_path / "ix"
    assert main(["index", "--data", str(tiny_dataset_dir), "--checkpoint", str(tiny_avlnet_checkpoint),
                 "--out", str(out), "--no-progress"]) == 0
    assert "indexed" in capsys.readouterr().out
    assert main(["index", "--data", str(tiny_dataset_dir), "--checkpoint", str(tiny_avlnet_checkpoint),
                 "--out", str(tmp_path / "ivf"), "--kind", "ivf", "--nlist", "4", "--nprobe", "1", "--no-progress"]) == 0
    assert "IVF recall@10 vs exact" in capsys.readouterr().out
    notes = json.loads((tmp_path / "ivf" / "index.json").read_text())["notes"]
    assert 0.0 <= notes["ivf_recall@10_vs_exact"] <= 1.0
    wav = next((tiny_dataset_dir / "audio").glob("*.wav"))
    assert main(["query", "--index", str(out), "--wav", str(wav), "--json", "--top", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


@pytest.mark.parametrize("argv", [
    ["evaluate", "--data", "/no/such/folder"],
    ["evaluate", "--data", "{data}", "--limit", "0"],
    ["query", "--index", "/no/such/index", "--wav", "x.wav"],
    ["bench", "--sizes", "ten"],
    ["bench", "--nprobe", "0"],
    ["index", "--data", "{data}", "--checkpoint", "checkpoints/base", "--out", "{tmp}/ix"],  # not an AVLnet
])
def test_bad_input_is_one_error_line_exit_2(argv, tiny_dataset_dir, tmp_path, capsys):
    argv = [a.format(data=tiny_dataset_dir, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_video_rank_counts_ties_against_the_truth():
    from svg_core.search.evaluate import video_rank

    assert video_rank({"a": 0.2, "b": 0.9, "c": 0.1}, "b", 3) == 1
    assert video_rank({"a": 0.9, "b": 0.9, "c": 0.1}, "b", 3) == 2  # a tie: pessimistic
    assert video_rank({"a": 0.9, "c": 0.1}, "b", 3) == 3  # never scored: last
    assert video_rank({}, "b", 5) == 5  # no spans at all (a transcript with no known word): last, not first
