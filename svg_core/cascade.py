"""Command line ``python -m svg_core.cascade``: the ASR-then-text cascade (code in ``svg_core.asr.cascade``)."""

import sys

from svg_core.asr.cascade import main

if __name__ == "__main__":
    sys.exit(main())
