"""Listening diagnostics on hand-built cases whose answer is known (svg_core.engine.listening)."""

from __future__ import annotations

import pytest

from svg_core.engine.listening import control_drop, other_video_donors, within_video_discrimination

MOMENTS = [(0.0, 10.0), (20.0, 30.0), (40.0, 50.0)]  # pairwise IoU 0: every ordered pair counts


def records(predictions):
    return [{"query_id": f"q{i}", "video_id": "v1", "duration_sec": 60.0, "gt_window_sec": list(gt),
             "pred_windows_sec": [[*pred, 1.0]]} for i, (gt, pred) in enumerate(zip(MOMENTS, predictions))]


def test_oracle_scores_100_and_counts_ordered_pairs():
    got = within_video_discrimination(records(MOMENTS))
    assert got["discrimination_pct"] == 100.0 and got["n_pairs"] == 6  # 3 queries -> 3 * 2 ordered pairs


def test_query_blind_predictor_scores_50():
    # The same answer whatever the query: on moment 0 for every query.
    assert within_video_discrimination(records([MOMENTS[0]] * 3))["discrimination_pct"] == 50.0


def test_swapped_predictions_score_0_and_overlapping_moments_are_left_out():
    swapped = records([MOMENTS[1], MOMENTS[0], MOMENTS[2]])
    swapped = swapped[:2]
    assert within_video_discrimination(swapped)["discrimination_pct"] == 0.0
    same = records([MOMENTS[0], MOMENTS[0]])
    same[1]["gt_window_sec"] = [1.0, 10.0]  # IoU 0.9 with query 0: not a pair
    assert within_video_discrimination(same)["n_pairs"] == 0


def test_pairs_only_within_one_video():
    recs = records(MOMENTS)
    for i, rec in enumerate(recs):
        rec["video_id"] = f"v{i}"
    assert within_video_discrimination(recs)["n_pairs"] == 0


def test_other_video_donor_is_always_from_another_video():
    videos = ["a", "a", "b", "b", "c", "c", "c"]
    donors = other_video_donors(videos, seed=0)
    assert sorted(donors) == list(range(len(videos)))  # a permutation
    assert all(videos[d] != videos[i] for i, d in enumerate(donors))
    assert donors == other_video_donors(videos, seed=0)  # seeded


def test_control_drop_is_real_minus_control():
    real = {"mIoU": 50.0, "R1@0.5": 60.0}
    got = control_drop(real, {"silent": {"mIoU": 30.0, "R1@0.5": 20.0}})
    assert got["silent"]["drop_mIoU"] == pytest.approx(20.0) and got["silent"]["drop_R1@0.5"] == pytest.approx(40.0)
    assert got["real"]["drop_mIoU"] == 0.0


def test_controls_feed_the_right_inputs(tmp_path):
    import numpy as np

    from svg_core.audio.frontend import log_mel
    from svg_core.data.dataset import DatasetLayout, GroundingDataset
    from svg_core.engine.listening import ControlDataset
    from tests.fixtures_build import make_tiny_dataset

    layout = DatasetLayout.from_dir(make_tiny_dataset(tmp_path / "d", n_videos=3, queries_per_video=2))
    base = GroundingDataset(layout, "test", n_video_frames=16, noise=None, seed=0)
    silent, other = ControlDataset(base, "silent"), ControlDataset(base, "other_video", seed=1)
    for i in range(len(base)):
        real = base[i]
        n = len(base.clean_wave(real["record"]))
        want = np.asarray(log_mel(np.zeros(n, np.float32)))
        assert np.array_equal(np.asarray(silent[i]["audio"]), want)  # the log-Mel of zeros, same length
        donor = base[other.donors[i]]
        assert donor["record"].video_id != real["record"].video_id
        assert np.array_equal(np.asarray(other[i]["audio"]), np.asarray(donor["audio"]))
        assert np.array_equal(np.asarray(other[i]["video"]), np.asarray(real["video"]))
    text = GroundingDataset(layout, "test", n_video_frames=16, noise=None, seed=0, with_audio=False)
    shuffled = ControlDataset(text, "shuffled_words", seed=0)
    for i in range(len(text)):
        assert sorted(shuffled[i]["record"].sentence.split()) == sorted(text[i]["record"].sentence.split())


def _tiny_grounder(kind: str):
    import torch

    from svg_core.engine.predictor import Grounder
    from svg_core.models import build_model
    from tests.conftest import tiny_configs

    torch.manual_seed(0)
    cfg = tiny_configs()[kind]
    return Grounder(build_model(cfg), cfg)


def test_silent_query_prediction_is_the_grounder_on_zeros_of_the_same_length():
    import numpy as np

    from svg_core.engine.listening import silent_query_prediction

    grounder = _tiny_grounder("base")
    feats = np.random.default_rng(0).random((30, 500), dtype=np.float32)
    got = silent_query_prediction(grounder, feats, 30.0, 8_000)
    want = grounder.localize(feats, 30.0, audio=np.zeros(8_000, np.float32))
    assert (got["start_sec"], got["end_sec"]) == (want["start_sec"], want["end_sec"])
    assert np.array_equal(got["inside_prob"], want["inside_prob"])
    assert got["attention"].shape[1] == 8_000 // 160 + 1  # one column per 10 ms frame of the silent query
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="positive whole number"):
            silent_query_prediction(grounder, feats, 30.0, bad)


def test_shuffled_words_prediction_reorders_and_grounds():
    import numpy as np

    from svg_core.engine.listening import shuffled_words_prediction

    grounder = _tiny_grounder("text")
    feats = np.random.default_rng(1).random((20, 500), dtype=np.float32)
    sentence = "the dog runs across the yard"
    shuffled, pred = shuffled_words_prediction(grounder, feats, 20.0, sentence, seed=3)
    assert shuffled != sentence and sorted(shuffled.split()) == sorted(sentence.split())
    assert 0.0 <= pred["start_sec"] <= pred["end_sec"] <= 20.0
    assert shuffled_words_prediction(grounder, feats, 20.0, "dog dog") is None  # nothing to reorder


def test_query_effect_verdicts():
    from svg_core.engine.listening import query_effect

    def pred(s, e):
        return {"start_sec": s, "end_sec": e}

    same = query_effect(pred(10, 20), pred(10, 20))
    assert same == {"iou": 1.0, "shift_sec": 0.0, "verdict": "does not listen"}
    near = query_effect(pred(10, 20), pred(11, 21))  # IoU 9/11
    assert near["verdict"] == "barely listens" and near["shift_sec"] == pytest.approx(1.0)
    far = query_effect(pred(0, 10), pred(30, 50))
    assert far["iou"] == 0.0 and far["shift_sec"] == pytest.approx(35.0) and far["verdict"] == "listens"


def test_discrimination_by_groups_splits_the_same_pairs(tmp_path, capsys):
    from svg_core.engine.listening import discrimination_by
    from svg_core.reporting import discrimination as cli

    # queries 0 and 2 right; query 1 predicted on moment 0: lost against 0, a tie against 2
    recs = records([MOMENTS[0], MOMENTS[0], MOMENTS[2]])
    table = discrimination_by(recs, lambda ri, rj: ["all", "q1" if ri["query_id"] == "q1" else "other"])
    assert table["all"]["n_pairs"] == 6 and table["all"]["discrimination_pct"] == within_video_discrimination(recs)["discrimination_pct"]
    assert table["q1"] == {"discrimination_pct": 25.0, "n_pairs": 2}
    assert table["other"] == {"discrimination_pct": 100.0, "n_pairs": 4}
    # the command: groups from a scenes.json
    scenes = [{"video_id": "v1", "events": [{"action": a, "obj": k} for k, a in enumerate(("spin", "grow", "spin"))],
               "queries": [{"wav_name": f"q{i}", "event": i, "needs": ["action"] if i == 1 else []} for i in range(3)]}]
    (tmp_path / "scenes.json").write_text(__import__("json").dumps(scenes))
    pred = tmp_path / "p.jsonl"
    pred.write_text("\n".join(__import__("json").dumps(r) for r in recs) + "\n")
    assert cli.main([str(pred), "--scenes", str(tmp_path / "scenes.json")]) == 0
    out = capsys.readouterr().out
    assert "action: grow" in out and "needs: none" in out
    grow = next(line for line in out.splitlines() if line.startswith("action: grow"))
    assert grow.split()[-2:] == ["25.0", "2"]
    three = next(line for line in out.splitlines() if line.startswith("video events: 3"))
    assert three.split()[-2:] == [f"{within_video_discrimination(recs)['discrimination_pct']:.1f}", "6"]
    assert cli.main([str(pred), "--scenes", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.strip().startswith("error:")


def _videos(n_videos: int, right: int):
    """n_videos copies of the 3-query video; in the first ``right`` every query is predicted on its
    own moment (100 %), in the rest every query on moment 0 (query-blind: 50 %)."""
    out = []
    for v in range(n_videos):
        recs = records(MOMENTS if v < right else [MOMENTS[0]] * 3)
        for rec in recs:
            rec["video_id"], rec["query_id"] = f"v{v}", f"v{v}_{rec['query_id']}"
        out += recs
    return out


def test_discrimination_interval_is_clustered_by_video_and_pairs_a_difference(tmp_path, capsys):
    from svg_core.errors import UserInputError
    from svg_core.reporting import discrimination as cli

    mixed = _videos(10, right=6)  # 6 videos at 100 %, 4 at 50 %: 80 % overall
    got = cli.discrimination_interval(mixed)
    assert got["pct"] == pytest.approx(within_video_discrimination(mixed)["discrimination_pct"]) == pytest.approx(80.0)
    assert 50.0 <= got["ci_low"] < 80.0 < got["ci_high"] <= 100.0 and got["n_videos"] == 10 and got["n_pairs"] == 60
    oracle = _videos(10, right=10)
    top = cli.discrimination_interval(oracle)
    assert (top["pct"], top["ci_low"], top["ci_high"]) == (100.0, 100.0, 100.0)
    # A - B on the same pairs: the oracle gains 20 points over the mixed run, and nothing over itself
    diff = cli.discrimination_interval(oracle, against=mixed)
    assert diff["pct"] == pytest.approx(20.0) and 0.0 <= diff["ci_low"] < 20.0 < diff["ci_high"] <= 50.0
    assert cli.discrimination_interval(mixed, against=mixed)["ci_low"] == 0.0
    with pytest.raises(UserInputError, match="same queries"):
        cli.discrimination_interval(mixed, against=mixed[:-1])
    with pytest.raises(UserInputError, match="two"):
        cli.discrimination_interval(records(MOMENTS))
    # the command
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path, recs in ((a, oracle), (b, mixed)):
        path.write_text("\n".join(__import__("json").dumps(r) for r in recs) + "\n")
    assert cli.main([str(a), "--interval", "--against", str(b)]) == 0
    assert capsys.readouterr().out.startswith("discrimination a.jsonl - b.jsonl: +20.00 % 95% [")
    assert cli.main([str(a)]) == 2 and capsys.readouterr().err.startswith("error: give --scenes")
