"""svg_core: spoken video grounding (VGCL, ACM MM 2022) on CPU and GPU.

The library never imports gradio; the demo lives in ``app/``.
"""

__version__ = "0.1.0"
