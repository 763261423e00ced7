"""CPC / VGCL pre-training: curriculum mask (Eq. 7), pacing, crops, InfoNCE, ablations, plugging in."""

from __future__ import annotations

import pytest
import torch

from svg_core.engine.checkpoint import build_with_pretrained, load_checkpoint, save_checkpoint
from svg_core.models import BaseConfig, CPCConfig, build_model
from svg_core.models.cpc import curriculum_window, random_crop, stage_at, stage_boundaries
from tests.model_batches import make_batch

from tests.conftest import TINY as TINY_BASE, TINY_CPC  # shared tiny configs

SPANS = torch.tensor([3.4, 0.0, 10.0, 50.2]), torch.tensor([9.6, 64.0, 10.5, 63.0])


def overlap_frames(start, end, n=64):
    frames = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    return (frames + 1 > start.double().unsqueeze(1)) & (frames < end.double().unsqueeze(1))


def test_curriculum_window_is_ground_truth_at_t0_and_whole_video_at_kappa():
    g = torch.Generator().manual_seed(0)
    start, end = SPANS
    at_zero = curriculum_window(start, end, 0, 10, 64, g)
    assert torch.equal(at_zero, overlap_frames(start, end))
    assert at_zero.sum(1).tolist() == [7, 64, 1, 13]
    assert curriculum_window(start, end, 10, 10, 64, g).all()


def test_curriculum_window_follows_eq7_and_grows_with_t():
    start, end = SPANS
    previous = None
    for t in range(11):  # gamma = 1: M_l = s (1 - t/k), M_r = e + t/k (L - e)
        window = curriculum_window(start, end, t, 10, 64, random_gamma=False)
        ratio = t / 10
        assert torch.equal(window, overlap_frames(start * (1 - ratio), end + ratio * (64 - end)))
        if previous is not None:
            assert (window | previous).equal(window)  # nested
        previous = window
    # random gamma stays inside the gamma = 1 window and contains the ground truth
    g = torch.Generator().manual_seed(1)
    for t in range(1, 10):
        window = curriculum_window(start, end, t, 10, 64, g, independent_gamma=True)
        assert (window | curriculum_window(start, end, t, 10, 64, random_gamma=False)).sum() == curriculum_window(
            start, end, t, 10, 64, random_gamma=False
        ).sum()
        assert (window | overlap_frames(start, end)).equal(window)


def test_curriculum_window_is_seeded_and_never_touches_global_rng():
    start, end = SPANS
    state = torch.random.get_rng_state()
    a = curriculum_window(start, end, 5, 10, 64, torch.Generator().manual_seed(3))
    b = curriculum_window(start, end, 5, 10, 64, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError, match="generator"):
        curriculum_window(start, end, 5, 10, 64, None)
    with pytest.raises(ValueError, match="stage"):
        curriculum_window(start, end, 11, 10, 64, None)


@pytest.mark.parametrize("pacing", ["linear", "exponential", "logarithmic"])
@pytest.mark.parametrize("kappa", [5, 10])
def test_pacing_covers_total_steps_in_order(pacing, kappa):
    total = 1000
    ends = stage_boundaries(total, kappa, pacing)
    assert len(ends) == kappa + 1 and ends[-1] == total
    lengths = [b - a for a, b in zip([0, *ends[:-1]], ends)]
    assert min(lengths) >= 1 and sum(lengths) == total
    if pacing == "linear":
        assert max(lengths) - min(lengths) <= 1
    elif pacing == "exponential":  # early easy stages short, later ones longer
        assert all(b >= a for a, b in zip(lengths, lengths[1:])) and lengths[-1] > 2 * lengths[0]
    else:  # logarithmic: steps per stage decrease as t grows
        assert all(b <= a for a, b in zip(lengths, lengths[1:])) and lengths[0] > 2 * lengths[-1]
    stages = [stage_at(s, total, kappa, pacing) for s in range(total)]
    assert stages[0] == 0 and stages[-1] == kappa
    assert all(b - a in (0, 1) for a, b in zip(stages, stages[1:]))  # every stage visited, in order
    assert stage_at(total + 5, total, kappa, pacing) == kappa


def test_pacing_with_fewer_steps_than_stages_and_bad_input():
    assert stage_boundaries(3, 10)[-1] == 3
    with pytest.raises(ValueError, match="pacing"):
        stage_boundaries(100, 10, "cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        stage_boundaries(0, 10)


def test_random_crop_stays_inside_valid_region():
    lengths = torch.tensor([600, 300, 100])
    audio = torch.arange(600, dtype=torch.float32).view(1, 600, 1).repeat(3, 1, 2)
    audio = audio * (torch.arange(600).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        crop, crop_len = random_crop(audio, lengths, 256, g)
        assert crop.shape == (3, 256, 2) and crop_len.tolist() == [256, 256, 100]
        for i in range(3):
            values = crop[i, : crop_len[i], 0]
            assert torch.equal(values - values[0], torch.arange(int(crop_len[i]), dtype=torch.float32))
            assert values[-1] < lengths[i]
        assert float(crop[2, 100:].abs().sum()) == 0.0
    centred, _ = random_crop(audio, lengths, 256, None)
    assert centred[0, 0, 0] == 172 and centred[1, 0, 0] == 22


def tiny_cpc(**overrides) -> CPCConfig:
    return CPCConfig.small(**{**TINY_CPC, **overrides})


def test_cpc_forward_shapes_and_ablations():
    batch = make_batch([300, 200, 40], seed=0)
    paper_rate = dict(audio_subsample=1)  # every 10 ms frame into g_enc: T/4 latent steps
    for cfg, k_v, lengths in [
        (tiny_cpc(**paper_rate), 128, [64, 50, 10]),
        (tiny_cpc(**paper_rate, use_entire_video=False), 64, [64, 50, 10]),
        (tiny_cpc(**paper_rate, crop_frames=128), 128, [32, 32, 10]),
        (tiny_cpc(**paper_rate, use_self_attention=False), 128, [64, 50, 10]),
        # 4 frames stacked per step (the new-config default): 256 -> 64 -> 16, 200 -> 50 -> 12, 40 -> 10 -> 2
        (tiny_cpc(audio_subsample=4), 128, [16, 12, 2]),
    ]:
        model = build_model(cfg).train()
        model.set_progress(0, 100)
        out = model(batch)
        steps = lengths[0]
        assert out["z"].shape == (3, steps, cfg.z_dim) and out["c"].shape == (3, steps, cfg.c_dim)
        assert out["lengths"].tolist() == lengths
        assert out["cross_attention"].shape == (3, steps, k_v)
        loss, logs = model.loss(out, batch)
        assert torch.isfinite(loss) and 0.0 < logs["loss"] < 10.0
    assert build_model(tiny_cpc(use_self_attention=False)).encoder.video.self_attention.encoder is None
    plain = build_model(tiny_cpc(video_guided=False))
    assert plain.encoder.video is None and "cross_attention" not in plain(batch)
    no_cl = build_model(tiny_cpc(use_curriculum=False))
    assert no_cl.set_progress(0, 100) == 10


def test_curriculum_window_follows_progress_and_is_reproducible():
    batch = make_batch([300, 200], seed=1, spans=[(10.0, 20.0), (40.0, 44.0)])
    model = build_model(tiny_cpc()).train()
    assert model.set_progress(0, 110) == 0
    out = model(batch)
    assert torch.equal(out["window_mask"], overlap_frames(batch["start_idx"], batch["end_idx"]))
    model.set_progress(55, 110)
    first = model(batch)
    model.set_progress(55, 110)
    again = model(batch)
    assert torch.equal(first["window_mask"], again["window_mask"])
    assert model.set_progress(109, 110) == 10
    assert model(batch)["window_mask"].all()
    model.eval()
    assert model(batch)["window_mask"].all()  # evaluation always sees the whole video


def test_cpc_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model(tiny_cpc(crop_frames=64)).train()
    batch = make_batch([64, 64, 64, 64], seed=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(15):
        model.set_progress(step, 15)
        loss, _ = model.loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0], losses


def test_pretrained_encoder_replaces_first_stage_and_reloads_without_its_path(tmp_path):
    cpc = build_model(tiny_cpc())
    with torch.no_grad():
        for p in cpc.parameters():
            p.add_(0.01)
    save_checkpoint(tmp_path / "cpc", cpc, cpc.cfg)
    cfg = BaseConfig.small(**TINY_BASE, pretrained_encoder=str(tmp_path / "cpc"), freeze_pretrained=True)
    with pytest.raises(ValueError, match="build_with_pretrained"):
        build_model(cfg)  # models never read checkpoints
    model = build_with_pretrained(cfg)
    assert model.cfg.cpc == cpc.cfg
    stage1 = model.query_encoder.encoder.stage1
    for name, value in cpc.encoder.state_dict().items():
        assert torch.equal(stage1.state_dict()[name], value), name
    assert not any(p.requires_grad for p in stage1.parameters())
    # the grounding checkpoint carries the resolved config, so it loads after the CPC dir is gone
    save_checkpoint(tmp_path / "ground", model, model.cfg)
    (tmp_path / "cpc" / "model.safetensors").unlink()
    loaded, loaded_cfg, _ = load_checkpoint(tmp_path / "ground")
    batch = make_batch([120], seed=3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["start_prob"], model.eval()(batch)["start_prob"])
    assert loaded_cfg.cpc == cpc.cfg and "cross_attention" in loaded(batch)


def test_pretrained_encoder_must_be_a_cpc_checkpoint(tmp_path):
    base = build_model(BaseConfig.small(**TINY_BASE))
    save_checkpoint(tmp_path / "base", base, base.cfg)
    with pytest.raises(ValueError, match="CPC checkpoint"):
        build_with_pretrained(BaseConfig.small(**TINY_BASE, pretrained_encoder=str(tmp_path / "base")))


def test_cpc_paper_preset_constructs():
    cfg = CPCConfig.paper()
    assert (cfg.prediction_steps, cfg.crop_frames, cfg.kappa, cfg.pacing, cfg.video_dim) == (3, 256, 10, "linear", 1024)
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(make_batch([256], seed=4))
    assert out["c"].shape == (1, 64, 256) and out["cross_attention"].shape == (1, 64, 128)


def test_cpc_padded_batch_equals_single_items_and_handles_empty_audio():
    from tests.model_batches import select

    model = build_model(tiny_cpc()).eval()
    batch = make_batch([400, 130, 9, 0], seed=5)
    with torch.no_grad():
        out = model(batch)
        for i in range(4):
            single = model(select(batch, i))
            n = int(single["lengths"][0])
            assert int(out["lengths"][i]) == n
            torch.testing.assert_close(out["c"][i, :n], single["c"][0, :n], atol=2e-5, rtol=1e-4)
            torch.testing.assert_close(out["cross_attention"][i, :n], single["cross_attention"][0, :n], atol=2e-5, rtol=1e-4)
    empty = make_batch([0, 2], seed=6)
    loss, _ = model.train().loss(model(empty), empty)
    assert float(loss.detach()) == 0.0
