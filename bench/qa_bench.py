#!/usr/bin/env python
"""QA benchmark: ``qa run`` with every check, and ``registry gate check`` as a whole process.

Run ``python bench/qa_bench.py [--rows 10000000] [--gold 100000] [--records 1000000]``. It builds, in
a temporary registry home: a labels snapshot of ``--rows`` rows (v1, passed), a v2 with 5,000
relabels (the snapshot evaluated, so parent and last-passed comparisons do real work), a gold
dataset of ``--gold`` rows and ``--records`` annotation records in long form (4 ratings per item).

Goals: ``qa run`` <= 15 s on 10M rows; ``gate check`` <= 1 s wall for the whole process. Each is
also reported against a baseline measured in the same run: ``qa run`` against reading the
snapshot into Arrow, ``gate check`` against ``python -c pass`` and ``registry --version``.
Results go to ``bench/results/qa.md`` and ``qa.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml
from core_bench import make_ids  # bench/ is on sys.path when this script runs

from registry import Registry

N_CLASSES = 20
N_ANNOTATORS = 200
RATINGS_PER_ITEM = 4
RELABELED = 5_000
CLASSES = pa.array([f"class_{i:02d}" for i in range(N_CLASSES)], pa.string())
ANNOTATORS = pa.array([f"annotator_{i:03d}" for i in range(N_ANNOTATORS)], pa.string())
ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    sys.stderr.write(f"[qa_bench {time.strftime('%H:%M:%S')}] {message}\n")


def labels_table(n: int, labels: np.ndarray, rng: np.random.Generator) -> pa.Table:
    return pa.table({
        "sample_id": make_ids(np.arange(n)),
        "label": CLASSES.take(pa.array(labels)),
        "annotator_id": ANNOTATORS.take(pa.array(rng.integers(0, N_ANNOTATORS, n))),
        "confidence": pa.array(rng.random(n, dtype=np.float32)),
    })


def records_table(n_records: int, truth: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """``n_records`` ratings, ``RATINGS_PER_ITEM`` per item, by distinct annotators; 80% agree with truth."""
    items = n_records // RATINGS_PER_ITEM
    item = np.repeat(np.arange(items), RATINGS_PER_ITEM)
    offsets = np.tile(np.arange(RATINGS_PER_ITEM), items)
    annotator = (rng.integers(0, N_ANNOTATORS, items).repeat(RATINGS_PER_ITEM) + offsets * 7) % N_ANNOTATORS
    value = np.where(rng.random(len(item)) < 0.8, truth[item], rng.integers(0, N_CLASSES, len(item)))
    created = (1_700_000_000_000_000 + rng.integers(0, 10**12, len(item))).astype("datetime64[us]")
    return pa.table({
        "record_id": make_ids(np.arange(len(item))),
        "sample_key": make_ids(item),
        "annotator_id": ANNOTATORS.take(pa.array(annotator)),
        "value": CLASSES.take(pa.array(value)),
        "created_at": pa.array(created),
        "guideline_version": pa.array(["g3"] * len(item)),
        "source_kind": pa.array(["human"] * len(item)),
    })


POLICY = {
    "maintainers": ["bench"],
    "checks": [
        {"check": "row_count", "min": 1},
        {"check": "unique_key"},
        {"check": "not_null", "columns": ["label", "annotator_id"]},
        {"check": "allowed_values", "column": "label", "values": CLASSES.to_pylist()},
        {"check": "schema_compatible"},
        {"check": "max_changed_fraction", "max": 0.05},
        {"check": "class_balance", "column": "label", "min_share": 0.01, "max_share": 0.2},
        {"check": "distribution_shift", "column": "label", "max_tvd": 0.05},
        {"check": "gold_accuracy", "gold": "gold@main", "label": "label", "min_accuracy": 0.5,
         "min_class_accuracy": 0.3},
        {"check": "agreement", "name": "kappa_pair", "metric": "cohen_kappa", "min": 0.0,
         "annotators": ["annotator_000", "annotator_007"], "records": "annotations@main"},
        {"check": "agreement", "name": "fleiss", "metric": "fleiss_kappa", "min": 0.3, "min_items": 1000,
         "records": "annotations@main"},
        {"check": "agreement", "name": "alpha", "metric": "krippendorff_alpha", "min": 0.3, "min_items": 1000,
         "records": "annotations@main"},
        {"check": "annotator_accuracy", "gold": "gold@main", "label": "label", "min_accuracy": 0.3, "min_items": 5,
         "records": "annotations@main"},
        {"check": "provenance_complete", "label": "label", "min_fraction": 0.0, "records": "annotations@main"},
    ],
}


def cli(home: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "REGISTRY_HOME": str(home), "REGISTRY_ACTOR": "bench"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "registry.cli.main", *args], env=env, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def median_wall(reps: int, fn: Any) -> tuple[float, list[float]]:
    times = [fn() for _ in range(reps)]
    return statistics.median(times), times


def build(home: Path, rows: int, gold_rows: int, n_records: int) -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(0, N_CLASSES, rows)
    with Registry.init(home) as reg:
        reg.ctx.author = "bench"
        for name, key in (("labels", "sample_id"), ("gold", "sample_id"), ("annotations", "record_id")):
            reg.create_dataset(name, key, owner="bench")
        log(f"committing labels v1 ({rows:,} rows)")
        reg.commit("labels", labels_table(rows, truth, rng), message="v1")
        gold_ids = np.sort(rng.choice(rows, size=min(gold_rows, rows), replace=False))
        gold_labels = np.where(rng.random(len(gold_ids)) < 0.9, truth[gold_ids], rng.integers(0, N_CLASSES,
                                                                                               len(gold_ids)))
        log(f"committing gold ({len(gold_ids):,} rows) and annotations ({n_records:,} records)")
        reg.commit("gold", pa.table({"sample_id": make_ids(gold_ids), "label": CLASSES.take(pa.array(gold_labels))}))
        reg.commit("annotations", records_table(n_records, truth, rng))
        reg.set_policy("labels", yaml.safe_dump(POLICY, sort_keys=False))
        log("qa run on v1 (the last-passed baseline for v2)")
        first = reg.qa_run("labels")
        log(f"v1 gate: {first.status} in {first.duration_ms:,} ms")
        changed = rng.choice(rows, size=min(RELABELED, rows), replace=False)
        relabeled = labels_table(rows, truth, np.random.default_rng(7)).take(pa.array(np.sort(changed)))
        relabeled = relabeled.set_column(1, "label", CLASSES.take(pa.array(rng.integers(0, N_CLASSES, len(changed)))))
        reg.commit("labels", relabeled, mode="upsert", message="v2: relabels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--gold", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3, help="Repetitions of each timed step (median reported).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "qa")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        home = Path(tmp) / "home"
        build(home, args.rows, args.gold, args.records)

        def read_snapshot() -> float:
            with Registry.open(home) as reg:
                started = time.perf_counter()
                table = reg.read("labels@main")
                elapsed = time.perf_counter() - started
            assert table.num_rows == args.rows
            return elapsed

        results: list[dict[str, Any]] = []

        def qa_run() -> float:
            elapsed, proc = cli(home, "qa", "run", "labels@main", "--json")
            assert proc.returncode == 0, proc.stderr
            results.append(json.loads(proc.stdout))
            return elapsed

        log("baseline: reading the snapshot into Arrow")
        read_s, read_all = median_wall(args.reps, read_snapshot)
        log("qa run (whole CLI process)")
        qa_s, qa_all = median_wall(args.reps, qa_run)

        def gate_check() -> float:
            elapsed, proc = cli(home, "gate", "check", "labels@main")
            assert proc.returncode in (0, 1), proc.stderr
            return elapsed

        def python_pass() -> float:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            return time.perf_counter() - started

        def version() -> float:
            elapsed, proc = cli(home, "--version")
            assert proc.returncode == 0
            return elapsed

        reps = max(5, args.reps)
        log("gate check (whole process) and its baselines")
        gate_s, gate_all = median_wall(reps, gate_check)
        pass_s, _ = median_wall(reps, python_pass)
        version_s, _ = median_wall(reps, version)
        last = results[-1]

    report = {
        "rows": args.rows, "gold_rows": args.gold, "annotation_records": args.records, "reps": args.reps,
        "qa_run_s": qa_s, "qa_run_all_s": qa_all, "qa_run_in_process_ms": last["duration_ms"],
        "read_snapshot_s": read_s, "read_snapshot_all_s": read_all, "qa_run_vs_read": qa_s / read_s,
        "gate_check_s": gate_s, "gate_check_all_s": gate_all, "python_pass_s": pass_s, "registry_version_s": version_s,
        "gate_check_vs_python": gate_s / pass_s, "gate_check_vs_version": gate_s / version_s,
        "gate_status": last["status"], "gate": last["gate"]["state"] if last["gate"] else None,
        "checks": [{k: c[k] for k in ("name", "check", "passed", "metric", "threshold")} for c in last["checks"]],
        "goals": {"qa_run_s": 15.0, "gate_check_s": 1.0},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write(report, args.out)


def write(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    ok = {"qa": report["qa_run_s"] <= report["goals"]["qa_run_s"],
          "gate": report["gate_check_s"] <= report["goals"]["gate_check_s"]}
    lines = [
        "# QA benchmark",
        "",
        f"{report['date']}, {report['machine']['cpus']} CPUs, Python {report['machine']['python']}. "
        f"Snapshot of {report['rows']:,} rows, {report['gold_rows']:,} gold rows, "
        f"{report['annotation_records']:,} annotation records; medians of {report['reps']} (gate check: of "
        f"{len(report['gate_check_all_s'])}).",
        "",
        "| what | measured | baseline | ratio | goal |",
        "|---|---|---|---|---|",
        f"| `qa run` with all {len(report['checks'])} checks (whole CLI process) | {report['qa_run_s']:.2f} s | "
        f"read snapshot into Arrow {report['read_snapshot_s']:.2f} s | {report['qa_run_vs_read']:.1f}x | "
        f"<= 15 s ({'met' if ok['qa'] else 'NOT met'}) |",
        f"| `registry gate check` on an evaluated snapshot (whole process) | {report['gate_check_s'] * 1000:.0f} ms | "
        f"`python -c pass` {report['python_pass_s'] * 1000:.0f} ms; `registry --version` "
        f"{report['registry_version_s'] * 1000:.0f} ms | {report['gate_check_vs_python']:.1f}x; "
        f"{report['gate_check_vs_version']:.1f}x | <= 1 s ({'met' if ok['gate'] else 'NOT met'}) |",
        "",
        f"In-process evaluation time of the last run: {report['qa_run_in_process_ms']:,} ms; gate "
        f"{report['gate_status']} ({report['gate']}).",
        "",
        "| check | type | passed | metric | threshold |",
        "|---|---|---|---|---|",
        *[f"| {c['name']} | {c['check']} | {c['passed']} | {c['metric']} | {c['threshold']} |"
          for c in report["checks"]],
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    sys.stdout.write("\n".join(lines))


if __name__ == "__main__":
    main()
