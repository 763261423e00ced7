"""Command line ``python -m svg_core.bench``: speed benchmarks (code in ``svg_core.reporting.bench``)."""

import sys

from svg_core.reporting.bench import main

if __name__ == "__main__":
    sys.exit(main())
