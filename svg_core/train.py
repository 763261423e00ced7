"""Command line ``python -m svg_core.train``: the grounding training recipe (code in ``svg_core.engine.training``)."""

import sys

from svg_core.engine.training import main

if __name__ == "__main__":
    sys.exit(main())
