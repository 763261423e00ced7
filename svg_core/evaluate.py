"""Command line ``python -m svg_core.evaluate``: evaluation of a checkpoint or a predictions file (code in ``svg_core.engine.evaluation``)."""

import sys

from svg_core.engine.evaluation import main

if __name__ == "__main__":
    sys.exit(main())
