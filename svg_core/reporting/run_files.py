"""Where an archived run folder keeps its evaluations: ``eval/{stem}{seed}{suffix}.jsonl`` per seed.

Read by the tables of ``results.py`` and ``listening_table.py`` (kept apart from both so that
neither imports the other back).
"""

from __future__ import annotations

import re
from pathlib import Path


def seed_files(eval_dir: Path, stem: str, suffix: str) -> dict[int, Path]:
    """``{seed: path}`` of ``eval_dir/{stem}{seed}{suffix}.jsonl``."""
    pattern = re.compile(re.escape(stem) + r"(\d+)" + re.escape(suffix) + r"\.jsonl$")
    found = {}
    for path in sorted(Path(eval_dir).glob(f"{stem}*{suffix}.jsonl")):
        match = pattern.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return found
