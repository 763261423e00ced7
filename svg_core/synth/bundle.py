"""The committed demo bundle: the first test-split videos of the default build, with mp4s.

Because every video is planned from ``default_rng([seed, index])`` alone, these videos, their
wavs and annotations are identical to the same videos of ``python -m svg_core.synth build --out
DIR`` with the same seed (see ``build.py``), and so are the features when both use worker
processes (one BLAS thread each); otherwise the features agree to float rounding.
"""

from __future__ import annotations

from pathlib import Path

from svg_core.synth.build import BuildConfig, build, split_of
from svg_core.synth.worlds import DEFAULT_WORLD

MAX_BUNDLE_BYTES = 30 * 1024 * 1024

README = """# Demo bundle (synthetic)

{n} test-split videos of the synthetic ActivityNet-format benchmark (`svg_core/synth`), with
their mp4 videos (H.264, {size}x{size}, {fps:g} fps), 500-d pixel features
(`sub_activitynet_v1-3.c3d.hdf5`), spoken queries (`audio/*.wav`, 16 kHz, test-split voices that
no training split uses) and annotations (`new_test_data.json`, ActivityNet Speech 5-field
items). `scenes.json` describes each scene and names the voice of each wav; `manifest.json`
marks the data as synthetic. The app opens this folder by default.

World {world} (`svg_core/synth/worlds.py`). These are videos {first} .. {last} of the default build: the first {n} videos whose split is
test, for seed {seed}. Rebuild with:

    python -m svg_core.synth bundle --out assets/demo_bundle --videos {n} --seed {seed} --world {world} --overwrite

Annotations, wavs and mp4s come out byte-identical to the same videos of
`python -m svg_core.synth build --out DIR --seed {seed} --world {world}`; the features too when both runs use
worker processes (`--workers 2`, one BLAS thread each), and otherwise agree to float rounding
(~1e-16: the QR behind the extractor's fixed mixing matrix depends on the BLAS thread count).

Everything here is generated; nothing comes from ActivityNet. Total size {mb:.1f} MB.
"""


def first_test_indices(seed: int, n: int, world: int = DEFAULT_WORLD) -> list[int]:
    """Indices of the first ``n`` test-split videos for ``seed`` in ``world``."""
    out, i = [], 0
    while len(out) < n:
        if split_of(seed, i, world) == "test":
            out.append(i)
        i += 1
    return out


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def build_bundle(out_dir: str | Path, n_videos: int = 16, seed: int = 0, workers: int = 2,
                 overwrite: bool = False, progress: bool = True, world: int = DEFAULT_WORLD) -> dict:
    """Build the demo bundle into ``out_dir`` and write its README; raises if over 30 MB."""
    if n_videos < 1:
        raise ValueError(f"a bundle needs at least one video, found {n_videos}")
    out = Path(out_dir)
    indices = first_test_indices(seed, n_videos, world)
    cfg = BuildConfig(out, n_videos=max(indices) + 1, seed=seed, workers=workers, mp4="all",
                      video_indices=indices, overwrite=overwrite, world=world)
    manifest = build(cfg, progress=progress)
    (out / "BUILD_DONE").unlink(missing_ok=True)  # holds a wall time: keep the committed files stable
    size = folder_bytes(out)
    (out / "README.md").write_text(README.format(
        n=n_videos, size=cfg.frame_size, fps=cfg.fps, first=indices[0], last=indices[-1], seed=seed, world=world,
        mb=size / 2**20))
    if size > MAX_BUNDLE_BYTES:
        raise ValueError(f"demo bundle is {size / 2**20:.1f} MB, over the 30 MB limit; use fewer videos")
    return manifest
