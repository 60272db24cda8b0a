#!/usr/bin/env bash
# The tools the training-read tests drive (docs/training.md): the [torch], [hf] and [ray] extras plus
# pandas, polars and pycocotools (which checks our COCO exports), installed into .venv (from pip's
# cache after the first run: about 15 s). torch is pinned to the CPU build this machine keeps on disk;
# an unpinned torch would download several GB of CUDA wheels. REGISTRY_TORCH_SPEC overrides the pin.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_SPEC="${REGISTRY_TORCH_SPEC:-torch==2.13.0}"
if ! log=$(.venv/bin/python -m pip install --quiet -e ".[torch,hf,ray]" "$TORCH_SPEC" pandas polars pycocotools 2>&1); then
  echo "$log" | grep -v "^WARNING: Location" >&2
  exit 1
fi
.venv/bin/python - "$TORCH_SPEC" <<'PY'
import sys

import torch

wanted = sys.argv[1].partition("==")[2]
if wanted and not torch.__version__.startswith(wanted):
    sys.exit(f"setup_training: torch {torch.__version__} is installed, {wanted} was asked for")
PY
