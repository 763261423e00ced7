"""``python -m svg_core.bench train --compare-speed``: the v2 and new audio front-ends side by side."""

from __future__ import annotations


from svg_core.models import BaseConfig, CPCConfig, TextConfig, build_vocab
from svg_core.reporting import bench
from tests.conftest import TINY, TINY_CPC
from tests.model_batches import SENTENCES


def tiny_bench_config(name: str, preset: str):
    """The bench's configs at the test-suite sizes (the small preset shrunk further)."""
    return {"base": BaseConfig.small(**TINY), "vgcl": CPCConfig.small(**TINY_CPC, video_guided=True),
            "text": TextConfig.small(model_dim=64, chunk_num=2, attn_layers=1, vocab=build_vocab(SENTENCES))}[name]


def test_speed_variants_are_v2_and_the_new_default():
    rows = bench.speed_variants("base", BaseConfig.small(**TINY, audio_subsample=2))
    assert [label for label, _ in rows] == ["base v2 (audio_subsample=1)", "base new (audio_subsample=4)",
                                            "base whisper_base, cached features"]
    assert [cfg.audio_subsample for _, cfg in rows[:2]] == [1, 4]
    assert [cfg.audio_frontend for _, cfg in rows] == ["logmel", "logmel", "whisper_base"]
    assert rows[0][1].model_dim == 64  # everything else as given
    assert len(bench.speed_variants("text", tiny_bench_config("text", "small"))) == 1


def test_compare_speed_prints_both_rows_and_their_ratio(capsys, monkeypatch):
    monkeypatch.setattr(bench, "bench_config", tiny_bench_config)
    argv = ["train", "--models", "base", "vgcl", "text", "--compare-speed", "--steps", "1", "--warmup", "0",
            "--batch-size", "2", "--cpu-only", "--threads", "1"]
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[2].split() == ["model", "cpu", "x", "v2"]
    rows = {line.rsplit(None, 2)[0] if line.endswith("x") else line.rsplit(None, 1)[0]: line.split()[-2:]
            for line in lines[3:]}
    assert set(rows) == {"base v2 (audio_subsample=1)", "base new (audio_subsample=4)",
                         "base whisper_base, cached features", "vgcl v2 (audio_subsample=1)",
                         "vgcl new (audio_subsample=4)", "vgcl whisper_base, cached features", "text"}
    assert rows["base v2 (audio_subsample=1)"][1] == "1.00x"
    v2, new = float(rows["base v2 (audio_subsample=1)"][0]), rows["base new (audio_subsample=4)"]
    assert v2 > 0 and float(new[0]) > 0
    # the ratio of the unrounded figures lies within what the cells' 0.1 rounding allows
    ratio, new_sps = float(new[1].rstrip("x")), float(new[0])
    assert (new_sps - 0.05) / (v2 + 0.05) - 0.005 <= ratio <= (new_sps + 0.05) / max(v2 - 0.05, 1e-9) + 0.005
    assert float(rows["text"][1]) > 0  # a model without an audio front-end: one row, no ratio
    assert float(rows["base whisper_base, cached features"][0]) > 0


def test_synthetic_batch_follows_the_front_end():
    """Cached Whisper base features: 512 wide at 25 Hz, a quarter of the log-Mel steps."""
    mel = bench.synthetic_batch(2, min_frames=400, max_frames=400)
    enc = bench.synthetic_batch(2, min_frames=400, max_frames=400, audio_frontend="whisper_base", frontend_pool=2)
    assert mel["audio"].shape == (2, 400, 128) and enc["audio"].shape == (2, 100, 512)
    assert enc["audio_lengths"].tolist() == [100, 100] and enc["audio_mask"].all()
