#!/usr/bin/env bash
# Set up (if needed) and start the demo on http://127.0.0.1:7860. Extra arguments go to app/app.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec .venv/bin/python app/app.py "$@"
