"""Write a file so that readers see the old version or the new one, never half of it.

Checkpoints, training states, prediction files, the speech cache and the synthetic feature file
all go through :func:`atomic_write`. It lives here, and not in ``svg_core.checkpoint``, so that
writers that never touch a model (scoring, the synthetic builder) don't import torch for it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_name)`` on a temporary file next to ``path``, then move it into place.

    The temporary file lives in the same folder so that ``os.replace`` is a rename on one file
    system (atomic). If ``write`` raises, the temporary file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise
