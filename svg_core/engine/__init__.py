"""Engine: the training loop, the grounding training recipe, checkpoints, inference, evaluation and span decoding.

Submodules are imported by name (``svg_core.engine.checkpoint``); this package imports nothing
eagerly, so the torch-free metric code (``svg_core.engine.metrics``) stays light.
"""
