"""The needs_binary marker: skip naming the package, or fail under SVG_REQUIRE_BINARIES=1 (CI)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TEST = '''
import pytest

@pytest.mark.needs_binary("no-such-binary-svg")
def test_needs_it():
    pass
'''


def run(tmp_path, env_value):
    import os

    (tmp_path / "test_needs.py").write_text(TEST)
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    env = {**os.environ, "SVG_REQUIRE_BINARIES": env_value}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_missing_binary_skips_with_the_package_to_install(tmp_path):
    out = run(tmp_path, "0")
    assert out.returncode == 0 and "1 skipped" in out.stdout
    assert "install with apt-get install no-such-binary-svg" in out.stdout


def test_missing_binary_fails_under_ci(tmp_path):
    out = run(tmp_path, "1")
    assert out.returncode == 1 and "1 error" in out.stdout and "CI runs every test" in out.stdout  # fails in setup
