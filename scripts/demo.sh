#!/usr/bin/env bash
# Set up .venv and run the tour on the embedded default (SQLite catalog + local object folder):
# create a registry, commit a labels table, relabel, commit again, diff, tag, export, verify,
# import two Label Studio exports (label diff, history, blame), set a QA policy, gate and pin,
# then read the audit log, verify its hash chain against a checkpoint and query it with SQL;
# finally serve it over HTTP and run the same commands remotely (REGISTRY_URL) with a CI token.
set -euo pipefail
# DEMO_OUT (default demo-out) is the folder it works in; DEMO_SKIP_SETUP=1 uses .venv as it is.
cd "$(dirname "$0")/.."
ROOT="$PWD"
[ "${DEMO_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
export PATH="$ROOT/.venv/bin:$PATH"
OUT="${DEMO_OUT:-demo-out}"
rm -rf "$OUT" && mkdir -p "$OUT" && cd "$OUT"
unset REGISTRY_HOME REGISTRY_DATABASE_URL REGISTRY_STORAGE_URL
export REGISTRY_ACTOR="${REGISTRY_ACTOR:-demo-annotator}"

# Print a command as it can be pasted back into a shell (each argument quoted where it needs it), then run it.
quoted() {
  local arg out=()
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then out+=("$arg"); else out+=("'${arg//\'/\'\\\'\'}'"); fi
  done
  printf '%s' "${out[*]}"
}
run() { printf '\n\033[1m$ %s\033[0m\n' "$(quoted "$@")"; "$@"; }

python "$ROOT/scripts/make_demo_data.py" .
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
run registry policy set street-signs qa-policy.yaml
run registry qa run street-signs@v2
run registry gate check street-signs@v2
run registry pin street-signs@v2 --job train-resnet
run registry pull --lockfile registry.lock pulled
run registry lineage street-signs@v1 --downstream
run registry import label-studio sign-review label-studio-v1.json --key image --guideline-version 2026-11
run registry tag sign-review@main v1
run registry import label-studio sign-review label-studio-v2.json --key image --guideline-version 2026-11b
run registry log sign-review
run registry diff sign-review@v1 sign-review@main --labels --rows 5
run registry history sign-review s3://signs/1.jpg
run registry blame sign-review --limit 5
run registry audit log --dataset street-signs
run registry audit checkpoint --out audit-checkpoint.json
run registry audit verify --checkpoint audit-checkpoint.json
run registry query "SELECT actor, action, count(*) AS events FROM audit_log GROUP BY ALL ORDER BY events DESC"
run registry query "SELECT label, count(*) AS n FROM data GROUP BY label ORDER BY n DESC LIMIT 5" --dataset street-signs@v2
printf '\nPython: Registry.open(".registry").read("street-signs@v1") -> '
python -c 'from registry import Registry; t = Registry.open(".registry").read("street-signs@v1"); print(t.num_rows, "rows,", t.schema.names)'

printf '\n\033[1m--- the same registry over HTTP ---\033[0m\n'
PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '\n\033[1m$ %s\033[0m\n' "registry token create --name demo-ci --role ci --json > ci-token.json"
registry token create --name demo-ci --role ci --json > ci-token.json
registry serve --port "$PORT" > serve.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
python - "$PORT" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=1)
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("registry serve did not become ready; see serve.log in the demo folder")
PY
export REGISTRY_URL="http://127.0.0.1:$PORT"
REGISTRY_TOKEN=$(python -c 'import json; print(json.load(open("ci-token.json"))["token"])')
export REGISTRY_TOKEN
printf 'serving on %s (API docs %s/docs, console %s/ui/)\n' "$REGISTRY_URL" "$REGISTRY_URL" "$REGISTRY_URL"
run registry gate check street-signs@v2
run registry log street-signs --limit 2
set +e
run registry commit street-signs labels-v1.parquet -m "a ci token may not commit"
echo "exit code $? (2: the role may not commit; the refusal is in the audit log)"
set -e
unset REGISTRY_URL REGISTRY_TOKEN
run registry audit log --action request.denied

# --- The labeling loop against a live Label Studio (docs/labeling-loop.md); skipped, with how to try it,
# when Label Studio's venv is absent. Self-contained: its own Label Studio server and registry serve.
printf '\n\033[1m--- the labeling loop: live sync from Label Studio, webhook, requeue ---\033[0m\n'
python "$ROOT/scripts/demo_labeling_loop.py"
