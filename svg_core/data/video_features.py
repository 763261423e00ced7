"""C3D video features in both ActivityNet layouts, and resampling to the N_v grid.

Layouts:
- single file (the public release ``sub_activitynet_v1-3.c3d.hdf5``): ``f[video_id]["c3d_features"]``,
  shape (T, 500), one row per 8 frames;
- one file per video (the VGCL code): ``<dir>/<video_id>.h5`` with dataset ``"feature"``, (T, 500).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from svg_core.errors import MissingInputError, UserInputError

FEATURE_DIM = 500
SINGLE_FILE_KEY = "c3d_features"
PER_VIDEO_KEY = "feature"


class VideoFeatureError(UserInputError):
    """Raised for missing videos or unusable feature arrays."""


class VideoFeatureStore:
    """Read-only access to C3D features, whichever layout ``path`` has.

    Args:
        path: an HDF5 file (single-file layout) or a folder of ``<video_id>.h5`` files.
        feature_dim: expected feature size (500 for ActivityNet C3D).
        cache: keep arrays in memory after the first read (features are small: 500 floats
            per 8 frames).
    """

    def __init__(self, path: str | Path, feature_dim: int = FEATURE_DIM, cache: bool = True):
        self.path = Path(path)
        if not self.path.exists():
            raise MissingInputError(f"video features not found: {self.path}")
        self.feature_dim = feature_dim
        self.layout = "per_video" if self.path.is_dir() else "single_file"
        self._cache: dict[str, np.ndarray] | None = {} if cache else None
        self._file: h5py.File | None = None

    def _handle(self) -> h5py.File:
        # Opened lazily so that a store can be handed to DataLoader workers before use.
        if self._file is None:
            self._file = open_hdf5(self.path)
        return self._file

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None  # h5py handles do not cross process boundaries
        return state

    def video_ids(self) -> list[str]:
        """All video ids available."""
        if self.layout == "per_video":
            return sorted(p.stem for p in self.path.glob("*.h5"))
        return sorted(self._handle().keys())

    def __contains__(self, video_id: str) -> bool:
        if self.layout == "per_video":
            return (self.path / f"{video_id}.h5").exists()
        return video_id in self._handle()

    def get(self, video_id: str) -> np.ndarray:
        """Features of one video.

        Returns:
            float32 [T, feature_dim].

        Raises:
            VideoFeatureError: unknown video, wrong dimension, empty, or NaN/inf rows.
        """
        if self._cache is not None and video_id in self._cache:
            return self._cache[video_id]
        if self.layout == "per_video":
            file = self.path / f"{video_id}.h5"
            if not file.exists():
                raise VideoFeatureError(f"no features for video {video_id!r}: {file} does not exist")
            with open_hdf5(file) as handle:
                if PER_VIDEO_KEY not in handle:
                    raise VideoFeatureError(f"{file} has no dataset {PER_VIDEO_KEY!r} (keys: {list(handle.keys())})")
                feats = np.asarray(handle[PER_VIDEO_KEY][()], dtype=np.float32)
        else:
            handle = self._handle()
            if video_id not in handle:
                raise VideoFeatureError(f"no features for video {video_id!r} in {self.path}")
            group = handle[video_id]
            if isinstance(group, h5py.Dataset):
                feats = np.asarray(group[()], dtype=np.float32)
            elif SINGLE_FILE_KEY in group:
                feats = np.asarray(group[SINGLE_FILE_KEY][()], dtype=np.float32)
            else:
                raise VideoFeatureError(f"{self.path}[{video_id!r}] has no {SINGLE_FILE_KEY!r} dataset")
        feats = validate_features(feats, self.feature_dim, video_id)
        if self._cache is not None:
            self._cache[video_id] = feats
        return feats

    def close(self) -> None:
        """Close the HDF5 handle, if open."""
        if self._file is not None:
            self._file.close()
            self._file = None


def open_hdf5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only; a truncated or non-HDF5 file is a :class:`VideoFeatureError`."""
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise VideoFeatureError(f"{path} is not a readable HDF5 file ({str(err).split(';')[0]}); "
                                "re-extract or re-download it") from None


# One C3D row covers 8 frames: 0.27-0.32 s at 25-30 fps (ActivityNet), 1 s in the synthetic world.
# A duration far outside that, per row, means the annotation and the features disagree.
MIN_SEC_PER_ROW, MAX_SEC_PER_ROW = 0.02, 60.0  # lenient: features resampled to 64 rows still pass


def check_duration(duration_sec: float, n_rows: int, video_id: str = "?") -> None:
    """Refuse a duration that the feature length cannot carry (e.g. 1e9 s over 126 rows).

    Raises:
        VideoFeatureError: duration not finite and positive, or outside
            [MIN_SEC_PER_ROW, MAX_SEC_PER_ROW] seconds per feature row.
    """
    where = f"video {video_id!r}: " if video_id != "?" else ""
    if not (np.isfinite(duration_sec) and duration_sec > 0):
        raise VideoFeatureError(f"{where}duration_sec must be a positive number of seconds, found {duration_sec!r}")
    per_row = duration_sec / max(n_rows, 1)
    if not MIN_SEC_PER_ROW <= per_row <= MAX_SEC_PER_ROW:
        raise VideoFeatureError(
            f"{where}duration_sec {duration_sec:g} s over {n_rows} feature rows is {per_row:.3g} s per row "
            f"(expected {MIN_SEC_PER_ROW}-{MAX_SEC_PER_ROW}); the annotation's duration and the features disagree")


def validate_features(feats: np.ndarray, feature_dim: int = FEATURE_DIM, video_id: str = "?") -> np.ndarray:
    """Check shape [T, feature_dim] with T >= 1 and finite values; returns float32."""
    feats = np.asarray(feats, dtype=np.float32)
    where = f"video {video_id!r}: " if video_id != "?" else "video features: "
    if feats.ndim != 2 or feats.shape[1] != feature_dim:
        raise VideoFeatureError(
            f"{where}expected features of shape (T, {feature_dim}), found {tuple(feats.shape)}"
        )
    if feats.shape[0] == 0:
        raise VideoFeatureError(f"{where}feature array has no rows")
    bad = ~np.isfinite(feats).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise VideoFeatureError(
            f"{where}{rows.size} feature rows contain NaN or inf (first: row {rows[0]})"
        )
    return feats


def resample_features(feats: np.ndarray, n_frames: int = 64) -> np.ndarray:
    """Uniform-bin averaging of T rows to ``n_frames`` rows.

    Bin j covers rows [round(j*T/n), round((j+1)*T/n)); an empty bin (T < n) takes the single
    row at floor(j*T/n). Unlike the released code (method-notes 1.2) the last input row is
    averaged in like every other row.

    Args:
        feats: [T, D].
        n_frames: output length N_v.

    Returns:
        float32 [n_frames, D].
    """
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise VideoFeatureError(f"expected features of shape (T>=1, D), found {tuple(feats.shape)}")
    total = feats.shape[0]
    edges = np.round(np.linspace(0, total, n_frames + 1)).astype(np.int64)
    # Prefix sums make every bin mean O(1) (vectorised; no per-bin Python loop).
    prefix = np.concatenate([np.zeros((1, feats.shape[1]), np.float64), np.cumsum(feats, axis=0, dtype=np.float64)])
    counts = edges[1:] - edges[:-1]
    sums = prefix[edges[1:]] - prefix[edges[:-1]]
    out = np.empty((n_frames, feats.shape[1]), np.float32)
    full = counts > 0
    out[full] = (sums[full] / counts[full, None]).astype(np.float32)
    if (~full).any():
        single = np.minimum(np.floor(np.arange(n_frames) * total / n_frames).astype(np.int64), total - 1)
        out[~full] = feats[single[~full]]
    return out
