"""Shared pytest setup: one torch thread (tests are tiny; more threads only oversubscribe the CPU)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402

torch.set_num_threads(1)
