"""Shared pytest setup: one torch thread (tests are tiny; more threads only oversubscribe the CPU)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test starts with one intra-op thread, whatever the previous one set (``train
    --threads`` sets it process-wide); on 2 shared cores more threads only spin-wait."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


# Tests that need an optional system binary carry ``@pytest.mark.needs_binary("espeak-ng")``. Where
# it is missing they skip and name the apt package, except under SVG_REQUIRE_BINARIES=1 (.ci/run),
# where the same test fails: CI must run every test.
APT_PACKAGE = {"espeak-ng": "espeak-ng", "flite": "flite", "chromium": "chromium", "sox": "sox"}


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_binary(name): needs a system binary (skips, or fails under"
                                       " SVG_REQUIRE_BINARIES=1)")


def pytest_runtest_setup(item):
    import shutil

    for mark in item.iter_markers(name="needs_binary"):
        for name in mark.args:
            if shutil.which(name) is None and not os.path.exists(name):
                base = os.path.basename(name)
                message = f"needs {base}: install with apt-get install {APT_PACKAGE.get(base, base)}"
                if os.environ.get("SVG_REQUIRE_BINARIES") == "1":
                    pytest.fail(f"{message} (SVG_REQUIRE_BINARIES=1: CI runs every test)", pytrace=False)
                pytest.skip(message)
