"""Shared by the training-read tests: optional tools (skip locally, fail under ``CI=true``) and a
dataset whose snapshot has several layers with upserted and deleted rows, whose gate passes."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import pyarrow as pa
import pytest

from registry import Registry

PASSING = "checks:\n  - check: row_count\n    min: 1\n"
BLOCKING = "checks:\n  - check: row_count\n    name: huge\n    min: 100000000\n"


def need(module: str) -> ModuleType:
    """Import ``module`` (an optional extra), or skip saying how to install it; under ``CI=true`` a
    missing module fails, since ``scripts/setup.sh`` installs the training extras."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"{module} is not installed ({exc}); `bash scripts/setup.sh` installs the training extras"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the training-read tests: {reason}")
        pytest.skip(reason, allow_module_level=True)


def rows(n: int, start: int = 0, version: float = 0.0) -> pa.Table:
    """``n`` rows keyed ``idx`` from ``start``; ``value`` tells which commit wrote the row."""
    idx = np.arange(start, start + n, dtype=np.int64)
    return pa.table({"idx": idx, "value": idx.astype(np.float64) + version,
                     "label": pa.array([f"c{i % 7}" for i in idx.tolist()])})


def churned(reg: Registry, name: str = "churn", base: int = 3000, policy: str = PASSING) -> pa.Table:
    """``name`` after a base commit, two upserts (changed and new rows) and a delete, with a gate that
    passes (or ``policy``'s verdict); returns its rows as ``Registry.read`` gives them."""
    reg.create_dataset(name, "idx")
    reg.commit(name, rows(base), message="base")
    reg.commit(name, rows(400, start=base - 200, version=0.5), mode="upsert", message="change 200, add 200")
    reg.commit(name, None, mode="upsert", delete_keys=pa.table({"idx": np.arange(10, 160, dtype=np.int64)}),
               message="delete 150")
    reg.commit(name, rows(50, start=base - 25, version=0.25), mode="upsert", message="change again")
    reg.set_policy(name, policy)
    reg.qa_run(name)
    return reg.read(name)


def key_values(table: pa.Table) -> list[int]:
    return sorted(table.column("idx").to_pylist())
