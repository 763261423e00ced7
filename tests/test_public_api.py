"""The stable public API and the package layout (issue: architecture)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import svg_core

ROOT = Path(__file__).resolve().parents[1]
CLIS = ["train", "evaluate", "cascade", "bench", "results", "data", "synth", "search", "reporting.runs"]


def test_readme_api_example_runs():
    from svg_core import Grounder, load_audio

    grounder = Grounder.from_checkpoint(ROOT / "checkpoints" / "vgcl_full")
    wave = load_audio(next((ROOT / "assets" / "demo_bundle" / "audio").glob("*.wav")))
    out = grounder.localize(np.zeros((40, 500), np.float32), duration_sec=120.0, audio=wave)
    assert 0.0 <= out["start_sec"] < out["end_sec"] <= 120.0


def test_import_svg_core_is_light():
    code = "import sys, svg_core; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", CLIS)
def test_command_lines_keep_their_names(name):
    out = subprocess.run([sys.executable, "-m", f"svg_core.{name}", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()


def test_layout_few_flat_modules_and_documented_subpackages():
    flat = sorted(p.stem for p in (ROOT / "svg_core").glob("*.py") if p.stem != "__init__")
    assert len(flat) <= 6, flat
    for info in pkgutil.iter_modules(svg_core.__path__):
        if info.ispkg:
            pkg = importlib.import_module(f"svg_core.{info.name}")
            assert pkg.__doc__ and pkg.__doc__.strip(), f"svg_core.{info.name} has no docstring"


def test_no_source_file_over_600_lines():
    long = [(str(p.relative_to(ROOT)), n) for d in ("svg_core", "app") for p in (ROOT / d).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600]
    assert not long, long


def test_entry_modules_are_thin():
    # Each flat CLI module only forwards to the main() of the module that owns the code.
    for name in ["train", "evaluate", "cascade", "bench", "results"]:
        tree = ast.parse((ROOT / "svg_core" / f"{name}.py").read_text(encoding="utf-8"))
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert not defs, f"svg_core/{name}.py defines {[d.name for d in defs]}"
