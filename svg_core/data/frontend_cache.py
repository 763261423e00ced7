"""Cached frozen-encoder features for training a front-end model (``audio_frontend="whisper_base"``).

    python -m svg_core.data frontend-cache DIR --draws 4 --noise normal      # writes DIR/<default name>
    python -m svg_core.train --data DIR --model base --set audio_frontend=whisper_base ...  # reads it

Running Whisper base's encoder on every noisy training query every epoch costs ~40 ms per query on
one CPU core, more than the rest of a training step. The cache stores, per training query, K noise
draws of the encoder features (the dataset's own seeded noise: draw k is what
``GroundingDataset(seed).set_epoch(k).noisy_wave(i)`` gives), pooled as the model config's
``frontend_pool`` says, in float16. Training picks one draw per query and epoch, seeded by
``(seed, epoch, index)``. The val split gets the single draw its per-epoch validation uses
(seed + ``VAL_SEED_OFFSET``, epoch 0), so it is exactly the live result. The test split, the
evaluation command and the app never read the cache: they run the encoder live on the noisy wave.

Disk budget: 512 float16 values per frame at 50 / pool Hz, i.e. 25.6 kB per second of speech and
draw at pool 2 (51.2 kB unpooled). The synthetic queries (speech plus lead/trail silence) average
4.4 s (the demo bundle's 59 wavs), 113 kB per draw: **about 450 MB per 1000 training queries at
K = 4, pool 2** (900 MB unpooled), plus ~115 MB per 1000 val queries (one draw). The command
prints the measured figure of the folder it built.

Versioning: the file's ``version`` attribute records the encoder (name, pooling), the noise
config (preset, kinds, SNR range, noise source) and the benchmark (manifest seed, world,
generator version, extractor, counts, and the item count of every split). A run whose version
differs is refused with a one-line message naming the first differing field and the command that
rebuilds the cache (``--frontend-cache none`` encodes live instead). The extractor is part of the
benchmark's identity although the cached audio does not depend on it: a refeatured folder needs
a rebuilt cache (conservative, and cheap to reason about).

Resume: the encoding is written in parts of ``SHARD_QUERIES`` queries (``.<cache name>.parts/``
beside the cache, each part atomic); running the same command again after a stop keeps the
finished parts and encodes the rest. The cache file appears only when every part is done.

File layout (HDF5): attrs ``version`` and ``info`` (JSON); per cached split
``<split>/feat/<wav_name>`` float16 [K, T_e, 512], ``<split>/snr_db/<wav_name>`` float32 [K]
(nan when clean), ``<split>/span_sec/<wav_name>`` float32 [K, 2].
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

from svg_core.audio.noise import NoiseConfig
from svg_core.data.atomic_file import atomic_write
from svg_core.data.dataset import VAL_SEED_OFFSET, DatasetLayout, GroundingDataset
from svg_core.data.video_features import open_hdf5
from svg_core.errors import MissingInputError, UserInputError

CACHE_FORMAT = 1
CACHED_SPLITS = ("train", "val")


class StaleCacheError(UserInputError):
    """A front-end cache built for another encoder, noise config or benchmark."""


def default_cache_path(layout: DatasetLayout, audio_frontend: str, frontend_pool: int, noise_preset: str) -> Path:
    """``DIR/frontend_cache_<frontend>_pool<P>_<preset>.h5``: one file per front-end, pooling and preset."""
    return layout.root / f"frontend_cache_{audio_frontend}_pool{frontend_pool}_{noise_preset}.h5"


def benchmark_identity(layout: DatasetLayout) -> dict:
    """What identifies the build's speech: manifest seed, scene generator, counts; items per split.

    The video extractor is left out on purpose: ``synth refeature`` (or a world that differs only
    in its extractor, as worlds 3 and 4) keeps every wav, so the encoder features stay valid.
    """
    manifest = layout.manifest
    return {
        "seed": manifest.get("seed"),
        "generator_version": manifest.get("generator_version"),
        "counts": manifest.get("counts"),
        "split_items": {split: len(layout.records(split)[0]) for split in sorted(layout.annotations)},
    }


def noise_identity(noise: NoiseConfig | None) -> dict:
    """The noise config as the cache version records it (``{"preset": "clean"}`` for none)."""
    if noise is None or noise.preset == "clean":
        return {"preset": "clean"}
    prov = noise.provenance()
    return {"preset": noise.preset, "kinds": list(noise.kinds), "snr_db_range": [float(v) for v in noise.snr_db_range],
            "source": prov["source"], "dir": prov["dir"], "classes": prov["classes"]}


def cache_version(layout: DatasetLayout, audio_frontend: str, encoder_name: str, frontend_pool: int,
                  noise: NoiseConfig | None) -> dict:
    """The version a run needs; compared field by field with the file's (JSON-normalised)."""
    version = {"format": CACHE_FORMAT,
               "frontend": {"audio_frontend": audio_frontend, "encoder": encoder_name, "pool": int(frontend_pool)},
               "noise": noise_identity(noise), "benchmark": benchmark_identity(layout)}
    return json.loads(json.dumps(version))  # tuples -> lists, as read back from the file


def _first_difference(found, wanted, prefix: str = "") -> str | None:
    """``"noise.preset is 'large', this run needs 'normal'"`` for the first differing leaf, or None."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        for key in sorted(set(found) | set(wanted)):
            diff = _first_difference(found.get(key), wanted.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    if found != wanted:
        return f"{prefix.rstrip('.')} is {found!r}, this run needs {wanted!r}"
    return None


def rebuild_command(root: str | Path, version: dict) -> str:
    """The command that writes a cache of ``version`` for the dataset folder ``root``."""
    noise = version["noise"]
    return (f"python -m svg_core.data frontend-cache {root} --noise {noise['preset']} "
            f"--pool {version['frontend']['pool']}"
            + (f" --esc50 {noise['dir']}" if noise.get("source") == "esc50-folder" else ""))


class FrontendCache:
    """Reader of a cache file, checked against the version a run needs.

    Args:
        path: the HDF5 file.
        expected: :func:`cache_version` of the run; None skips the check (inspection only).
        root: the dataset folder, named in the rebuild command (default: the file's folder).

    Raises:
        MissingInputError: no such file. StaleCacheError: the version differs.
    """

    def __init__(self, path: str | Path, expected: dict | None = None, root: str | Path | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingInputError(f"front-end cache not found: {self.path} (build it with python -m svg_core.data "
                                    "frontend-cache DIR)")
        with open_hdf5(self.path) as handle:
            self.version = json.loads(handle.attrs.get("version", "{}"))
            self.info = json.loads(handle.attrs.get("info", "{}"))
            self.n_draws = {split: int(handle[split].attrs["draws"]) for split in CACHED_SPLITS if split in handle}
            self.seeds = {split: int(handle[split].attrs["seed"]) for split in self.n_draws}  # noise seed per split
        if expected is not None:
            diff = _first_difference(self.version, expected)
            if diff:
                raise StaleCacheError(
                    f"stale front-end cache {self.path}: {diff}; rebuild it with: "
                    f"{rebuild_command(root or self.path.parent, expected)} "
                    "(or pass --frontend-cache none to run the encoder live)")
        self._file: h5py.File | None = None

    def __getstate__(self):
        return {**self.__dict__, "_file": None}

    def _handle(self) -> h5py.File:
        if self._file is None:
            self._file = open_hdf5(self.path)
        return self._file

    def has_split(self, split: str) -> bool:
        """True when ``split`` was cached."""
        return split in self.n_draws

    def draw(self, split: str, wav_name: str, epoch: int, index: int, seed: int
             ) -> tuple[torch.Tensor, tuple[float, float], float]:
        """One cached draw of one query: the one of ``default_rng([seed, epoch, index])``.

        Returns:
            (float32 [T_e, 512], covered span in seconds, snr_db or nan when clean).
        """
        n_draws = self.n_draws.get(split)
        if n_draws is None:
            raise UserInputError(f"front-end cache {self.path} holds no {split!r} split (cached: {sorted(self.n_draws)})")
        group = self._handle()[split]
        if f"feat/{wav_name}" not in group:
            raise StaleCacheError(f"front-end cache {self.path} has no features for {wav_name!r} ({split}); rebuild it")
        k = int(np.random.default_rng([seed, epoch, index]).integers(n_draws)) if n_draws > 1 else 0
        feat = torch.from_numpy(group[f"feat/{wav_name}"][k].astype(np.float32))
        span = tuple(float(v) for v in group[f"span_sec/{wav_name}"][k])
        return feat, (span[0], span[1]), float(group[f"snr_db/{wav_name}"][k])


SHARD_QUERIES = 256  # queries per resumable part file: ~10 s of encoding each on one core
ENTRY_KINDS = ("feat", "span_sec", "snr_db")  # the datasets cached per wav, one group each


def _copy_entry(src: h5py.Group, dst: h5py.Group, wav_name: str) -> int:
    """Copy one wav's cached datasets (``ENTRY_KINDS``) from split group ``src`` to ``dst``.

    Returns:
        the bytes of its features (``feat``).
    """
    for kind in ENTRY_KINDS:
        src.copy(src[f"{kind}/{wav_name}"], dst.require_group(kind), name=wav_name)
    return src[f"feat/{wav_name}"].nbytes


def parts_dir(out_path: str | Path) -> Path:
    """Where an unfinished build keeps its finished part files: ``.<name>.parts`` beside the cache."""
    out_path = Path(out_path)
    return out_path.with_name(f".{out_path.name}.parts")


def _open_parts(out_path: Path, plan: dict) -> Path:
    """The parts folder for ``plan`` (version, draws, seeds, part size), emptied when it holds another plan."""
    folder = parts_dir(out_path)
    marker = folder / "plan.json"
    if folder.is_dir():
        try:
            same = json.loads(marker.read_text()) == plan
        except (OSError, ValueError):
            same = False
        if same:
            return folder
        shutil.rmtree(folder)  # parts of another encoder, noise or benchmark: of no use
    folder.mkdir(parents=True)
    marker.write_text(json.dumps(plan, sort_keys=True))
    return folder


def build_frontend_cache(layout: DatasetLayout, out_path: str | Path, features, audio_frontend: str,
                         noise: NoiseConfig | None, draws: int, seed: int = 0,
                         splits: tuple[str, ...] = CACHED_SPLITS, progress: bool = True,
                         shard_queries: int = SHARD_QUERIES) -> dict:
    """Encode every query of ``splits`` once per noise draw into a cache file; resumable.

    The queries are encoded in parts of ``shard_queries`` wavs, each written atomically to
    :func:`parts_dir` as soon as it is done; the cache file is assembled from the parts at the end
    (atomic write) and the parts removed. A build that was stopped resumes from its finished parts
    when run again with the same settings (the draw of query ``i`` depends only on its seed, draw
    and index, so the result is the same as one uninterrupted run); parts of other settings are
    discarded.

    Args:
        layout: the dataset folder.
        out_path: the HDF5 file to write.
        features: a :class:`svg_core.audio.whisper_encoder.SpeechFeatures` (``numpy(wave)``,
            ``pool``, ``describe()``).
        audio_frontend: the model-config value it serves ("whisper_base").
        noise: the training noise (None = clean: one draw, whatever ``draws`` says).
        draws: K, noise draws per training query (val always gets its one validation draw).
        seed: the training ``--seed``; val uses ``seed + VAL_SEED_OFFSET`` as training does.
        splits: subset of ("train", "val").
        shard_queries: wavs per part file.

    Returns:
        summary: ``queries`` and ``draws`` per split, ``bytes``, ``mb_per_1000_train_queries``,
        ``encode_ms_median`` (of the queries encoded by this call), ``resumed_queries`` (taken from
        parts of an earlier, stopped call), ``path``.
    """
    if draws < 1:
        raise UserInputError(f"--draws must be >= 1, found {draws}")
    if shard_queries < 1:
        raise UserInputError(f"shard_queries must be >= 1, found {shard_queries}")
    unknown = sorted(set(splits) - set(CACHED_SPLITS))
    if unknown:
        raise UserInputError(f"front-end caches hold {CACHED_SPLITS} only (test is always encoded live), found {unknown}")
    if not any(split in layout.annotations for split in splits):
        raise UserInputError(f"{layout.root} has no {' or '.join(splits)} split to cache "
                             f"(found {sorted(layout.annotations)}; test is always encoded live)")
    clean = noise is None or noise.preset == "clean"
    describe = features.describe()
    version = cache_version(layout, audio_frontend, describe["name"], features.pool, noise)
    out_path = Path(out_path)
    cached = [split for split in CACHED_SPLITS if split in splits and split in layout.annotations]
    k_draws = {split: 1 if clean or split == "val" else draws for split in cached}
    seeds = {split: seed + VAL_SEED_OFFSET if split == "val" else seed for split in cached}
    folder = _open_parts(out_path, {"version": version, "draws": k_draws, "seeds": seeds,
                                       "shard_queries": shard_queries})
    summary: dict = {"path": str(out_path), "queries": {}, "draws": dict(k_draws), "bytes": {}, "resumed_queries": 0}
    encode_ms: list[float] = []
    shards: dict[str, list[Path]] = {}

    for split in cached:
        ds = GroundingDataset(layout, split, noise=noise, seed=seeds[split], with_audio=True)
        first_index: dict[str, int] = {}  # a wav read by several items is encoded once, at its first item
        for index, record in enumerate(ds.records):
            if record.wav_name is not None:
                first_index.setdefault(record.wav_name, index)
        names = list(first_index)
        groups = [names[i:i + shard_queries] for i in range(0, len(names), shard_queries)]
        shards[split] = [folder / f"{split}_{g:05d}.h5" for g in range(len(groups))]
        summary["queries"][split], summary["bytes"][split] = len(names), 0
        bar = tqdm(total=len(names), desc=f"encode {split}", disable=not progress)
        for group_names, shard in zip(groups, shards[split]):
            if shard.is_file():
                summary["resumed_queries"] += len(group_names)
                bar.update(len(group_names))
                continue

            def write(tmp: str, group_names=group_names) -> None:
                with h5py.File(tmp, "w") as handle:
                    for wav_name in group_names:
                        feats, spans, snrs = [], [], []
                        for k in range(k_draws[split]):
                            ds.set_epoch(k)
                            wave, span, snr_db = ds.noisy_wave(first_index[wav_name])
                            began = time.perf_counter()
                            feats.append(features.numpy(wave).astype(np.float16))
                            encode_ms.append(1000 * (time.perf_counter() - began))
                            spans.append(span)
                            snrs.append(snr_db)
                        stack = np.stack(feats)  # [K, T_e, 512]
                        handle.create_dataset(f"feat/{wav_name}", data=stack, chunks=(1, *stack.shape[1:]))
                        handle.create_dataset(f"span_sec/{wav_name}", data=np.asarray(spans, np.float32))
                        handle.create_dataset(f"snr_db/{wav_name}", data=np.asarray(snrs, np.float32))
                        bar.update(1)

            atomic_write(shard, write)
        bar.close()

    def assemble(tmp: str) -> None:
        with h5py.File(tmp, "w") as handle:
            for split in cached:
                group = handle.create_group(split)
                group.attrs["draws"], group.attrs["seed"] = k_draws[split], seeds[split]
                for shard in tqdm(shards[split], desc=f"assemble {split}", disable=not progress):
                    with open_hdf5(shard) as part:
                        for wav_name in part["feat"] if "feat" in part else ():  # an empty part has none
                            summary["bytes"][split] += _copy_entry(part, group, wav_name)
            handle.attrs["version"] = json.dumps(version, sort_keys=True)
            handle.attrs["info"] = json.dumps({"encoder": describe, "noise_seed": seed, "draws": summary["draws"],
                                               "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    atomic_write(out_path, assemble)
    shutil.rmtree(folder)
    n_train = summary["queries"].get("train", 0)
    summary["mb_per_1000_train_queries"] = (summary["bytes"].get("train", 0) / n_train * 1000 / 1e6) if n_train else 0.0
    summary["encode_ms_median"] = float(np.median(encode_ms)) if encode_ms else 0.0
    summary["file_bytes"] = out_path.stat().st_size
    return summary


def _same_audio(a: Path, b: Path) -> bool:
    """True when two wav paths are the same file (a symlink into the source) or byte-equal (a copy)."""
    import filecmp

    return a.is_file() and b.is_file() and (os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False))


def subset_frontend_cache(src_path: str | Path, layout: DatasetLayout, out_path: str | Path,
                          src_root: str | Path | None = None, progress: bool = True) -> dict:
    """A cache for ``layout`` made of a parent build's cached entries, without running the encoder.

    For a folder whose train/val wavs are a subset of another build's (``synth crossengine`` keeps
    the other engines' queries as links): each kept wav's K draws are copied from ``src_path`` (the
    draws the parent's training would see). The new file's version is the parent's encoder and
    noise with ``layout``'s own benchmark identity; its ``info`` names the parent (``subset_of``).

    Args:
        src_path: the parent's cache file.
        layout: the dataset folder to cache for.
        out_path: the HDF5 file to write (atomic).
        src_root: the parent's dataset folder (default: the cache file's folder); its ``audio/``
            must hold the same wav files as ``layout``'s (checked per wav).

    Returns:
        ``{"path", "queries": {split: n}, "file_bytes", "subset_of"}``.

    Raises:
        MissingInputError: no parent cache. UserInputError: a wav of ``layout`` that the parent
        did not cache, or whose audio differs from the parent's.
    """
    src_path, out_path = Path(src_path), Path(out_path)
    parent = FrontendCache(src_path)  # version read, not checked: it is the parent build's
    src_audio = Path(src_root or src_path.parent) / "audio"
    frontend = parent.version.get("frontend", {})
    version = {**parent.version, "benchmark": json.loads(json.dumps(benchmark_identity(layout)))}
    summary: dict = {"path": str(out_path), "queries": {}, "subset_of": str(src_path)}

    def write(tmp: str) -> None:
        with open_hdf5(src_path) as src, h5py.File(tmp, "w") as dst:
            for split in CACHED_SPLITS:
                if split not in layout.annotations:
                    continue
                if split not in src:
                    raise UserInputError(f"{src_path} holds no {split!r} split to take entries from")
                group = dst.create_group(split)
                group.attrs["draws"], group.attrs["seed"] = src[split].attrs["draws"], src[split].attrs["seed"]
                names = sorted({r.wav_name for r in layout.records(split)[0] if r.wav_name is not None})
                for wav in tqdm(names, desc=f"subset {split}", disable=not progress):
                    if f"feat/{wav}" not in src[split]:
                        raise UserInputError(f"{src_path} has no {split} entry for {wav!r}: encode this folder "
                                             f"instead (python -m svg_core.data frontend-cache {layout.root})")
                    if not _same_audio(layout.audio_dir / wav, src_audio / wav):
                        raise UserInputError(f"{layout.audio_dir / wav} is not the parent's {src_audio / wav}: "
                                             "its cached features would not be this wav's")
                    _copy_entry(src[split], group, wav)
                summary["queries"][split] = len(names)
            dst.attrs["version"] = json.dumps(version, sort_keys=True)
            dst.attrs["info"] = json.dumps({**parent.info, "subset_of": str(src_path), "frontend": frontend,
                                            "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    atomic_write(out_path, write)
    summary["file_bytes"] = out_path.stat().st_size
    return summary
