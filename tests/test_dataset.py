"""Grounding dataset: layout discovery, labels, noise determinism, padding and masks, cache."""

import json
import shutil

import numpy as np
import pytest
import torch

from svg_core.audio.frontend import AudioError
from svg_core.data.dataset import (DatasetLayout, GroundingDataset, SpeechCache, build_speech_cache,
                                   collate_batch, moment_labels)
from svg_core.audio.noise import NoiseConfig
from svg_core.data.video_features import resample_features
from svg_core.errors import UserInputError
from tests.fixtures_build import make_tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"), n_videos=3, queries_per_video=2, seed=0)


def test_layout_discovery(tiny):
    layout = DatasetLayout.from_dir(tiny)
    assert set(layout.annotations) == {"train", "val", "test"}
    assert layout.features.name == "sub_activitynet_v1-3.c3d.hdf5"
    assert layout.audio_dir == tiny / "audio" and layout.video_dir is None
    assert layout.synthetic


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        DatasetLayout.from_dir(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="no annotation file"):
        DatasetLayout.from_dir(tmp_path)
    (tmp_path / "new_test_data.json").write_text("[]")
    with pytest.raises(FileNotFoundError, match="no video features"):
        DatasetLayout.from_dir(tmp_path)


def test_moment_labels():
    lab = moment_labels(10.0, 30.0, 64.0, 64)
    assert (lab["start_idx"], lab["end_idx"], lab["start_label"], lab["end_label"]) == (10.0, 30.0, 10, 29)
    assert lab["inside"].sum() == 20 and lab["inside"][10] == 1 and lab["inside"][30] == 0
    edge = moment_labels(0.0, 100.0, 100.0, 64)
    assert (edge["start_label"], edge["end_label"], edge["inside"].sum()) == (0, 63, 64)
    tiny = moment_labels(50.0, 50.1, 100.0, 64)
    assert tiny["end_label"] >= tiny["start_label"] and tiny["inside"].sum() == 1


def test_padded_batch_equals_items(tiny):
    ds = GroundingDataset(DatasetLayout.from_dir(tiny), "train", noise=None)
    items = [ds[i] for i in range(len(ds))]
    batch = collate_batch(items)
    B = len(items)
    assert batch["video"].shape == (B, 64, 500) and batch["inside"].shape == (B, 64)
    lengths = batch["audio_lengths"]
    assert batch["audio"].shape == (B, int(lengths.max()), 128)
    assert len(set(lengths.tolist())) > 1  # the fixture has different query lengths
    for i, item in enumerate(items):
        n = int(lengths[i])
        assert torch.equal(batch["audio"][i, :n], item["audio"])
        assert torch.all(batch["audio"][i, n:] == 0) and not batch["audio_mask"][i, n:].any()
        assert batch["audio_mask"][i, :n].all()
        assert np.array_equal(batch["video"][i].numpy(), item["video"])
        single = collate_batch([item])
        assert torch.equal(single["audio"][0], batch["audio"][i, :n])
    assert batch["query_id"][0] == ds.records[0].wav_name


def test_noise_is_seeded_per_epoch(tiny):
    layout = DatasetLayout.from_dir(tiny)
    noise = NoiseConfig(preset="normal", kinds=("white", "pink"), snr_db_range=(0.0, 5.0))
    a = GroundingDataset(layout, "train", noise=noise, seed=1)
    b = GroundingDataset(layout, "train", noise=noise, seed=1)
    first = a[0]
    assert torch.equal(first["audio"], b[0]["audio"]) and first["noise_span_sec"] == b[0]["noise_span_sec"]
    assert first["noise_span_sec"][1] > first["noise_span_sec"][0] and 0 <= first["snr_db"] <= 5
    a.set_epoch(1)
    assert not torch.equal(a[0]["audio"], first["audio"])
    clean = GroundingDataset(layout, "train", noise=NoiseConfig(preset="clean"))[0]
    assert clean["noise_span_sec"] == (0.0, 0.0) and np.isnan(clean["snr_db"])


def test_text_only_and_missing_files(tiny, tmp_path):
    layout = DatasetLayout.from_dir(tiny)
    batch = collate_batch([GroundingDataset(layout, "test", with_audio=False)[0]])
    assert "audio" not in batch and batch["sentence"][0].startswith("query")
    items = json.loads((tiny / "new_test_data.json").read_text())
    items[0][4] = "missing.wav"
    (tmp_path / "new_test_data.json").write_text(json.dumps(items))
    (tmp_path / "sub_activitynet_v1-3.c3d.hdf5").symlink_to(tiny / "sub_activitynet_v1-3.c3d.hdf5")
    (tmp_path / "audio").symlink_to(tiny / "audio")
    ds = GroundingDataset(DatasetLayout.from_dir(tmp_path), "test")
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        ds[0]
    with pytest.raises(ValueError, match="empty list"):
        collate_batch([])


def test_speech_cache_matches_files(tiny, tmp_path):
    layout = DatasetLayout.from_dir(tiny)
    cache = SpeechCache(build_speech_cache(layout, tmp_path / "cache.h5", splits=("train",)))
    plain = GroundingDataset(layout, "train", noise=None)
    cached = GroundingDataset(layout, "train", noise=None, speech_cache=cache)
    # clean mels come from the cache (float16 storage: small rounding)
    assert torch.allclose(plain[0]["audio"], cached[0]["audio"], atol=2e-3)
    noise = NoiseConfig(preset="normal", kinds=("white",))
    noisy_a = GroundingDataset(layout, "train", noise=noise, seed=3)[1]["audio"]
    noisy_b = GroundingDataset(layout, "train", noise=noise, seed=3, speech_cache=cache)[1]["audio"]
    assert noisy_a.shape == noisy_b.shape and torch.allclose(noisy_a, noisy_b, atol=5e-2)


def test_speech_cache_build_fails_cleanly(tiny, tmp_path):
    """A corrupt wav stops the build with its name; the previous cache stays and no temp file is left."""
    for path in tiny.iterdir():
        if path.is_file():
            (tmp_path / path.name).symlink_to(path)
    shutil.copytree(tiny / "audio", tmp_path / "audio")
    layout = DatasetLayout.from_dir(tmp_path)
    out = tmp_path / "cache" / "speech.h5"
    build_speech_cache(layout, out, splits=("train",))
    before = out.read_bytes()
    bad = sorted((tmp_path / "audio").iterdir())[0]
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(AudioError, match=bad.name):
        build_speech_cache(layout, out, splits=("train", "val", "test"))
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["speech.h5"]


def test_crop_keeps_the_moment_whole_and_its_features_aligned(tiny):
    """--crop-prob: a cut video still holds its moment, the moment moves with the cut, the features
    are the cut clips' own, the draw is seeded per (seed, epoch, index), and 0 leaves items alone."""
    layout = DatasetLayout.from_dir(tiny)
    plain = GroundingDataset(layout, "train", with_audio=False, n_video_frames=16)
    always = GroundingDataset(layout, "train", with_audio=False, n_video_frames=16, crop_prob=1.0)
    again = GroundingDataset(layout, "train", with_audio=False, n_video_frames=16, crop_prob=1.0)
    assert plain.crop_item(0) is None
    changed = 0
    for epoch in range(4):
        always.set_epoch(epoch), again.set_epoch(epoch)
        for i, rec in enumerate(always.records):
            cut, video = always.crop_item(i)
            raw = always.features.get(rec.video_id)
            clip_sec = rec.duration_sec / raw.shape[0]
            offset = rec.start_sec - cut.start_sec  # the cut's start, on a clip boundary
            first = round(offset / clip_sec)
            assert abs(first * clip_sec - offset) < 1e-6 and offset >= 0
            assert cut.end_sec - cut.start_sec == pytest.approx(rec.end_sec - rec.start_sec)  # whole moment
            assert 0 <= cut.start_sec < cut.end_sec <= cut.duration_sec + 1e-9
            n_clips = round(cut.duration_sec / clip_sec)
            assert np.allclose(video, resample_features(raw[first:first + n_clips], 16))
            item = always[i]
            assert item["record"] == cut and np.array_equal(item["video"], video)
            assert item["start_label"] <= item["end_label"]
            assert again.crop_item(i)[0] == cut  # seeded: the same epoch gives the same cut
            changed += cut.duration_sec < rec.duration_sec - 1e-9
    assert changed > 0  # some cuts are shorter than their video
    assert plain[0]["record"] == plain.records[0]
    with pytest.raises(UserInputError, match="crop probability"):
        GroundingDataset(layout, "train", with_audio=False, crop_prob=1.5)
