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
