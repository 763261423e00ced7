"""Synthetic ActivityNet-format benchmark: rendered videos, pixel features, many-voice spoken queries.

``python -m svg_core.synth build --out DIR`` writes a dataset folder in the layout of
docs/ARCHITECTURE.md; ``stats DIR`` prints its statistics beside ActivityNet Speech's and the
blind-prior baseline; ``bundle --out assets/demo_bundle`` writes the committed demo bundle.

Modules: ``scene`` (world and event sampling), ``render`` (pixels), ``captions`` (grammar),
``extractor`` (the fixed 500-d features), ``speech`` (voices per split), ``build``, ``bundle``,
``stats``, ``new_scene`` (one video no build contains, rendered on demand for the app).
"""

from svg_core.synth.build import BuildConfig, build, plan_video

__all__ = ["BuildConfig", "build", "plan_video"]
