"""FSAN grounder: prefix-sum segment scores vs brute force, losses on known answers, consistency."""

from __future__ import annotations

import json
import math

import pytest
import torch

from svg_core.models import FSANConfig, build_model, build_vocab, config_from_dict, config_to_dict
from svg_core.models.fsan_losses import inside_outside_losses, segment_cells, segment_scores, triplet_loss
from tests.model_batches import SENTENCES, make_batch, select

TINY_FSAN = dict(n_video_frames=16, model_dim=32, heads=2, layers=1, map_dim=16, embed_dim=16, audio_width=16,
                 dropout=0.0)


def four_items() -> dict:
    """Four queries on three videos (v0 twice), 16 clips: every item has a negative of another video."""
    batch = make_batch([300, 0, 120, 250], n_video=16)
    batch["video_id"] = ["v0", "v0", "v1", "v2"]
    return batch


def tiny_fsan(query: str = "text", **overrides) -> FSANConfig:
    vocab = build_vocab(SENTENCES) if query == "text" else []
    return FSANConfig.small(**{**TINY_FSAN, "query": query, "vocab": vocab, **overrides})


def _brute_sc(p, q_len, n_valid, empty_outside="zero"):
    """The paper's SC(s, e) by loops, for one item: p [T_q, N] (``video_mean``: the whole video's
    missing outside term is the mean over clips of the min over tokens)."""
    p = p[:q_len, :n_valid]
    out = torch.full((n_valid, n_valid), float("nan"), dtype=torch.float64)
    for s in range(n_valid):
        for e in range(s, n_valid):
            inside = p[:, s:e + 1].mean()
            outside = [p[:, j].min() for j in range(n_valid) if j < s or j > e]
            empty = p.amin(0).mean() if empty_outside == "video_mean" else 0.0
            out[s, e] = inside - (torch.stack(outside).mean() if outside else empty)
    return out


def test_prefix_sum_scores_equal_brute_force():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(3, 5, 9, generator=g, dtype=torch.float64)
    q_len, n_valid = [5, 2, 1], [9, 6, 1]
    q_mask = torch.arange(5)[None] < torch.tensor(q_len)[:, None]
    v_mask = torch.arange(9)[None] < torch.tensor(n_valid)[:, None]
    cells = segment_cells(v_mask)
    for empty_outside in ("zero", "video_mean"):
        sc = segment_scores(p, q_mask, v_mask, empty_outside)
        for b in range(3):
            want = _brute_sc(p[b], q_len[b], n_valid[b], empty_outside)
            got = sc[b, : n_valid[b], : n_valid[b]]
            keep = ~torch.isnan(want)
            assert torch.allclose(got[keep], want[keep])
            assert cells[b].sum() == n_valid[b] * (n_valid[b] + 1) // 2


def test_flat_map_does_not_favour_the_whole_video():
    """Literal SC: a flat map scores the whole video c above every other segment (0); with the
    video-mean fix all segments tie, and a bump inside the video wins over the whole video."""
    q_mask, v_mask = torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 8, dtype=torch.bool)
    flat = torch.full((1, 3, 8), 0.4, dtype=torch.float64)
    literal, fixed = segment_scores(flat, q_mask, v_mask, "zero"), segment_scores(flat, q_mask, v_mask)
    assert literal[0, 0, 7] == pytest.approx(0.4) and literal[0, 2, 5] == pytest.approx(0.0)
    assert fixed[0, 0, 7] == pytest.approx(0.0) and fixed[0, 2, 5] == pytest.approx(0.0)
    bump = flat.clone()
    bump[:, :, 2:5] = 0.9
    sc = segment_scores(bump, q_mask, v_mask).masked_fill(~segment_cells(v_mask), float("-inf"))
    assert divmod(int(sc[0].argmax()), 8) == (2, 4)
    literal = segment_scores(bump, q_mask, v_mask, "zero").masked_fill(~segment_cells(v_mask), float("-inf"))
    assert divmod(int(literal[0].argmax()), 8) == (0, 7)  # 0.5875 for the whole video against 0.5 for the bump
    with pytest.raises(ValueError, match="empty_outside"):
        segment_scores(flat, q_mask, v_mask, "none")


def test_triplet_loss_known_answer():
    pos, neg = torch.tensor([0.5, 0.1, 0.9]), torch.tensor([0.1, 0.2, 0.0])
    valid = torch.tensor([True, True, False])
    # item 0: max(0, 0.2 - 0.5 + 0.1) = 0; item 1: 0.2 - 0.1 + 0.2 = 0.3; item 2 dropped
    assert triplet_loss(pos, neg, valid, 0.2).item() == pytest.approx(0.15)


def test_inside_outside_losses_known_answer():
    # two clips, one token; P = [[a, b]]; segments (0,0), (0,1), (1,1) with SC weights
    a, b = 0.8, 0.3
    p = torch.tensor([[[a, b]]], dtype=torch.float64)
    q_mask, v_mask = torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)
    sc = torch.tensor([[[0.0, 1.0], [0.0, 2.0]]], dtype=torch.float64)  # (1, 0) is no segment
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), 0)  # (0,0), (0,1), (1,1)
    li, lo = inside_outside_losses(p, q_mask, v_mask, sc)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    want_i = w[0] * -sig(a) + w[1] * -sig(a + b) + w[2] * -sig(b)  # Eq. 9: sigmoid of the in-segment sum
    want_o = w[0] * -math.log(1 - b) + w[1] * 0.0 + w[2] * -math.log(1 - a)
    assert li.item() == pytest.approx(float(want_i)) and lo.item() == pytest.approx(float(want_o))
    # the fix: minimising L_o lowers the outside alignment (the gradient on b through (0,0) is positive)
    pg = p.clone().requires_grad_(True)
    inside_outside_losses(pg, q_mask, v_mask, torch.tensor([[[5.0, -5.0], [0.0, -5.0]]]))[1].backward()
    assert pg.grad[0, 0, 1] > 0  # gradient descent moves b down


@pytest.mark.parametrize("query", ["text", "speech"])
def test_smoke_output_contract_and_loss(query):
    torch.manual_seed(0)
    cfg = tiny_fsan(query)
    model = build_model(cfg)
    batch = four_items()
    out = model.train()(batch)
    n = 16
    assert out["proposal_scores"].shape == (4, n, n) and out["alignment_map"].shape[0::2] == (4, n)
    p = out["alignment_map"]
    assert (p >= 0).all() and (p <= 1).all() and torch.isfinite(out["segment_scores"]).all()
    assert out["cq_attention"].shape == (4, n, p.shape[1])
    loss, logs = model.loss(out, batch)
    assert torch.isfinite(loss) and {"triplet_loss", "inside_loss", "outside_loss"} <= set(logs)
    loss.backward()
    assert model.w_v.weight.grad is not None
    model.eval()
    with pytest.raises(ValueError, match="training mode"):
        model.loss(model(batch), batch)


@pytest.mark.parametrize("query", ["text", "speech"])
def test_batch_vs_single_and_zero_length(query):
    torch.manual_seed(1)
    model = build_model(tiny_fsan(query)).eval()
    batch = make_batch([300, 0, 150], n_video=16, seed=2)
    with torch.no_grad():
        full = model(batch)
        for i in range(3):
            one = model(select(batch, i))
            t_q = int(one["query_mask"].sum())
            assert torch.allclose(full["proposal_scores"][i], one["proposal_scores"][0], atol=1e-5)
            assert torch.allclose(full["alignment_map"][i, :t_q], one["alignment_map"][0, :t_q], atol=1e-5)
    assert torch.isfinite(full["proposal_scores"]).all()  # the zero-length query still gives a map


def test_text_negative_masks_shared_words():
    model = build_model(tiny_fsan("text")).train()
    batch = make_batch([10, 10], n_video=16, sentences=["a man throws a ball", "a man throws a ball"])
    batch["video_id"] = ["v0", "v1"]
    out = model(batch)
    assert not out["neg_valid"].any()  # every word is shared: no negative left


def test_config_round_trip_and_presets():
    cfg = tiny_fsan("speech")
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    paper = FSANConfig.paper()
    assert (paper.model_dim, paper.layers, paper.n_video_frames) == (512, 6, 64)
    with pytest.raises(ValueError, match="heads"):
        FSANConfig.small(model_dim=30, heads=4)


def test_speech_over_whisper_features():
    """audio_frontend=whisper_base: batch["audio"] holds [T_e, 512] encoder features (25 Hz)."""
    torch.manual_seed(3)
    model = build_model(tiny_fsan("speech", audio_frontend="whisper_base")).eval()
    g = torch.Generator().manual_seed(0)
    batch = {"video": torch.randn(2, 16, 500, generator=g), "audio": torch.randn(2, 40, 512, generator=g),
             "audio_lengths": torch.tensor([40, 25])}
    with torch.no_grad():
        out = model(batch)
        one = model({"video": batch["video"][1:], "audio": batch["audio"][1:, :25], "audio_lengths": torch.tensor([25])})
    assert out["alignment_map"].shape[0::2] == (2, 16) and torch.isfinite(out["proposal_scores"]).all()
    assert torch.allclose(out["proposal_scores"][1], one["proposal_scores"][0], atol=1e-5)
    with pytest.raises(ValueError, match="query=speech"):
        tiny_fsan("text", audio_frontend="whisper_base")


def test_inside_outside_losses_equal_brute_force_with_padding():
    g = torch.Generator().manual_seed(4)
    p = torch.rand(2, 4, 6, generator=g, dtype=torch.float64) * 0.9 + 0.05
    sc = torch.randn(2, 6, 6, generator=g, dtype=torch.float64)
    q_len, n_valid = [4, 2], [6, 3]
    q_mask = torch.arange(4)[None] < torch.tensor(q_len)[:, None]
    v_mask = torch.arange(6)[None] < torch.tensor(n_valid)[:, None]
    li, lo = inside_outside_losses(p, q_mask, v_mask, sc)
    want_i = want_o = 0.0
    for b in range(2):
        pb, n = p[b, : q_len[b], : n_valid[b]], n_valid[b]
        segs = [(s, e) for s in range(n) for e in range(s, n)]
        w = torch.softmax(torch.stack([sc[b, s, e] for s, e in segs]), 0)
        for k, (s, e) in enumerate(segs):
            want_i += float(w[k] * -torch.sigmoid(pb[:, s:e + 1].sum(1)).mean()) / 2
            out = [j for j in range(n) if j < s or j > e]
            if out:
                want_o += float(w[k] * torch.stack([-torch.log(1 - pb[:, j].min()) for j in out]).mean()) / 2
    assert li.item() == pytest.approx(want_i) and lo.item() == pytest.approx(want_o)


def test_outside_mean_statistic_and_weight_temperature():
    """outside_stat="mean": SC subtracts the outside's token mean (brute force); a bump narrower
    than its clip noise is then taken whole. weight_temperature sharpens the loss weights."""
    q_mask, v_mask = torch.ones(1, 2, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool)
    p = torch.tensor([[[0.2, 0.9, 0.8, 0.85, 0.2, 0.1], [0.1, 0.3, 0.9, 0.9, 0.3, 0.2]]], dtype=torch.float64)
    sc = segment_scores(p, q_mask, v_mask, outside_stat="mean")
    col = p[0].mean(0)
    for s, e in ((0, 5), (1, 3), (2, 2), (0, 0)):
        inside = col[s:e + 1].mean()
        rest = torch.cat([col[:s], col[e + 1:]])
        want = inside - (rest.mean() if len(rest) else col.mean())
        assert sc[0, s, e].item() == pytest.approx(want.item())
    best = sc.masked_fill(~segment_cells(v_mask), float("-inf"))[0].argmax()
    assert divmod(int(best), 6) == (1, 3)  # the three aligned clips, not the single best one
    with pytest.raises(ValueError, match="outside_stat"):
        segment_scores(p, q_mask, v_mask, outside_stat="max")
    sc_w = torch.tensor([[[0.0, 1.0], [0.0, 2.0]]], dtype=torch.float64)
    p2, q2, v2 = p[:, :1, :2], torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)
    li_warm, _ = inside_outside_losses(p2, q2, v2, sc_w, temperature=1.0)
    li_cold, _ = inside_outside_losses(p2, q2, v2, sc_w, temperature=0.01)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert li_cold.item() == pytest.approx(-sig(p2[0, 0, 1].item()), abs=1e-6)  # all weight on (1, 1), SC 2
    assert li_cold.item() != pytest.approx(li_warm.item())
    with pytest.raises(ValueError, match="weight_temperature"):
        tiny_fsan(weight_temperature=0.0)


def test_negative_video_adds_a_second_triplet():
    """negative_video: the query's best score on another video; L_t sums both triplets."""
    torch.manual_seed(0)
    batch = four_items()
    model = build_model(tiny_fsan("text", negative_video=True)).train()
    out = model(batch)
    assert out["neg_video_best"].shape == (4,) and out["neg_video_valid"].all()
    loss, logs = model.loss(out, batch)
    want = triplet_loss(out["segment_scores"].masked_fill(~out["proposal_mask"], float("-inf")).flatten(1).amax(1),
                        out["neg_best"], out["neg_valid"], model.cfg.margin)
    want = want + triplet_loss(out["segment_scores"].masked_fill(~out["proposal_mask"], float("-inf")).flatten(1).amax(1),
                               out["neg_video_best"], out["neg_video_valid"], model.cfg.margin)
    assert logs["triplet_loss"].item() == pytest.approx(want.item(), rel=1e-5)
    loss.backward()
    assert "neg_video_best" not in build_model(tiny_fsan("text")).train()(batch)  # off by default


def test_erase_negative_scores_only_segments_apart_from_the_chosen_one():
    """erase_negative: the chosen segment's clips leave the video; the erased score is the best SC
    over segments wholly before or after the gap, computed with those clips masked out."""
    torch.manual_seed(0)
    batch = four_items()
    model = build_model(tiny_fsan("text", erase_negative=True)).train()
    n = batch["video"].shape[1]
    seen = []

    def fixed_align(s, s_mask, v, v_mask):  # a map that peaks on clips 4..6 of every video
        seen.append(v_mask.clone())
        p = torch.full((s.shape[0], s.shape[1], n), 0.2)
        p[:, :, 4:7] = 0.9
        p[:, :, 10] = 0.6
        return p

    model.align = fixed_align
    out = model(batch)
    assert out["erased_valid"].all()
    erased_mask = seen[-1]  # the last align call is the erased pass
    valid = batch["video_mask"] if "video_mask" in batch else torch.ones(4, n, dtype=torch.bool)
    assert not erased_mask[:, 4:7].any() and torch.equal(erased_mask[:, 7:], valid[:, 7:])
    p = fixed_align(torch.zeros(4, 3, 1), None, None, erased_mask)
    sc = segment_scores(p, out["query_mask"][:, :3].fill_(True), erased_mask)
    apart = torch.zeros(n, n, dtype=torch.bool)
    apart[:4, :4] = True
    apart[7:, 7:] = True
    want = sc.masked_fill(~(segment_cells(erased_mask) & apart), float("-inf")).flatten(1).amax(1)
    assert torch.allclose(out["erased_best"], want, atol=1e-5)
    loss, logs = model.loss(out, batch)
    assert torch.isfinite(loss)
    assert "erased_best" not in build_model(tiny_fsan("text")).train()(batch)  # off by default


def test_erase_max_share_caps_the_erased_segment():
    """The erased gap is the best segment no longer than erase_max_share of the clips: a map high
    on clips 2..12 loses all 11 of them at share 1, at most 4 of 16 at share 0.25."""
    batch = four_items()
    batch.pop("video_mask", None)
    n = batch["video"].shape[1]
    for share, want_gap in ((1.0, 11), (0.25, 4)):
        model = build_model(tiny_fsan("text", erase_negative=True, outside_stat="mean", erase_max_share=share)).train()
        seen = []

        def long_peak(s, s_mask, v, v_mask, seen=seen):
            seen.append(v_mask.clone())
            p = torch.full((s.shape[0], s.shape[1], n), 0.2)
            p[:, :, 2:13] = 0.8
            return p

        model.align = long_peak
        out = model(batch)
        assert out["erased_valid"].all()
        gap = ~seen[-1]
        assert (gap.sum(1) == want_gap).all() and not gap[:, :2].any() and not gap[:, 13:].any()
    with pytest.raises(ValueError, match="erase_max_share"):
        tiny_fsan("text", erase_max_share=0.0)


def test_swapped_captions_replace_one_word_at_the_same_position():
    from svg_core.models.fsan_losses import swapped_captions

    sents = ["the red box spins", "the blue ring bounces", "the red box spins"]
    out, ok = swapped_captions(sents, ["v0", "v1", "v0"], seed=3)
    assert ok == [True, True, True]
    for before, after, vid in zip(sents, out, ["v0", "v1", "v0"]):
        a, b = before.split(), after.split()
        diff = [k for k in range(4) if a[k] != b[k]]
        assert len(a) == len(b) == 4 and len(diff) == 1
        donors = [x.split() for x, v in zip(sents, ["v0", "v1", "v0"]) if v != vid]
        assert any(d[diff[0]] == b[diff[0]] for d in donors)  # the word of another video's caption, same slot
    assert swapped_captions(sents, ["v0", "v1", "v0"], seed=3) == (out, ok)  # deterministic
    same, ok = swapped_captions(["a b", "a b"], ["v0", "v1"], seed=0)  # nothing different to offer
    assert same == ["a b", "a b"] and ok == [False, False]


def test_swap_negative_adds_a_triplet_on_the_own_video():
    torch.manual_seed(0)
    batch = four_items()
    model = build_model(tiny_fsan("text", swap_negative=True)).train()
    out = model(batch)
    assert out["swap_best"].shape == (4,) and out["swap_valid"].dtype == torch.bool
    loss, _ = model.loss(out, batch)
    loss.backward()
    assert "swap_best" not in build_model(tiny_fsan("text")).train()(batch)
    with pytest.raises(ValueError, match="swap_negative needs query=text"):
        tiny_fsan("speech", swap_negative=True)


def test_sibling_loss_known_answer():
    from svg_core.models.fsan_losses import sibling_loss

    v_mask = torch.ones(1, 3, dtype=torch.bool)
    sc = torch.full((1, 3, 3), -1.0)
    sib = torch.full((1, 3, 3), -1.0)
    sc[0, 0, 0], sib[0, 0, 0] = 0.8, 0.5  # the caption's best segment (0, 0): sibling there 0.5
    sib[0, 2, 2], sc[0, 2, 2] = 0.9, 0.0  # the sibling's best (2, 2): the caption there 0.0
    sc[0, 1, 0] = sib[0, 1, 0] = 5.0  # below the diagonal: never a segment
    ok = torch.tensor([True])
    # max(0, 0.5 - 0.8 + 0.5) + max(0, 0.5 - 0.9 + 0.0) = 0.2 + 0
    assert float(sibling_loss(sc, sib, v_mask, ok, 0.5)) == pytest.approx(0.2, abs=1e-6)
    assert float(sibling_loss(sc, sib, v_mask, torch.tensor([False]), 0.5)) == 0.0
    sc.requires_grad_(True)
    sibling_loss(sc, sib, v_mask, ok, 0.5).backward()
    assert float(sc.grad[0, 0, 0]) < 0 and float(sc.grad[0, 2, 2]) == 0  # raise own score where it won


def test_sibling_negative_reads_the_sibling_caption_and_trains():
    torch.manual_seed(0)
    batch = four_items()
    model = build_model(tiny_fsan("text", sibling_negative=True, video_positions=False)).train()
    with pytest.raises(ValueError, match="sibling_sentence"):
        model(batch)
    batch["sibling_sentence"] = [batch["sentence"][1], batch["sentence"][0], batch["sentence"][2], batch["sentence"][3]]
    batch["sibling_valid"] = [True, True, False, False]
    out = model(batch)
    assert out["sibling_scores"].shape == (4, 16, 16) and out["sibling_valid"].tolist() == [True, True, False, False]
    loss, _ = model.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and model.tokens.encoder.embed.weight.grad is not None
    assert "sibling_scores" not in build_model(tiny_fsan("text")).train()(batch)
    with pytest.raises(ValueError, match="sibling_negative needs query=text"):
        tiny_fsan("speech", sibling_negative=True)


def test_video_positions_switch():
    """video_positions=False: the map of a clip follows its content, so reversing the clips reverses the map."""
    torch.manual_seed(0)
    model = build_model(tiny_fsan("text", video_positions=False)).eval()
    batch = four_items()
    batch["video_mask"] = torch.ones(4, 16, dtype=torch.bool)
    flipped = dict(batch, video=batch["video"].flip(1))
    with torch.no_grad():
        p, q = model(batch)["alignment_map"], model(flipped)["alignment_map"]
    torch.testing.assert_close(p.flip(2), q, atol=1e-5, rtol=1e-4)
    with_pos = build_model(tiny_fsan("text")).eval()
    with torch.no_grad():
        assert not torch.allclose(with_pos(batch)["alignment_map"].flip(2), with_pos(flipped)["alignment_map"], atol=1e-3)


def test_word_reconstruction_reads_the_clips_each_word_aligns_to():
    torch.manual_seed(0)
    batch = four_items()
    model = build_model(tiny_fsan("text", recon_weight=1.0, recon_temperature=0.05)).train()
    out = model(batch)
    b, t_q, n = out["alignment_map"].shape
    assert out["recon_logits"].shape == (b, t_q, len(model.cfg.vocab)) and out["recon_targets"].shape == (b, t_q)
    assert bool((out["recon_targets"][~out["query_mask"]] == -100).all())
    assert bool((out["recon_targets"][out["query_mask"]] > 1).any())
    loss, logs = model.loss(out, batch)
    loss.backward()
    assert "recon_loss" in logs and float(logs["recon_loss"]) > 0 and model.recon_head.weight.grad is not None
    # the words' rows of P get gradient from the reconstruction alone (the map decides which clips are read)
    model.zero_grad()
    only = build_model(tiny_fsan("text", recon_weight=1.0)).train()
    o = only(batch)
    torch.nn.functional.cross_entropy(o["recon_logits"].flatten(0, 1), o["recon_targets"].flatten(), ignore_index=-100).backward()
    assert float(only.w_s.weight.grad.abs().sum()) > 0
    unknown = dict(batch, sentence=["zzqx"] * 4)  # nothing known to predict: a finite zero term
    _, logs = model.loss(model(unknown), unknown)
    assert float(logs["recon_loss"]) == 0.0
    assert "recon_logits" not in build_model(tiny_fsan("text")).train()(batch)
    for bad in (dict(recon_weight=-1.0), dict(recon_weight=1.0, recon_temperature=0.0)):
        with pytest.raises(ValueError, match="recon_"):
            tiny_fsan("text", **bad)


def test_bag_of_words_nll_known_answer():
    from svg_core.models.fsan_losses import bag_of_words_nll

    # two steps, three words; step 0 says word 1 surely, step 1 word 2 surely (logits +-20)
    logits = torch.tensor([[[-20.0, 20.0, -20.0], [-20.0, -20.0, 20.0]]])
    steps = torch.tensor([[True, True]])
    # each word is said by one of the two steps: mixture probability 1/2 each
    assert float(bag_of_words_nll(logits, steps, torch.tensor([[1, 2]]))) == pytest.approx(math.log(2), rel=1e-4)
    assert float(bag_of_words_nll(logits, torch.tensor([[True, False]]), torch.tensor([[1, -100]]))) == pytest.approx(0.0, abs=1e-4)
    assert float(bag_of_words_nll(logits, steps, torch.tensor([[-100, -100]]))) == 0.0


def test_speech_word_reconstruction_predicts_the_caption_words():
    torch.manual_seed(0)
    batch = four_items()
    model = build_model(tiny_fsan("speech", recon_weight=1.0, vocab=build_vocab(SENTENCES))).train()
    out = model(batch)
    assert out["recon_bag_targets"].shape[0] == 4 and out["recon_step_mask"].shape == out["query_mask"].shape
    loss, logs = model.loss(out, batch)
    loss.backward()
    assert float(logs["recon_loss"]) > 0 and model.recon_head.weight.grad is not None
    with pytest.raises(ValueError, match="needs vocab"):
        tiny_fsan("speech", recon_weight=1.0)
    model.eval()
    no_caption = {k: v for k, v in batch.items() if k != "sentence"}
    with torch.no_grad():
        assert model(no_caption)["proposal_scores"].shape[0] == 4  # inference never reads the caption


def test_loss_weights_remove_a_loss():
    torch.manual_seed(0)
    batch = four_items()
    full = build_model(tiny_fsan("text")).train()
    out = full(batch)
    _, logs = full.loss(out, batch)
    no_t = build_model(tiny_fsan("text", loss_weights=(0.0, 1.0, 1.0))).train()
    no_t.load_state_dict(full.state_dict())
    loss, _ = no_t.loss(out, batch)
    expected = (logs["inside_loss"] + logs["outside_loss"]) / 3
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    cfg = tiny_fsan("text", loss_weights=(1.0, 0.0, 0.5))
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="loss_weights"):
        tiny_fsan("text", loss_weights=(1.0, -1.0, 1.0))
