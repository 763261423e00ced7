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


# --- shared tiny model configs (imported as ``from tests.conftest import TINY, TINY_CPC, tiny_configs``) ---
# The small presets shrunk further so that a forward/backward takes milliseconds on one thread.
TINY = dict(
    model_dim=64, chunk_num=2, attn_layers=1, davenet1_stem=32, davenet1_dims=(32, 64), audio_gru_dim=64,
    davenet2_stem=64, davenet2_dims=(64, 64), davenet2_blocks=(1, 1), audio_kernel=5,
)  # fmt: skip
TINY_CPC = dict(enc_hidden=32, z_dim=32, c_dim=32, video_dim=32, video_ff_dim=64, video_layers=1)


def tiny_configs() -> dict[str, object]:
    """One tiny config per family/variant (the small presets shrunk further for test speed)."""
    from svg_core.models import BaseConfig, CPCConfig, TextConfig, VSLNetConfig, build_vocab
    from tests.model_batches import SENTENCES

    return {
        "base": BaseConfig.small(**TINY),  # audio_subsample = 4, the new-config default
        "base_every_frame": BaseConfig.small(**TINY, audio_subsample=1),  # the v2 front-end of the checkpoints
        "base_released_options": BaseConfig.small(
            **TINY, head_rnn="lstm", head_bidirectional=True, boundary_loss="kl", video_rnn=False
        ),
        "vslnet": VSLNetConfig.small(**TINY),
        "base_vgcl": BaseConfig.small(**TINY, cpc=CPCConfig.small(**TINY_CPC)),
        "text": TextConfig.small(model_dim=64, chunk_num=2, attn_layers=1, vocab=build_vocab(SENTENCES)),
    }


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory):
    """A 4-video, 2-queries-per-video dataset folder (tests.fixtures_build), built once per session."""
    from tests.fixtures_build import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_shared"), n_videos=4, queries_per_video=2, seed=0)
