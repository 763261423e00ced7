"""svg_core: spoken video grounding (VGCL, ACM MM 2022) on CPU and GPU.

Public API (stable): ``from svg_core import Grounder, load_audio``. Subpackages, lowest layer first:

| package | owns |
|---|---|
| ``svg_core.data`` | ActivityNet Speech records, C3D feature readers, the dataset and batch dict, atomic files |
| ``svg_core.audio`` | audio I/O and log-Mel front-end, noise mixing, offline TTS |
| ``svg_core.models`` | one file per model family, each built from its config alone |
| ``svg_core.asr`` | speech recognisers and the ASR-then-text cascade |
| ``svg_core.engine`` | training loop, checkpoints, inference, evaluation, span decoding, ``Grounder`` |
| ``svg_core.synth`` | the synthetic ActivityNet-format benchmark |
| ``svg_core.reporting`` | results tables and plots, benchmarks, model cards |

The command lines are ``python -m svg_core.{train,evaluate,cascade,bench,results,data,synth}``.
The library never imports gradio; the demo lives in ``app/``.
"""

__version__ = "0.2.0"

__all__ = ["Grounder", "load_audio"]


def __getattr__(name: str):
    # Lazy: ``import svg_core`` stays light; torch loads only when these are asked for.
    if name == "Grounder":
        from svg_core.engine.predictor import Grounder

        return Grounder
    if name == "load_audio":
        from svg_core.audio.frontend import load_audio

        return load_audio
    raise AttributeError(f"module 'svg_core' has no attribute {name!r}")
