"""Command line ``python -m svg_core.results``: RESULTS.md tables from logged runs (code in ``svg_core.reporting.results``)."""

import sys

from svg_core.reporting.results import main

if __name__ == "__main__":
    sys.exit(main())
