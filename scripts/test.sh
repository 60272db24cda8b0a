#!/usr/bin/env bash
# Set up .venv and run the whole test suite. PostgreSQL tests run when
# REGISTRY_TEST_POSTGRES_URL is set (CI sets it); elsewhere they skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser
exec .venv/bin/python -m pytest -n 2 "$@"
