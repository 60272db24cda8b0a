#!/usr/bin/env bash
# Set up .venv and run the tour on the embedded default (SQLite catalog + local object folder):
# create a registry, commit a labels table, relabel, commit again, diff, tag, export, verify.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
rm -rf demo-out && mkdir demo-out && cd demo-out
unset REGISTRY_HOME REGISTRY_DATABASE_URL REGISTRY_STORAGE_URL
export REGISTRY_ACTOR="${REGISTRY_ACTOR:-demo-annotator}"

run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

python ../scripts/make_demo_data.py .
run registry init
run registry dataset create street-signs --key sample_id --description "Street sign crops and their labels"
run registry commit street-signs labels-v1.parquet -m "Initial labeling round"
run registry tag street-signs@main v1
run registry commit street-signs relabel-round-2.csv --mode upsert -m "Relabel round 2: fix stop/yield confusion" \
  --author reviewer@example.com
run registry commit street-signs --mode upsert --delete-keys removed.csv -m "Drop blurry crops"
run registry tag street-signs@main v2
run registry log street-signs
run registry diff street-signs@v1 street-signs@v2 --rows 5
run registry schema street-signs
run registry show street-signs@v2
run registry export street-signs@v2 street-signs-v2.parquet
run registry verify
run registry dataset list
printf '\nPython: Registry.open(".registry").read("street-signs@v1") -> '
python -c 'from registry import Registry; t = Registry.open(".registry").read("street-signs@v1"); print(t.num_rows, "rows,", t.schema.names)'
