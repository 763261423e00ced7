"""C3D features: both HDF5 layouts, resampling, and bad feature files."""

import h5py
import numpy as np
import pytest

from svg_core.data.video_features import VideoFeatureError, VideoFeatureStore, resample_features


@pytest.fixture
def feats():
    return np.random.default_rng(0).standard_normal((37, 500)).astype(np.float32)


def test_single_file_layout(tmp_path, feats):
    path = tmp_path / "sub_activitynet_v1-3.c3d.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("v_x").create_dataset("c3d_features", data=feats.astype(np.float64))
    store = VideoFeatureStore(path)
    assert store.layout == "single_file" and store.video_ids() == ["v_x"] and "v_x" in store
    got = store.get("v_x")
    assert got.dtype == np.float32 and np.allclose(got, feats)


def test_per_video_layout(tmp_path, feats):
    folder = tmp_path / "features"
    folder.mkdir()
    with h5py.File(folder / "v_y.h5", "w") as f:
        f.create_dataset("feature", data=feats)
    store = VideoFeatureStore(folder)
    assert store.layout == "per_video" and store.video_ids() == ["v_y"]
    assert np.allclose(store.get("v_y"), feats)


def test_missing_video_and_file(tmp_path, feats):
    with pytest.raises(FileNotFoundError):
        VideoFeatureStore(tmp_path / "nope.hdf5")
    path = tmp_path / "f.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("v_x").create_dataset("c3d_features", data=feats)
    with pytest.raises(VideoFeatureError, match="no features for video 'v_missing'"):
        VideoFeatureStore(path).get("v_missing")
    folder = tmp_path / "per"
    folder.mkdir()
    with pytest.raises(VideoFeatureError, match="does not exist"):
        VideoFeatureStore(folder).get("v_missing")


def test_wrong_dimension_and_nan_rows(tmp_path, feats):
    path = tmp_path / "f.hdf5"
    bad = feats.copy()
    bad[5, 3] = np.nan
    with h5py.File(path, "w") as f:
        f.create_group("v_dim").create_dataset("c3d_features", data=feats[:, :400])
        f.create_group("v_nan").create_dataset("c3d_features", data=bad)
        inf = feats.copy()
        inf[0, 0] = np.inf
        f.create_group("v_inf").create_dataset("c3d_features", data=inf)
    store = VideoFeatureStore(path)
    with pytest.raises(VideoFeatureError, match=r"shape \(T, 500\), found \(37, 400\)"):
        store.get("v_dim")
    with pytest.raises(VideoFeatureError, match="NaN or inf .*row 5"):
        store.get("v_nan")
    with pytest.raises(VideoFeatureError, match="NaN or inf"):
        store.get("v_inf")


def test_resample_uniform_bins():
    x = np.arange(128, dtype=np.float32)[:, None].repeat(3, axis=1)
    out = resample_features(x, 64)
    assert out.shape == (64, 3)
    assert np.allclose(out[:, 0], np.arange(64) * 2 + 0.5)  # mean of rows (2j, 2j+1)
    assert out[-1, 0] == pytest.approx(126.5)  # the last row is averaged in (released code drops it)


def test_resample_short_and_uneven():
    short = np.arange(10, dtype=np.float32)[:, None]
    out = resample_features(short, 64)
    assert out.shape == (64, 1)
    assert set(out[:, 0].tolist()) == set(range(10))  # T < N: repeated single rows, in order
    assert np.all(np.diff(out[:, 0]) >= 0)
    uneven = np.random.default_rng(1).standard_normal((201, 4)).astype(np.float32)
    out = resample_features(uneven, 64)
    assert np.allclose(out.mean(), uneven.mean(), atol=0.05)
    with pytest.raises(VideoFeatureError):
        resample_features(np.zeros((0, 500)), 64)
