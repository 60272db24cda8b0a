#!/usr/bin/env bash
# Create .venv (once) and install the registry with its development extras into it.
# Usage: bash scripts/setup.sh [--with-browser]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e ".[dev]"
# Label Studio (for its live test and fixtures) in its own venv under ~/.cache/dataset-registry/, reused by later runs.
python3 scripts/label_studio_server.py --ensure-venv >/dev/null \
  || echo "setup: could not install Label Studio; its live test will skip (and fail under CI=true)" >&2
# With --with-browser (scripts/test.sh): Debian's Chromium for the console's end-to-end tests
# (Playwright never downloads a browser here). The demo and ordinary set-ups do not need it.
if [ "${1:-}" = "--with-browser" ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null \
   && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "setup: could not install chromium; the console tests will skip (and fail under CI=true)" >&2
fi
# Training-read tools (torch, datasets, Ray, pandas, polars, pycocotools): their own script, see its header.
bash scripts/setup_training.sh
