#!/usr/bin/env python
"""What the hardening of issue 22 costs: input checks on every read of a file, and verify's cross-check.

Run ``python bench/hardening_bench.py [--rows 1000000] [--snapshots 200] [--out bench/results/hardening.md]``.
Each figure is a ratio to a baseline measured in the same run (median of ``--reps``):

- JSON lines: ``read_table_file`` (the nesting pre-scan, the limits, column checks and full
  validation) vs. plain ``pyarrow.json.read_json`` of the same file;
- Parquet: ``read_table_file`` (footer limits, column checks, full validation) vs. ``pq.read_table``;
- CSV: ``read_table_file`` vs. ``pyarrow.csv.read_csv``;
- verify: ``registry verify`` of a registry with ``--snapshots`` commits (object hashes, ids, audit
  chain and the catalog cross-check) vs. the same verify without the cross-check and chain check.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from registry import Registry
from registry.context import create_home
from registry.snapshots import verify as verify_module
from registry.snapshots.inputs import InputLimits
from registry.snapshots.tables import read_table_file, write_table_file


def _median(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    return pa.table({"id": np.arange(rows), "label": pa.array([f"class-{i % 17}" for i in range(rows)]),
                     "score": rng.random(rows), "tags": pa.array([["a", "b"]] * rows)})


def bench_inputs(folder: Path, rows: int, reps: int) -> list[dict[str, object]]:
    table = _table(rows)
    limits = InputLimits()
    results = []
    for suffix, baseline in ((".jsonl", pajson.read_json), (".parquet", pq.read_table), (".csv", pacsv.read_csv)):
        source = table.drop_columns(["tags"]) if suffix == ".csv" else table
        path = folder / f"rows{suffix}"
        write_table_file(source, path)
        plain = _median(lambda p=path, b=baseline: b(p), reps)  # type: ignore[misc]
        checked = _median(lambda p=path: read_table_file(p, limits), reps)  # type: ignore[misc]
        results.append({"input": suffix[1:], "rows": rows, "bytes": path.stat().st_size, "baseline_s": plain,
                        "checked_s": checked, "ratio": checked / plain})
    return results


def bench_verify(folder: Path, snapshots: int, reps: int) -> dict[str, object]:
    home = create_home(folder / "home").home
    with Registry.open(home) as reg:
        reg.create_dataset("signs", "id")
        for i in range(snapshots):
            reg.commit("signs", pa.table({"id": [i % 50, 1000 + i], "label": [f"v{i}", "x"]}), mode="upsert")
            if i % 25 == 0:
                reg.tag("signs@main", f"t{i}")
        full = _median(lambda: verify_module.verify(reg.ctx), reps)
        report = verify_module.verify(reg.ctx)
        assert report.ok, report.problems
        original = verify_module._against_audit
        verify_module._against_audit = lambda _ctx, _name: []  # type: ignore[assignment]
        try:
            hashes_only = _median(lambda: verify_module.verify(reg.ctx), reps)
        finally:
            verify_module._against_audit = original
    return {"snapshots": snapshots, "hashes_only_s": hashes_only, "with_crosscheck_s": full,
            "ratio": full / hashes_only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hardening-bench-") as scratch:
        inputs = bench_inputs(Path(scratch), args.rows, args.reps)
        verify = bench_verify(Path(scratch), args.snapshots, args.reps)
    lines = [f"# Hardening costs ({platform.node()}, {time.strftime('%Y-%m-%d')})", "",
             f"`python bench/hardening_bench.py --rows {args.rows} --snapshots {args.snapshots} --reps {args.reps}`",
             "", "| input | rows | file bytes | plain pyarrow s | read_table_file s | ratio |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['input']} | {r['rows']:,} | {r['bytes']:,} | {r['baseline_s']:.3f} | {r['checked_s']:.3f} | "
              f"{r['ratio']:.2f}x |" for r in inputs]
    lines += ["", "| verify | snapshots | hashes only s | with audit chain + cross-check s | ratio |",
              "|---|---|---|---|---|",
              f"| signs | {verify['snapshots']} | {verify['hashes_only_s']:.3f} | {verify['with_crosscheck_s']:.3f} | "
              f"{verify['ratio']:.2f}x |"]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
        args.out.with_suffix(".json").write_text(json.dumps({"inputs": inputs, "verify": verify}, indent=2) + "\n")


if __name__ == "__main__":
    main()
