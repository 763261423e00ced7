"""``python -m svg_core.bench train --compare-speed``: the v2 and new audio front-ends side by side."""

from __future__ import annotations

import pytest

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
    assert [label for label, _ in rows] == ["base v2 (audio_subsample=1)", "base new (audio_subsample=4)"]
    assert [cfg.audio_subsample for _, cfg in rows] == [1, 4]
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
                         "vgcl v2 (audio_subsample=1)", "vgcl new (audio_subsample=4)", "text"}
    assert rows["base v2 (audio_subsample=1)"][1] == "1.00x"
    v2, new = float(rows["base v2 (audio_subsample=1)"][0]), rows["base new (audio_subsample=4)"]
    assert v2 > 0 and float(new[0]) > 0
    assert float(new[1].rstrip("x")) == pytest.approx(float(new[0]) / v2, abs=0.06)  # ratio of the rounded cells
    assert float(rows["text"][1]) > 0  # a model without an audio front-end: one row, no ratio
