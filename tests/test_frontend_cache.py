"""The front-end feature cache (issue 20): build, seeded draws, stale versions refused, a tiny
training run that reads only the cache, and the CLI's errors. Uses the shipped Whisper base files
(skips with the reason where they are absent)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from svg_core.audio.noise import NoiseConfig
from svg_core.data.dataset import VAL_SEED_OFFSET, DatasetLayout, GroundingDataset, collate_batch
from tests.test_speech_frontend import needs_whisper

pytestmark = needs_whisper
NOISE = NoiseConfig(preset="normal", kinds=("white", "pink"))  # synthetic noise: no ESC files needed


@pytest.fixture(scope="module")
def cached(tmp_path_factory) -> Path:
    """A copy of the tiny dataset with a 2-draw cache (seed 0) at its default path."""
    from tests.fixtures_build import make_tiny_dataset

    from svg_core.audio.whisper_encoder import SpeechFeatures
    from svg_core.data.frontend_cache import build_frontend_cache, default_cache_path

    root = make_tiny_dataset(tmp_path_factory.mktemp("fe_cache") / "tiny", n_videos=4, queries_per_video=2, seed=0)
    layout = DatasetLayout.from_dir(root)
    summary = build_frontend_cache(layout, default_cache_path(layout, "whisper_base", 2, "normal"),
                                   SpeechFeatures(pool=2, device="cpu"), "whisper_base", NOISE, draws=2, seed=0,
                                   progress=False)
    assert summary["queries"] == {"train": 8, "val": 8} and summary["draws"] == {"train": 2, "val": 1}
    assert summary["mb_per_1000_train_queries"] > 0
    return root


def _version(root: Path, noise=NOISE, pool: int = 2) -> dict:
    from svg_core.audio.whisper_encoder import ENCODER_NAME
    from svg_core.data.frontend_cache import cache_version

    return cache_version(DatasetLayout.from_dir(root), "whisper_base", ENCODER_NAME, pool, noise)


def test_cache_holds_float16_draws_equal_to_the_live_encoder(cached):
    from svg_core.audio.whisper_encoder import SpeechFeatures
    from svg_core.data.frontend_cache import FrontendCache, default_cache_path

    layout = DatasetLayout.from_dir(cached)
    path = default_cache_path(layout, "whisper_base", 2, "normal")
    with h5py.File(path) as f:
        name = sorted(f["train/feat"])[0]
        assert f[f"train/feat/{name}"].dtype == np.float16 and f[f"train/feat/{name}"].shape[0] == 2
    cache = FrontendCache(path, _version(cached))
    live = GroundingDataset(layout, "train", noise=NOISE, seed=0, frontend=SpeechFeatures(pool=2, device="cpu"))
    from_cache = GroundingDataset(layout, "train", noise=NOISE, seed=0, frontend_cache=cache)
    picks = set()
    for epoch in range(6):
        for ds in (live, from_cache):
            ds.set_epoch(epoch)
        k = int(np.random.default_rng([0, epoch, 0]).integers(2))  # the draw epoch `epoch` reads
        live.set_epoch(k)
        want, got = live[0], from_cache[0]
        np.testing.assert_allclose(got["audio"].numpy(), want["audio"].numpy(), atol=2e-2, rtol=1e-2)  # float16
        assert got["snr_db"] == pytest.approx(want["snr_db"]) and got["noise_span_sec"] == pytest.approx(
            want["noise_span_sec"])
        picks.add(k)
    assert picks == {0, 1}  # both draws are used over the epochs
    val = GroundingDataset(layout, "val", noise=NOISE, seed=VAL_SEED_OFFSET, frontend_cache=cache)
    assert collate_batch([val[0], val[1]])["audio"].shape[-1] == 512


def test_stale_cache_is_refused(cached, tmp_path):
    from svg_core.data.frontend_cache import FrontendCache, StaleCacheError, default_cache_path

    path = default_cache_path(DatasetLayout.from_dir(cached), "whisper_base", 2, "normal")
    with pytest.raises(StaleCacheError, match=r"noise\.snr_db_range .* rebuild it with: python -m svg_core.data "
                                              r"frontend-cache"):
        FrontendCache(path, _version(cached, NoiseConfig(preset="normal", kinds=("white", "pink"),
                                                         snr_db_range=(5.0, 15.0))))
    with pytest.raises(StaleCacheError, match="frontend.pool is 2, this run needs 1"):
        FrontendCache(path, _version(cached, pool=1))
    moved = tmp_path / "rebuilt"  # the benchmark changed under the cache: another build seed
    shutil.copytree(cached, moved)
    (moved / "manifest.json").write_text(json.dumps({"synthetic": True, "seed": 7}))
    with pytest.raises(StaleCacheError, match="benchmark.seed is 0, this run needs 7"):
        FrontendCache(path, _version(moved))
    FrontendCache(path, _version(cached))  # the matching version opens
    # refeatured with another video extractor (or world 3 -> 4): the wavs are the same, the cache stays valid
    manifest = json.loads((cached / "manifest.json").read_text())
    manifest.update(world=99, extractor={"name": "another-extractor"})
    (moved / "manifest.json").write_text(json.dumps(manifest))
    FrontendCache(path, _version(moved))
    (moved / "manifest.json").write_text(json.dumps({**manifest, "generator_version": 99}))  # other scenes: refused
    with pytest.raises(StaleCacheError, match="benchmark.generator_version"):
        FrontendCache(path, _version(moved))


def _train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(root), "--model", "base", "--out", str(out), "--epochs", "2", "--batch-size", "4",
            "--no-progress", "--threads", "1", "--set", "audio_frontend=whisper_base", "--set", "adapter_dim=16",
            "--set", "model_dim=32", "--set", "chunk_num=2", "--set", "davenet2_dims=32,32", "--set",
            "audio_gru_dim=32", "--set", "attn_heads=2", *extra]


def test_tiny_training_reads_only_the_cache(cached, tmp_path, monkeypatch):
    from svg_core.audio import whisper_encoder
    from svg_core.audio.noise import NoiseConfig as RealNoise
    from svg_core.engine import run_data
    from svg_core.engine import training as train

    monkeypatch.setattr(whisper_encoder.SpeechFeatures, "numpy", lambda self, wave: pytest.fail("encoder ran live"))
    # the run's noise is the cache's (synthetic white/pink, as the fixture built it)
    monkeypatch.setattr(run_data, "noise_config_from_args", lambda preset, esc50: RealNoise(preset, kinds=("white", "pink")))
    torch.manual_seed(0)
    summary = train.run(train.build_parser().parse_args(_train_args(cached, tmp_path / "run")))
    assert summary["last_epoch"] == 2 and summary["best_val"]["n_queries"] == 8
    cfg = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert cfg["audio_frontend"] == "whisper_base" and cfg["adapter_dim"] == 16
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and "nan" not in rows[-1]


def test_stale_cache_stops_training_with_one_error_line(cached, tmp_path, capsys):
    from svg_core.engine import training as train

    # the real --noise normal draws ESC-10 noise, the cache was built with white/pink: refused
    assert train.main(_train_args(cached, tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: stale front-end cache") and ": noise." in err[0]


def test_frontend_cache_cli(tmp_path, capsys):
    from svg_core.data.__main__ import main as data_main
    from tests.fixtures_build import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "tiny", n_videos=2, queries_per_video=1, seed=3)
    assert data_main(["frontend-cache", str(root), "--draws", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --draws and --pool must be >= 1, found 0 and 2"
    assert data_main(["frontend-cache", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("error: dataset folder not found")
    assert data_main(["frontend-cache", str(root), "--draws", "2", "--noise", "clean", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "frontend_cache_whisper_base_pool2_clean.h5: train 2 queries x 1 draws, val 2 queries x 1 draws" in out
    assert "MB per 1000 training queries" in out


def _subset_folder(parent: Path, dest: Path) -> Path:
    """What ``synth crossengine`` leaves for train/val: half of each split's items, wavs linked."""
    dest.mkdir()
    for name in ("sub_activitynet_v1-3.c3d.hdf5", "new_test_data.json"):
        (dest / name).symlink_to((parent / name).resolve())
    (dest / "audio").mkdir()
    for split in ("train", "val"):
        items = json.loads((parent / f"new_{split}_data.json").read_text())[::2]
        (dest / f"new_{split}_data.json").write_text(json.dumps(items))
        for item in items:
            (dest / "audio" / item[4]).symlink_to((parent / "audio" / item[4]).resolve())
    manifest = json.loads((parent / "manifest.json").read_text())
    (dest / "manifest.json").write_text(json.dumps({**manifest, "counts": {"subset": True}}))
    return dest


def test_subset_cache_copies_the_parent_entries_and_passes_the_subset_version(cached, tmp_path, capsys):
    from svg_core.data.__main__ import main as data_main
    from svg_core.data.frontend_cache import FrontendCache, StaleCacheError, default_cache_path
    from svg_core.errors import UserInputError

    parent_path = default_cache_path(DatasetLayout.from_dir(cached), "whisper_base", 2, "normal")
    sub = _subset_folder(cached, tmp_path / "sub")
    with pytest.raises(StaleCacheError):  # the parent's file itself does not fit the subset
        FrontendCache(parent_path, expected=_version(sub))
    assert data_main(["frontend-cache", str(sub), "--from", str(parent_path), "--no-progress"]) == 0
    out_path = sub / parent_path.name  # named by the parent's pool and noise preset
    assert f"wrote {out_path} from {parent_path}: train 4 queries, val 4 queries" in capsys.readouterr().out
    subset, parent = FrontendCache(out_path, expected=_version(sub)), FrontendCache(parent_path)
    assert subset.n_draws == parent.n_draws == {"train": 2, "val": 1} and subset.info["subset_of"] == str(parent_path)
    item = json.loads((sub / "new_train_data.json").read_text())[1]
    for epoch in (0, 1):
        got, want = subset.draw("train", item[4], epoch, 0, 0), parent.draw("train", item[4], epoch, 0, 0)
        assert torch.equal(got[0], want[0]) and got[1:] == want[1:]
    with pytest.raises(StaleCacheError, match="no features"):  # a dropped wav is not carried over
        subset.draw("train", json.loads((cached / "new_train_data.json").read_text())[1][4], 0, 0, 0)
    (sub / "audio" / item[4]).unlink()
    shutil.copy(cached / "audio" / json.loads((cached / "new_train_data.json").read_text())[1][4], sub / "audio" / item[4])
    with pytest.raises(UserInputError, match="is not the parent's"):  # a wav that is not the parent's
        from svg_core.data.frontend_cache import subset_frontend_cache

        subset_frontend_cache(parent_path, DatasetLayout.from_dir(sub), tmp_path / "x.h5", progress=False)


class _StopAfter:
    """A front-end that encodes ``n`` waves, then raises (a build killed half-way), counting calls."""

    def __init__(self, features, n: int | None):
        self.features, self.n, self.calls = features, n, 0
        self.pool = features.pool

    def describe(self) -> dict:
        return self.features.describe()

    def numpy(self, wave):
        if self.n is not None and self.calls >= self.n:
            raise KeyboardInterrupt("stopped")
        self.calls += 1
        return self.features.numpy(wave)


def test_a_stopped_build_resumes_from_its_parts_and_equals_one_run(cached, tmp_path):
    from svg_core.audio.whisper_encoder import SpeechFeatures
    from svg_core.data.frontend_cache import build_frontend_cache, default_cache_path, parts_dir

    layout = DatasetLayout.from_dir(cached)
    reference = default_cache_path(layout, "whisper_base", 2, "normal")  # one uninterrupted run (the fixture)
    out = tmp_path / "resumed.h5"
    features = SpeechFeatures(pool=2, device="cpu")
    kwargs = dict(draws=2, seed=0, progress=False, shard_queries=3)
    stopped = _StopAfter(features, n=9)  # train has 8 wavs x 2 draws: parts 1 (3 wavs) and 1/2 of part 2
    with pytest.raises(KeyboardInterrupt):
        build_frontend_cache(layout, out, stopped, "whisper_base", NOISE, **kwargs)
    assert not out.exists() and sorted(p.name for p in parts_dir(out).glob("*.h5")) == ["train_00000.h5"]

    other_seed = _StopAfter(features, n=0)  # other settings: the parts are discarded, not reused
    with pytest.raises(KeyboardInterrupt):
        build_frontend_cache(layout, out, other_seed, "whisper_base", NOISE, **{**kwargs, "seed": 1})
    assert not list(parts_dir(out).glob("*.h5"))

    with pytest.raises(KeyboardInterrupt):
        build_frontend_cache(layout, out, _StopAfter(features, n=6), "whisper_base", NOISE, **kwargs)
    resumed = _StopAfter(features, n=None)
    summary = build_frontend_cache(layout, out, resumed, "whisper_base", NOISE, **kwargs)
    assert summary["resumed_queries"] == 3 and resumed.calls == (8 - 3) * 2 + 8  # the rest of train, all of val
    assert summary["queries"] == {"train": 8, "val": 8} and not parts_dir(out).exists()
    with h5py.File(reference) as want, h5py.File(out) as got:
        assert json.loads(got.attrs["version"]) == json.loads(want.attrs["version"])
        for split in ("train", "val"):
            assert dict(got[split].attrs) == dict(want[split].attrs)
            for kind in ("feat", "span_sec", "snr_db"):
                assert sorted(got[f"{split}/{kind}"]) == sorted(want[f"{split}/{kind}"])
                for name in want[f"{split}/{kind}"]:
                    np.testing.assert_array_equal(got[f"{split}/{kind}/{name}"][()], want[f"{split}/{kind}/{name}"][()])
