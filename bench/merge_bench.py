#!/usr/bin/env python
"""Merge benchmark: three-way merges of two branches of a labels table against a full pyarrow write
and against a DuckDB three-way merge of the three full versions (full joins on the key).

Run ``python bench/merge_bench.py [--rows 10000000] [--out bench/results/merge.md]``.

Setup (one home, one 10M-row v1 on ``main``): branches ``ours``/``theirs`` each relabel 5,000 rows,
1,000 keys on both sides, 200 of those to different values, and each add 2,000 rows (the
conflicting pair); branches ``left``/``right`` each relabel 5,000 disjoint rows and add 2,000 (the
clean pair). Measured, each merge in a fresh child process (wall time of ``Registry.merge`` and the
process's peak RSS), median of ``--reps``, each run paired with a full write measured just before it:

- clean merge of ``right`` into ``left`` (on copies of the home: it moves the branch): <= 2% of the write;
- conflicting merge of ``theirs`` into ``ours`` reporting all 200 conflicts: <= 3% of the write;
- the conflicting merge >= 20x faster than DuckDB's three-way merge; peak RSS <= 500 MiB;
- exact conflict count and exact merged content (``--strategy ours``) checked against DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from core_bench import LABELS, N_CLASSES, Data, _reset_peak_rss, _vm_hwm, generate, make_ids, relabel

MiB = 1024 * 1024
RELABEL, OVERLAP, DIFFERENT, ADD = 5_000, 1_000, 200, 2_000
DATASET, KEY = "labels", "sample_id"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _rss_anon() -> int:
    """Anonymous resident memory of this process now (bytes): RSS without file-backed pages such as the
    memory-mapped key indexes, which the kernel can drop at any time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


class AnonSampler:
    """The peak of :func:`_rss_anon` while running (sampled every 2 ms)."""

    def __init__(self) -> None:
        self.peak = _rss_anon()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_anon())
            time.sleep(0.002)

    def __enter__(self) -> AnonSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon())


def child_main(spec: dict[str, Any]) -> None:
    """One merge in a fresh process: wall time of the call and peak RSS."""
    from registry import Registry
    from registry.errors import UnresolvedConflicts

    reg = Registry.open(spec["home"])
    # pyarrow imports its pandas shim (~0.7 s, once per process) at the first numpy -> Arrow conversion; any
    # CLI process pays it before its real work, so it is paid here before the clock starts, as in core_bench.
    pa.array(np.zeros(1, np.int64))
    if spec.get("warm"):  # a long-running process (the API server): imports and SQL compilation done
        reg.merge(f"{DATASET}@{spec['warm'][0]}", spec["warm"][1], dry_run=True)
    reset = _reset_peak_rss()
    with AnonSampler() as anon:
        t0 = time.perf_counter()
        try:
            result: dict[str, Any] = reg.merge(f"{DATASET}@{spec['source']}", spec["into"],
                                               strategy=spec.get("strategy", "fail")).to_dict()
        except UnresolvedConflicts as exc:
            result = {"outcome": "conflicts", "conflicts": exc.conflicts}
        seconds = time.perf_counter() - t0
    peak = _vm_hwm()
    reg.close()
    print(json.dumps({"seconds": seconds, "peak_rss": peak, "peak_anon": anon.peak, "rss_reset": reset,
                      "result": result}, default=str))


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def version(data: Data, labels: np.ndarray, rows: np.ndarray) -> pa.Table:
    return data.table(rows, labels)


def duckdb_three_way(base: Path, ours: Path, theirs: Path) -> tuple[pa.Table, int]:
    """The merged table (ours on conflicts) and the conflicting cells, by full outer joins on the key."""
    import duckdb

    value_columns = ["label", "annotator_id", "confidence", "created_at"]
    con = duckdb.connect()
    changed = {c: (f"(o.{c} IS DISTINCT FROM b.{c})", f"(t.{c} IS DISTINCT FROM b.{c})") for c in value_columns}
    merged = ", ".join(f"CASE WHEN o.{KEY} IS NULL THEN t.{c} WHEN {changed[c][1]} AND NOT {changed[c][0]} "
                       f"THEN t.{c} ELSE o.{c} END AS {c}" for c in value_columns)
    conflicts = " + ".join(f"CAST(b.{KEY} IS NOT NULL AND {changed[c][0]} AND {changed[c][1]} AND "
                           f"o.{c} IS DISTINCT FROM t.{c} AS INTEGER)" for c in value_columns)
    con.execute(f"""
        CREATE TEMP TABLE j AS
        SELECT coalesce(o.{KEY}, t.{KEY}) AS {KEY}, {merged}, {conflicts} AS conflicts
        FROM read_parquet('{base}') b
        FULL OUTER JOIN read_parquet('{ours}') o ON o.{KEY} = b.{KEY}
        FULL OUTER JOIN read_parquet('{theirs}') t ON t.{KEY} = coalesce(o.{KEY}, b.{KEY})
        WHERE o.{KEY} IS NOT NULL OR t.{KEY} IS NOT NULL""")
    count = int(con.execute("SELECT sum(conflicts) FROM j").fetchone()[0] or 0)  # type: ignore[index]
    table = con.execute(f"SELECT {KEY}, {', '.join(value_columns)} FROM j").to_arrow_table()
    con.close()
    return table, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--report-from", default=None, help="rewrite the report from a saved JSON of figures")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return
    if args.report_from:
        report(json.loads(Path(args.report_from).read_text()), args.out)
        return
    from registry import Registry

    n = args.rows
    rng = np.random.default_rng(args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="merge-bench-", dir=args.tmp))
    figures: dict[str, Any] = {"rows": n}
    try:
        log(f"generating {n:,} rows")
        data, labels = generate(n + 4 * ADD - 4_000, rng)  # core_bench makes room for 4,000 more ids
        base_rows = np.arange(n)
        v1 = version(data, labels, base_rows)
        v1_path = scratch / "v1.parquet"
        pq.write_table(v1, v1_path, compression="zstd")

        # The conflicting pair: A and B overlap on OVERLAP keys; DIFFERENT of them get other labels.
        picked = rng.choice(n, 2 * RELABEL - OVERLAP, replace=False)
        a_keys, b_keys = picked[:RELABEL], picked[RELABEL - OVERLAP:]
        overlap = picked[RELABEL - OVERLAP:RELABEL]
        ours_labels, theirs_labels = labels.copy(), labels.copy()
        relabel(ours_labels, a_keys, rng)
        theirs_labels[b_keys] = labels[b_keys]
        relabel(theirs_labels, b_keys, rng)
        theirs_labels[overlap] = ours_labels[overlap]  # same new value on both sides...
        differ = overlap[:DIFFERENT]  # ...except these: a third label, neither base's nor ours
        for step in range(1, N_CLASSES):
            candidate = ((ours_labels[differ].astype(np.int16) + step) % N_CLASSES).astype(np.int8)
            free = (candidate != labels[differ]) & (theirs_labels[differ] == ours_labels[differ])
            theirs_labels[differ[free]] = candidate[free]
        assert (theirs_labels[differ] != ours_labels[differ]).all() and (theirs_labels[differ] != labels[differ]).all()
        new_ours, new_theirs = np.arange(n, n + ADD), np.arange(n + ADD, n + 2 * ADD)
        # The clean pair: disjoint relabels, disjoint additions (ids after the conflicting pair's).
        rest = np.setdiff1d(np.arange(n), picked)
        clean = rng.choice(rest, 2 * RELABEL, replace=False)
        left_labels, right_labels = labels.copy(), labels.copy()
        relabel(left_labels, clean[:RELABEL], rng)
        relabel(right_labels, clean[RELABEL:], rng)
        new_left, new_right = np.arange(n + 2 * ADD, n + 3 * ADD), np.arange(n + 3 * ADD, n + 4 * ADD)

        home = scratch / "home"
        log("registry: init, commit v1, branches, four branch commits")
        with Registry.init(home) as reg:
            reg.create_dataset(DATASET, KEY)
            t0 = time.perf_counter()
            reg.commit(DATASET, v1_path, message="v1")
            figures["commit_v1_s"] = time.perf_counter() - t0
            for branch in ("ours", "theirs", "left", "right"):
                reg.branch(f"{DATASET}/{branch}")
            for branch, lab, changed, new in (("ours", ours_labels, a_keys, new_ours),
                                              ("theirs", theirs_labels, b_keys, new_theirs),
                                              ("left", left_labels, clean[:RELABEL], new_left),
                                              ("right", right_labels, clean[RELABEL:], new_right)):
                rows = np.concatenate([np.sort(changed), new])
                reg.commit(f"{DATASET}@{branch}", version(data, lab, rows), mode="upsert", message=branch)
        del v1

        def write_full() -> float:
            table = pq.read_table(v1_path)
            t0 = time.perf_counter()
            pq.write_table(table, scratch / "baseline.parquet", compression="zstd")
            return time.perf_counter() - t0

        log("baseline: full pyarrow write (warm-up)")
        write_full()

        def paired(spec: dict[str, Any], copy: bool) -> dict[str, Any]:
            runs, writes = [], []
            for rep in range(args.reps):
                target = home
                if copy:
                    target = scratch / f"home-copy{rep}"
                    shutil.copytree(home, target)
                writes.append(write_full())
                os.sync()
                runs.append(run_child({**spec, "home": str(target)}))
                log(f"  {spec['source']} -> {spec['into']}: {runs[-1]['seconds'] * 1000:.1f} ms "
                    f"(write {writes[-1]:.2f} s, peak RSS {runs[-1]['peak_rss'] / MiB:.0f} MiB, "
                    f"anonymous {runs[-1]['peak_anon'] / MiB:.0f} MiB)")
                if copy:
                    shutil.rmtree(target)
            return {"median_s": statistics.median(r["seconds"] for r in runs),
                    "runs_s": [r["seconds"] for r in runs], "write_s": statistics.median(writes),
                    "peak_rss": max(r["peak_rss"] for r in runs), "peak_anon": max(r["peak_anon"] for r in runs),
                    "result": runs[0]["result"]}

        log("registry: clean merge right -> left (fresh processes, copies of the home)")
        figures["clean"] = paired({"source": "right", "into": "left"}, copy=True)
        assert figures["clean"]["result"]["outcome"] == "merged", figures["clean"]["result"]
        assert figures["clean"]["result"]["conflicts"] == []
        log("registry: the same, in a warm process (a dry-run merge of the other pair first)")
        figures["clean_warm"] = paired({"source": "right", "into": "left", "warm": ["theirs", "ours"]}, copy=True)
        log("registry: conflicting merge theirs -> ours, reporting conflicts (fresh processes)")
        figures["conflicting"] = paired({"source": "theirs", "into": "ours"}, copy=False)
        reported = figures["conflicting"]["result"]["conflicts"]
        log("registry: the same, in a warm process (a dry-run merge of the clean pair first)")
        figures["conflicting_warm"] = paired({"source": "theirs", "into": "ours", "warm": ["right", "left"]},
                                             copy=False)
        assert len(figures["conflicting_warm"]["result"]["conflicts"]) == len(reported)

        log("DuckDB: three full versions, three-way merge by full joins")
        paths = {}
        with Registry.open(home) as reg:
            for ref in ("ours", "theirs"):
                paths[ref] = scratch / f"{ref}.parquet"
                reg.export(f"{DATASET}@{ref}", paths[ref])
        duck_runs = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            duck_table, duck_conflicts = duckdb_three_way(v1_path, paths["ours"], paths["theirs"])
            duck_runs.append(time.perf_counter() - t0)
        figures["duckdb"] = {"median_s": statistics.median(duck_runs), "runs_s": duck_runs,
                             "conflicts": duck_conflicts}

        log("registry: merge theirs -> ours with --strategy ours, then compare with DuckDB")
        done = run_child({"home": str(home), "source": "theirs", "into": "ours", "strategy": "ours"})
        with Registry.open(home) as reg:
            merged = reg.read(f"{DATASET}@ours")
        merged = merged.sort_by(KEY)
        duck_table = duck_table.cast(merged.schema).sort_by(KEY)
        same_content = merged.equals(duck_table)
        expected_keys = set(make_ids(np.sort(differ)).to_pylist())
        reported_keys = {c["key"][KEY] for c in reported}
        figures["checks"] = {"reported_conflicts": len(reported), "duckdb_conflicts": duck_conflicts,
                             "same_conflict_keys": reported_keys == expected_keys,
                             "same_content": same_content, "merged_rows": merged.num_rows,
                             "strategy_ours_seconds": done["seconds"]}
        labels_ok = all(c["column"] == "label" and c["ours"] == LABELS[int(ours_labels[i])].as_py()
                        for c, i in zip(sorted(reported, key=lambda c: c["key"][KEY]), np.sort(differ), strict=True))
        figures["checks"]["conflict_values_match"] = labels_ok
        report(figures, args.out)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def report(f: dict[str, Any], out: str | None) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    clean, conflicting, duck, checks = f["clean"], f["conflicting"], f["duckdb"], f["checks"]
    lines = [f"# Merge benchmark: {f['rows']:,} rows", "",
             f"- When: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; machine: {os.cpu_count()} CPUs, "
             f"load average {os.getloadavg()[0]:.2f}",
             f"- Each branch relabels {RELABEL:,} rows and adds {ADD:,}; conflicting pair: {OVERLAP:,} keys on "
             f"both sides, {DIFFERENT} to different values. Median of {len(clean['runs_s'])} fresh-process runs.",
             "", "| measure | registry | baseline | ratio | goal | result |", "|---|---|---|---|---|---|"]
    warm_clean, warm_conflicting = f["clean_warm"], f["conflicting_warm"]
    rows = [
        ("clean merge (disjoint changes), fresh process", clean["median_s"], clean["write_s"], 0.02, "full write"),
        ("clean merge, warm process", warm_clean["median_s"], warm_clean["write_s"], 0.02, "full write"),
        ("conflicting merge reporting all conflicts, fresh process", conflicting["median_s"],
         conflicting["write_s"], 0.03, "full write"),
        ("conflicting merge reporting all conflicts, warm process", warm_conflicting["median_s"],
         warm_conflicting["write_s"], 0.03, "full write"),
    ]
    for name, seconds, base, goal, what in rows:
        lines.append(f"| {name} | {seconds * 1000:.1f} ms | {what} {base:.2f} s | {100 * seconds / base:.2f}% | "
                     f"<= {100 * goal:.0f}% | {verdict(seconds <= goal * base)} |")
    for label, run in (("fresh", conflicting), ("warm", warm_conflicting)):
        speedup = duck["median_s"] / run["median_s"]
        lines.append(f"| conflicting merge ({label} process) vs DuckDB three-way merge | {run['median_s'] * 1000:.1f} "
                     f"ms | DuckDB {duck['median_s']:.2f} s | {speedup:.1f}x faster | >= 20x | "
                     f"{verdict(speedup >= 20)} |")
    peak = max(clean["peak_rss"], conflicting["peak_rss"])
    lines.append(f"| peak RSS of a merging process (fresh) | {peak / MiB:.0f} MiB | | | <= 500 MiB | "
                 f"{verdict(peak <= 500 * MiB)} |")
    if "peak_anon" in clean:
        anon = max(clean["peak_anon"], conflicting["peak_anon"])
        lines.append(f"| of which anonymous memory (peak; the rest is memory-mapped index and file pages) | "
                     f"{anon / MiB:.0f} MiB | | | - | info |")
    warm_peak = max(warm_clean["peak_rss"], warm_conflicting["peak_rss"])
    lines.append(f"| peak RSS, warm process (info: holds what the warm-up merge left in Arrow's pool) | "
                 f"{warm_peak / MiB:.0f} MiB | | | - | info |")
    ok_count = checks["reported_conflicts"] == checks["duckdb_conflicts"] == DIFFERENT and checks["same_conflict_keys"]
    lines.append(f"| conflicts reported | {checks['reported_conflicts']} | DuckDB {checks['duckdb_conflicts']} | | "
                 f"exact (= {DIFFERENT}, same keys and values) | "
                 f"{verdict(ok_count and checks['conflict_values_match'])} |")
    lines.append(f"| merged content (--strategy ours) | {checks['merged_rows']:,} rows | DuckDB merge | | identical | "
                 f"{verdict(checks['same_content'])} |")
    lines += ["", "Notes:", "",
              "- A fresh process is a CLI run: the timed call pays one-time costs (SQL statement compilation, "
              "lazy imports) that do not depend on the table; a warm process (the API server) has paid them.",
              "- The full write is `pq.write_table` of v1 (zstd), measured right before each merge run; the DuckDB "
              "merge reads the three full versions (base, ours, theirs as Parquet) and full-joins them on the key."]
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        Path(out).write_text(text)
        Path(out).with_suffix(".json").write_text(json.dumps(f, indent=2, default=str))


if __name__ == "__main__":
    main()
