"""SIL grounder and its ASP speech encoder: consistency, output contract, losses on known answers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from svg_core.engine.spans import decode_proposals
from svg_core.models import ASPConfig, SILConfig, build_model, build_vocab, config_from_dict, config_to_dict
from svg_core.models.asp import cif_integrate, info_nce
from svg_core.models.sil import map_features, proposal_mask
from svg_core.models.sil_losses import (
    avcl_samples,
    diversity_loss,
    js_mi_loss,
    mil_loss,
    mil_softmax_loss,
    negative_indices,
    negative_sets,
    top_r_mean,
)
from tests.model_batches import SENTENCES, make_batch, select

TINY_SIL = dict(n_video_frames=16, model_dim=32, map_dim=16, proposal_scales=(8, 4), video_conv_layers=1,
                speech_layers=1, top_r=5, avcl_samples=3, avcl_dim=16)
TINY_ASP = dict(model_dim=32, acoustic_layers=1, semantic_layers=1, mel_channels=8, wave_channels=16,
                nar_layers=1, word_layers=1, text_emb_dim=12, seq_negatives=4)


def tiny_sil(**overrides) -> SILConfig:
    return SILConfig.small(**{**TINY_SIL, **overrides})


def tiny_asp(**overrides) -> ASPConfig:
    return ASPConfig.small(**{**TINY_ASP, "vocab": build_vocab(SENTENCES), **overrides})


SIL_VARIANTS = {
    "scratch": tiny_sil(),  # the paper's Base: encoder from scratch, no CIF
    "asp_cif": tiny_sil(asp=tiny_asp(use_conciseness=True)),  # a pre-trained-style encoder with CIF
}


def batch16(lengths, seed=0, ids=None):
    batch = make_batch(lengths, n_video=16, seed=seed)
    batch["video_id"] = ids or [f"v_{i}" for i in range(len(lengths))]
    return batch


def asp_batch(lengths, seed=0):
    batch = make_batch(lengths, seed=seed)
    g = torch.Generator().manual_seed(seed)
    n = [max(0, 160 * (x - 1)) for x in lengths]
    width = max(n + [1])
    batch["wave"] = torch.randn(len(lengths), width, generator=g) * (torch.arange(width)[None] < torch.tensor(n)[:, None])
    batch["wave_lengths"] = torch.tensor(n)
    batch["sentence_emb"] = torch.randn(len(lengths), 12, generator=g)
    batch["negative_emb"] = torch.randn(4, 12, generator=g)
    batch["negative_same"] = torch.zeros(len(lengths), 4, dtype=torch.bool)
    return batch


# --- model: smoke, consistency, contract -----------------------------------------------------


@pytest.mark.parametrize("name", list(SIL_VARIANTS))
def test_padded_batch_equals_single_items(name):
    torch.manual_seed(0)
    model = build_model(SIL_VARIANTS[name]).eval()
    batch = batch16([180, 61, 9, 0], seed=1)
    with torch.no_grad():
        out = model(batch)
        for i in range(4):
            single = model(select(batch, i))
            torch.testing.assert_close(out["proposal_scores"][i], single["proposal_scores"][0], atol=2e-5, rtol=1e-4)
            torch.testing.assert_close(out["inside_prob"][i], single["inside_prob"][0], atol=2e-5, rtol=1e-4)
            n_q = int(single["query_mask"][0].sum())
            assert int(out["query_mask"][i].sum()) == n_q
            torch.testing.assert_close(out["cq_attention"][i, :, :n_q], single["cq_attention"][0, :, :n_q], atol=2e-5, rtol=1e-4)
            assert float(out["cq_attention"][i, :, n_q:].abs().sum()) == 0.0


@pytest.mark.parametrize("name", list(SIL_VARIANTS))
def test_output_contract_and_decoding(name):
    model = build_model(SIL_VARIANTS[name]).eval()
    batch = batch16([100, 30], seed=3)
    with torch.no_grad():
        out = model(batch)
    scores, cells = out["proposal_scores"], out["proposal_mask"]
    assert scores.shape == cells.shape == (2, 16, 16)
    assert bool((scores[~cells] == 0).all()) and bool(((scores >= 0) & (scores <= 1)).all())
    assert not bool(cells.tril(-1).any())  # end >= start
    for key in ("start_prob", "end_prob", "inside_prob", "start_logits", "end_logits", "inside_logits"):
        assert out[key].shape == (2, 16) and torch.isfinite(out[key]).all(), key
    torch.testing.assert_close(out["start_prob"].sum(1), torch.ones(2))
    torch.testing.assert_close(out["cq_attention"].sum(-1), torch.ones(2, 16), atol=1e-5, rtol=1e-5)
    spans = decode_proposals(scores, cells, top_k=5)
    for item, item_scores, item_cells in zip(spans, scores, cells):
        s, e, score = item[0]
        assert 0 <= s < e <= 16 and bool(item_cells[s, e - 1])
        assert score == pytest.approx(float(item_scores.max()))


@pytest.mark.parametrize("name", list(SIL_VARIANTS))
def test_zero_length_and_very_short_audio(name):
    model = build_model(SIL_VARIANTS[name]).eval()
    empty = batch16([0], seed=4)
    empty["audio"], empty["audio_mask"] = torch.zeros(1, 0, 128), torch.zeros(1, 0, dtype=torch.bool)
    with torch.no_grad():
        for batch in (empty, batch16([1, 2, 3], seed=4)):
            out = model(batch)
            assert torch.isfinite(out["proposal_scores"]).all() and (out["query_mask"].sum(1) >= 1).all()
    model.train()
    batch = batch16([0, 3, 50], seed=5)
    loss, logs = model.loss(model(batch), batch)
    loss.backward()
    assert torch.isfinite(loss) and all(math.isfinite(float(v)) for v in logs.values())


def test_garbage_in_audio_padding_changes_nothing():
    model = build_model(SIL_VARIANTS["asp_cif"]).eval()
    batch = batch16([120, 40], seed=2)
    noisy = dict(batch, audio=batch["audio"] + 50.0 * (~batch["audio_mask"]).unsqueeze(-1))
    with torch.no_grad():
        torch.testing.assert_close(model(batch)["proposal_scores"], model(noisy)["proposal_scores"])


def train_steps(model, batch, steps: int = 40) -> tuple[torch.Tensor, dict]:
    """Adam 3e-3 on one batch; the last step's loss and logs."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss, logs = model.loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss, logs


def test_mil_training_ranks_the_matched_pair_first():
    torch.manual_seed(0)
    model = build_model(tiny_sil(dropout=0.0)).train()
    _, logs = train_steps(model, batch16([60, 45, 30, 50], seed=6))
    assert float(logs["pos_score"]) > float(logs["neg_score"]) + 0.2, logs


def test_loss_never_reads_timestamps():
    model = build_model(tiny_sil()).train()
    batch = batch16([40, 30, 20], seed=7)
    for key in ("start_idx", "end_idx", "start_label", "end_label", "inside", "start_sec", "end_sec", "sentence"):
        batch.pop(key)
    loss, _ = model.loss(model(batch), batch)
    assert torch.isfinite(loss)


def test_ablation_switches_change_what_runs():
    batch = batch16([40, 30, 20], seed=8)
    _, logs = (m := build_model(tiny_sil(use_avcl=False)).train()).loss(m(batch), batch)
    assert "avcl_loss" not in logs and "mil_loss" in logs
    out = build_model(tiny_sil(use_speech_negative=False)).train()(batch)
    assert "neg_speech_logits" not in out and "neg_video_logits" in out
    full = build_model(tiny_sil()).train()(batch)
    assert "neg_speech_logits" in full
    for flag, part in (("use_ctc", "ctc_loss"), ("use_seq", "seq_loss"), ("use_word", "word_loss"),
                       ("use_conciseness", "nar_loss")):
        asp = build_model(tiny_asp(**{flag: False}))
        logs = asp.loss(asp(asp_batch([50, 30])), asp_batch([50, 30]))[1]
        assert part not in logs and "loss" in logs, flag
    asp = build_model(tiny_asp(use_robustness=True))
    assert asp.encoder.wave is not None and "rob_loss" in asp.loss(asp(asp_batch([50, 30])), asp_batch([50, 30]))[1]
    assert build_model(tiny_asp()).encoder.wave is None  # small preset: robustness off
    off = build_model(tiny_asp(use_ctc=False, use_seq=False, use_word=False, use_conciseness=False))
    with pytest.raises(ValueError, match="every ASP task is switched off"):
        off.loss(off(asp_batch([20])), asp_batch([20]))


def test_configs_round_trip_and_check():
    for cfg in (*SIL_VARIANTS.values(), tiny_asp(ctc_unit="char")):
        data = json.loads(json.dumps(config_to_dict(cfg)))
        assert config_from_dict(data) == cfg
    with pytest.raises(ValueError, match="build_sil_with_pretrained"):
        build_model(tiny_sil(pretrained_encoder="runs/x/encoder"))
    with pytest.raises(ValueError, match="no proposal"):
        SILConfig(n_video_frames=4, proposal_scales=())
    paper = SILConfig.paper()
    assert (paper.n_video_frames, paper.model_dim, paper.top_r, paper.avcl_samples, paper.avcl_weight) == (64, 256, 20, 12, 0.1)
    asp = ASPConfig.paper()
    assert (asp.model_dim, asp.acoustic_layers, asp.semantic_layers) == (256, 4, 4)
    assert asp.use_robustness and asp.word_mask_ratio == 0.5


# --- ASP encoder --------------------------------------------------------------------------------


def test_asp_losses_finite_with_both_branches_and_short_items():
    torch.manual_seed(0)
    model = build_model(tiny_asp(use_robustness=True, ctc_unit="char")).train()
    batch = asp_batch([150, 40, 1], seed=9)
    loss, logs = model.loss(model(batch), batch)
    loss.backward()
    assert {"ctc_loss", "quantity_loss", "nar_loss", "seq_loss", "word_loss", "rob_loss"} <= set(logs)
    assert all(math.isfinite(float(v)) for v in logs.values())
    # training scales the CIF weights to the caption length: one segment per word
    mel = model(batch)["branches"]["mel"]
    n_words = [len(s.split()) for s in batch["sentence"]]
    assert mel["segment_mask"].sum(1).tolist() == n_words


def test_asp_encoder_batch_equals_single_items():
    encoder = build_model(tiny_asp()).encoder.eval()
    batch = make_batch([150, 33, 2], seed=10)
    with torch.no_grad():
        out = encoder.encode(batch["audio"], batch["audio_lengths"])
        for i in range(3):
            one = encoder.encode(select(batch, i)["audio"], batch["audio_lengths"][i:i + 1])
            k = int(one["segment_mask"][0].sum())
            assert int(out["segment_mask"][i].sum()) == k
            torch.testing.assert_close(out["semantic"][i, :k], one["semantic"][0, :k], atol=2e-5, rtol=1e-4)


# --- losses on hand-made inputs -----------------------------------------------------------------


def test_cif_length_loss_is_zero_at_the_right_length_and_segments_are_exact():
    h = torch.arange(6, dtype=torch.float32).view(1, 6, 1)
    alpha = torch.full((1, 6), 0.5)
    mask = torch.ones(1, 6, dtype=torch.bool)
    out = cif_integrate(h, alpha, mask)
    assert float((out["quantity"] - 3.0).abs()) == 0.0  # |n_hat - n| = 0 for 3 words
    assert out["segment_lengths"].tolist() == [3]
    torch.testing.assert_close(out["segments"][0, :, 0], torch.tensor([0.5, 2.5, 4.5]))  # means of step pairs
    # a threshold crossing mid-step splits the weight (l_j / r_j of Eq. 12)
    split = cif_integrate(h[:, :3], torch.tensor([[0.6, 0.6, 0.8]]), mask[:, :3])
    torch.testing.assert_close(split["assign"][0], torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.2, 0.8]]))
    scaled = cif_integrate(h, alpha, mask, target_lengths=torch.tensor([2.0]))
    assert scaled["segment_lengths"].tolist() == [2] and float(scaled["quantity"]) == 3.0  # n_hat before scaling
    silent = cif_integrate(h, torch.zeros(1, 6), mask)
    assert silent["segment_lengths"].tolist() == [1] and float(silent["segments"][0, 0, 0]) == pytest.approx(2.5)


def test_mil_loss_known_answers():
    one, zero, valid = torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([True])
    assert float(mil_loss(one, zero, zero, valid, valid)) == pytest.approx(0.0, abs=1e-6)
    half = torch.tensor([0.5])
    assert float(mil_loss(half, half, half, valid, valid)) == pytest.approx(4 * math.log(2), rel=1e-5)
    ranked = mil_loss(torch.tensor([0.9]), torch.tensor([0.2]), torch.tensor([0.3]), valid, valid)
    swapped = mil_loss(torch.tensor([0.2]), torch.tensor([0.9]), torch.tensor([0.3]), valid, valid)
    assert float(ranked) < float(swapped)
    assert float(mil_loss(half, one, None, torch.tensor([False]), None)) == pytest.approx(math.log(2), rel=1e-5)


def test_top_r_mean_and_diversity_known_answers():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.7]])
    mask = torch.tensor([[True, True, False, True]])
    assert float(top_r_mean(scores, mask, 2)) == pytest.approx(0.8)
    assert float(diversity_loss(torch.full((1, 5), 0.3), torch.ones(1, 5, dtype=torch.bool), 5)) == pytest.approx(math.log(5))
    spread = diversity_loss(torch.tensor([[5.0, 0.0, 0.0, 0.0, 0.0]]), torch.ones(1, 5, dtype=torch.bool), 5)
    assert float(spread) < math.log(5) - 0.5


def test_js_estimator_sign():
    pos = neg = torch.ones(1, 4, dtype=torch.bool)
    zero = torch.zeros(1, 4)
    assert float(js_mi_loss(zero, pos, zero, neg)) == pytest.approx(0.0, abs=1e-6)
    good = js_mi_loss(torch.full((1, 4), 8.0), pos, torch.full((1, 4), -8.0), neg)
    bad = js_mi_loss(torch.full((1, 4), -8.0), pos, torch.full((1, 4), 8.0), neg)
    assert float(good) == pytest.approx(-2 * math.log(2), abs=1e-3) and float(bad) > 10.0


def test_info_nce_prefers_the_matched_caption():
    text = torch.eye(3)
    assert float(info_nce(text * 5, text, None, None, 0.1)) < 1e-3
    assert float(info_nce(text.roll(1, 0), text, None, None, 0.1)) > 5.0


def test_avcl_samples_positives_inside_negatives_disjoint():
    scores = torch.tensor([[0.1, 0.9, 0.8, 0.2, 0.7, 0.05, 0.3, 0.6]])
    inside = torch.tensor([[False, True, True, True, True, False, False, False]])
    pos, neg = avcl_samples(scores, inside, torch.ones_like(inside), 2)
    assert pos[0].nonzero().flatten().tolist() == [1, 2]  # the two best inside
    assert neg[0].nonzero().flatten().tolist() == [0, 5]  # the two lowest outside
    pos, neg = avcl_samples(scores, torch.ones_like(inside), torch.ones_like(inside), 3)  # all inside
    assert not bool((pos & neg).any()) and int(pos.sum()) == int(neg.sum()) == 3


def test_proposal_map_helpers():
    assert int(proposal_mask(64, (16, 8, 8)).sum()) == 1104  # 2D-TAN's 64-clip sparse map
    assert bool(proposal_mask(8, (8,)).equal(torch.ones(8, 8, dtype=torch.bool).triu()))
    x = torch.tensor([[[1.0], [3.0], [2.0]]])
    cells = map_features(x)[0, 0]
    assert cells.tolist() == [[1.0, 3.0, 3.0], [0.0, 3.0, 3.0], [0.0, 0.0, 2.0]]
    index, valid = negative_indices(["a", "a", "b"], +1)
    assert index.tolist() == [2, 2, 0] and valid.all()
    assert negative_indices(["a", "a"], +1)[1].tolist() == [False, False]


def test_paper_presets_construct_and_run_one_item():
    model = build_model(SILConfig.paper(asp=ASPConfig.paper())).eval()
    n_params = sum(p.numel() for p in model.parameters())
    assert 5e6 < n_params < 60e6, n_params
    with torch.no_grad():
        out = model(batch16([300], seed=11) | {"video": torch.randn(1, 64, 500), "video_mask": torch.ones(1, 64, dtype=torch.bool)})
    assert out["proposal_scores"].shape == (1, 64, 64) and int(out["proposal_mask"].sum()) == 1104
    asp = build_model(ASPConfig.paper(vocab=build_vocab(SENTENCES), text_emb_dim=12, seq_negatives=4)).train()
    batch = asp_batch([120, 60], seed=12)
    loss, logs = asp.loss(asp(batch), batch)
    assert torch.isfinite(loss) and "rob_loss" in logs


def test_front_end_variant_reads_encoder_features():
    """audio_frontend=whisper_base: SpeechAdapter + BiGRU over [B, T_e, 512] features, one segment per
    step (assign = identity); batch = single items, the map's contract, a finite loss."""
    from svg_core.models.sil import FrontendSpeechQuery

    torch.manual_seed(0)
    cfg = tiny_sil(audio_frontend="whisper_base", adapter_dim=24)
    model = build_model(cfg).eval()
    assert isinstance(model.speech, FrontendSpeechQuery)
    batch = make_batch([70, 23, 1], n_video=16, n_mels=512, seed=6)
    batch["video_id"] = ["v_0", "v_1", "v_2"]
    with torch.no_grad():
        out = model(batch)
        assert out["proposal_scores"].shape == (3, 16, 16) and out["query_mask"].sum(1).tolist() == [70, 23, 1]
        torch.testing.assert_close(out["cq_attention"].sum(-1), torch.ones(3, 16), atol=1e-5, rtol=1e-5)
        for i in range(3):
            single = model(select(batch, i))
            torch.testing.assert_close(out["proposal_scores"][i], single["proposal_scores"][0], atol=2e-5, rtol=1e-4)
    model.train()
    loss, logs = model.loss(model(batch), batch)
    loss.backward()
    assert torch.isfinite(loss) and model.speech.adapter.proj.weight.grad is not None
    assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="replaces the ASP speech encoder"):
        tiny_sil(audio_frontend="whisper_base", pretrained_encoder="runs/sil_asp/encoder")


def test_cross_gate_switch_and_legacy_configs():
    """cross_gate adds W_a, W_b (d x d + bias each), map_fusion adds W_s; both off by default (the
    paper), so configs written before the fields load as before."""
    batch = batch16([40, 30, 20], seed=9)
    gated, plain = build_model(tiny_sil(cross_gate=True)).train(), build_model(tiny_sil()).train()
    assert plain.gate_video is None and gated.gate_video is not None
    d = gated.cfg.model_dim
    assert sum(p.numel() for p in gated.parameters()) - sum(p.numel() for p in plain.parameters()) == 2 * (d * d + d)
    for model in (gated, plain):
        loss, _ = model.loss(model(batch), batch)
        assert torch.isfinite(loss)
    data = json.loads(json.dumps(config_to_dict(tiny_sil(cross_gate=True, map_fusion="hadamard"))))
    data.pop("cross_gate")
    data.pop("map_fusion")
    old = config_from_dict(data)
    assert old.cross_gate is False and old.map_fusion == "none"
    fused, bare = build_model(tiny_sil(map_fusion="hadamard")), build_model(tiny_sil())
    assert bare.scorer.speech_proj is None and fused.scorer.speech_proj is not None
    # 2D-TAN fusion: the map depends on the pooled speech through the product; one pair, two speeches
    fused.eval()
    with torch.no_grad():
        other = {**batch, "audio": batch["audio"].flip(0), "audio_lengths": batch["audio_lengths"].flip(0)}
        assert not torch.allclose(fused(batch)["proposal_logits"], fused(other)["proposal_logits"], atol=1e-5)
    # the gate sits on the fusion's path: closing it (W_a bias -> -inf) changes the proposal map
    gated.eval()
    with torch.no_grad():
        before = gated(batch)["proposal_logits"]
        gated.gate_video.weight.zero_()
        gated.gate_video.bias.fill_(-1e4)
        assert not torch.allclose(before, gated(batch)["proposal_logits"], atol=1e-4)


# --- several negatives per pair (mil_negatives, mil_form; not in the paper) --------------------


def test_negative_sets_take_one_item_per_other_video():
    index, valid = negative_sets(["a", "a", "b", "c", "b"], +1, 2)
    assert index.tolist()[0] == [2, 3] and valid[0].all()  # walks on, skips a's second item
    assert index.tolist()[2] == [3, 0] and valid[2].all()  # b's own other item (4) is never a negative
    assert index.tolist()[3] == [4, 0] and valid[3].all()  # c: b (4), then a (0); the second b (2) is skipped
    index, valid = negative_sets(["a", "b", "b"], -1, 3)
    assert valid.tolist() == [[True, False, False], [True, False, False], [True, False, False]]
    assert index[valid].tolist() == [2, 0, 0] and index[~valid].tolist() == [0, 0, 1, 1, 2, 2]
    one, ok = negative_indices(["a", "a", "b"], -1)
    assert one.tolist() == [2, 2, 1] and ok.all()


def test_mil_losses_with_several_negatives_known_answers():
    pos, valid = torch.tensor([0.6]), torch.tensor([[True, True, False]])
    neg = torch.tensor([[0.2, 0.4, 0.99]])  # the invalid third negative must be ignored
    expected = -math.log(0.6) - (math.log(0.8) + math.log(0.6)) / 2
    assert float(mil_loss(pos, neg, None, valid, None)) == pytest.approx(expected, rel=1e-5)
    one = mil_loss(pos, neg[:, :1], neg[:, 1:2], valid[:, :1], valid[:, 1:2])
    assert float(one) == pytest.approx(float(mil_loss(pos, neg[:, 0], neg[:, 1], valid[:, 0], valid[:, 1])), rel=1e-6)
    flat = torch.full((2, 3), 0.5)
    every = torch.ones(2, 3, dtype=torch.bool)
    assert float(mil_softmax_loss(torch.full((2,), 0.5), [flat, flat], [every, every], 0.1)) == pytest.approx(2 * math.log(4), rel=1e-5)
    skip = mil_softmax_loss(pos, [neg], [valid], 0.1)
    assert float(skip) == pytest.approx(math.log(1 + math.exp(-4.0) + math.exp(-2.0)), rel=1e-5)
    better = mil_softmax_loss(torch.tensor([0.9]), [neg], [valid], 0.1)
    assert float(better) < float(skip)


@pytest.mark.parametrize("form", ["bce", "softmax"])
def test_several_negatives_shapes_and_training(form):
    torch.manual_seed(0)
    cfg = tiny_sil(dropout=0.0, mil_negatives=3, mil_form=form)
    model = build_model(cfg).train()
    batch = batch16([60, 45, 30, 50], seed=6, ids=["v_0", "v_1", "v_2", "v_0"])
    out = model(batch)
    assert out["neg_video_logits"].shape == (4, 3, 16, 16) and out["neg_speech_logits"].shape == (4, 3, 16, 16)
    assert out["neg_video_valid"].tolist() == [[True, True, False], [True, True, False], [True, True, False],
                                               [True, True, False]]
    loss, logs = train_steps(model, batch)
    assert torch.isfinite(loss) and float(logs["pos_score"]) > float(logs["neg_score"]) + 0.2, logs
    assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="mil_negatives"):
        tiny_sil(mil_negatives=0)


def test_one_negative_keeps_the_papers_loss():
    """mil_negatives=1, mil_form=bce: the loss equals Eq. 10 on the nearest negatives."""
    torch.manual_seed(0)
    model = build_model(tiny_sil(dropout=0.0, use_avcl=False, div_weight=0.0)).train()
    batch = batch16([40, 30, 20], seed=9)
    out = model(batch)
    loss, _ = model.loss(out, batch)
    cells = out["proposal_mask"].reshape(3, -1)
    f = lambda x, c: top_r_mean(torch.sigmoid(x.reshape(3, -1)), c.reshape(3, -1), 5)  # noqa: E731
    jv, _ = negative_indices(batch["video_id"], +1)
    expected = mil_loss(f(out["proposal_logits"], cells), f(out["neg_video_logits"][:, 0], out["proposal_mask"][jv]),
                        f(out["neg_speech_logits"][:, 0], cells), torch.ones(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool))
    torch.testing.assert_close(loss, expected)


def test_diversity_on_logits_peaks_the_map_where_scores_cannot():
    """div_form=logits: L_div reads the top-R logits, so training lowers it well below log R; on
    sigmoid scores (the paper) it cannot fall below the entropy of one 1 among R - 1 zeros."""
    r = TINY_SIL["top_r"]
    floor = diversity_loss(torch.tensor([[1.0] + [0.0] * (r - 1)]), torch.ones(1, r, dtype=torch.bool), r)
    assert float(floor) > math.log(r) - 0.2  # the paper's form: nearly flat even at its best
    batch = batch16([60, 45, 30, 50], seed=6)
    logs = {}
    for form in ("scores", "logits"):
        torch.manual_seed(0)
        model = build_model(tiny_sil(dropout=0.0, use_avcl=False, div_form=form)).train()
        _, logs[form] = train_steps(model, batch)
    assert float(logs["scores"]["div_loss"]) >= float(floor) - 1e-4
    assert float(logs["logits"]["div_loss"]) < math.log(r) - 0.5, logs["logits"]
    assert config_from_dict(config_to_dict(tiny_sil(div_form="logits"))).div_form == "logits"


def test_product_fusion_keeps_the_match_local():
    """clip_fusion=product, video_attention=False: a clip's map input depends on that clip and its
    conv neighbourhood only, so changing the far end of the video leaves a short early proposal's
    score alone; the BiGRU (paper) carries the change to every clip."""
    batch = batch16([40, 30], seed=11)
    far = dict(batch)
    far["video"] = batch["video"].clone()
    far["video"][:, -4:] += 3.0
    changed = {}
    for fusion in ("bigru", "product"):
        torch.manual_seed(0)
        model = build_model(tiny_sil(dropout=0.0, clip_fusion=fusion, video_attention=False, video_conv_layers=1,
                                     video_kernel=3)).eval()
        with torch.no_grad():
            a, b = model(batch)["proposal_logits"], model(far)["proposal_logits"]
        changed[fusion] = float((a[:, 0, 1] - b[:, 0, 1]).abs().max())  # the proposal [clip 0, clip 1]
    assert changed["product"] == pytest.approx(0.0, abs=1e-6) and changed["bigru"] > 1e-4, changed
    cfg = tiny_sil(clip_fusion="product", video_attention=False)
    assert config_from_dict(config_to_dict(cfg)) == cfg
    model = build_model(cfg)
    assert model.video_encoder.attn is None and model.fusion is None
