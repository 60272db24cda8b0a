#!/usr/bin/env python
"""Chain benchmark: a long history of small relabel commits in the default configuration.

Run ``python bench/chain_bench.py [--rows 10000000] [--versions 100] [--relabel 10000]``. It commits v1,
then ``--versions`` upsert commits each relabeling ``--relabel`` random rows. Every commit runs in a fresh
child process (wall time of the commit call and the process's peak RSS, VmHWM); after each commit a
separate child runs ``registry compact --auto`` (the cron form of the serve worker), timed the same way,
so no commit waits for compaction. At the end it reports the store (objects, plus every derived cache:
key-hash indexes and verified markers) against one full copy of the data written by pyarrow, and read
times of the head and of v1 against a pyarrow read of that copy. Goals (issue 19): every commit <= 3x the
chain's median, store <= 1.5x one copy, peak RSS of any commit or compaction <= 1 GiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import core_bench as cb  # noqa: E402  (same data generator as the core benchmark)

from registry import Registry  # noqa: E402

GiB = 1024**3
MiB = 1024**2

READ_REPS = 5
"""Reads of the head, of v1 and of the baseline file, alternating; the report gives each one's median."""

CHILD = r"""
import json, sys, time
from registry.arrow_setup import hide_pandas
hide_pandas()  # as the `registry` command does: pyarrow would import pandas (0.4 s, 100 MiB) for nothing
from registry import Registry
spec = json.loads(sys.argv[1])
reg = Registry.open(spec["home"])
import pyarrow.parquet as pq
import registry.snapshots.read  # what reg.read imports on first use: both reads start with their imports done
t0 = time.perf_counter()
if spec["op"] == "commit":
    result = reg.commit("labels", spec["path"], mode=spec.get("mode", "upsert"), message=spec.get("message", ""))
    out = {"added": result.added, "changed": result.changed, "id": result.snapshot_id}
elif spec["op"] == "compact":
    out = {"compacted": [r.to_dict() for r in reg.compact_auto()]}
elif spec["op"] == "read":
    out = {"rows": reg.read(spec["ref"]).num_rows}
elif spec["op"] == "read_file":  # the baseline, in the same kind of fresh process as the registry's reads
    out = {"rows": pq.read_table(spec["path"]).num_rows}
seconds = time.perf_counter() - t0
hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_rss": hwm, **out}))
"""


def child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['op']} failed: {proc.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def spread(runs: list[float]) -> str:
    return f"{min(runs):.2f}-{max(runs):.2f}"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--relabel", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", type=Path, help="build the chain in this (new) folder and keep it, to look into")
    parser.add_argument("--out", type=Path, default=Path("bench/results/chain.md"))
    args = parser.parse_args()
    n = args.rows
    rng = np.random.default_rng(args.seed)
    data, labels = cb.generate(n, rng)
    if args.keep:
        if args.keep.exists():
            parser.error(f"--keep {args.keep}: already exists; name a new folder")
        args.keep.mkdir(parents=True)
    with contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(
            prefix="chain-bench-") as scratch_name:
        scratch = Path(scratch_name)
        home = scratch / "home"
        with Registry.init(home) as reg:
            reg.create_dataset("labels", "sample_id")
        v1 = data.table(np.arange(n), labels)
        copy = scratch / "copy.parquet"
        t0 = time.perf_counter()
        pq.write_table(v1, copy, compression="zstd")
        full_write = time.perf_counter() - t0
        v1_path = scratch / "v1.parquet"
        pq.write_table(v1, v1_path, compression="zstd")
        del v1
        cb.log(f"v1: {n:,} rows")
        first = child({"op": "commit", "home": str(home), "path": str(v1_path), "mode": "replace"})
        commits: list[dict[str, Any]] = []
        compactions: list[dict[str, Any]] = []
        for version in range(args.versions):
            idx = np.sort(rng.choice(n, args.relabel, replace=False))
            cb.relabel(labels, idx, rng)
            path = scratch / "round.parquet"
            pq.write_table(data.table(idx, labels), path, compression="zstd")
            done = child({"op": "commit", "home": str(home), "path": str(path), "message": f"round {version}"})
            assert done["changed"] == args.relabel, done
            commits.append(done)
            compactions.append(child({"op": "compact", "home": str(home)}))
            if version % 10 == 9:
                cb.log(f"  {version + 1} versions: last commit {done['seconds']:.2f}s, "
                       f"RSS {done['peak_rss'] / MiB:.0f} MiB")
        objects = folder_bytes(home / "objects")
        caches = folder_bytes(home / "cache")
        copy_bytes = copy.stat().st_size
        # Reads alternate with baseline reads of the copy, each in a fresh process (a process's first large
        # read also pays for its memory; a read in this warm process would not).
        heads, olds, files = [], [], []
        for _ in range(READ_REPS):
            files.append(child({"op": "read_file", "home": str(home), "path": str(copy)})["seconds"])
            heads.append(child({"op": "read", "home": str(home), "ref": "labels"}))
            olds.append(child({"op": "read", "home": str(home), "ref": f"labels@main~{args.versions}"}))
        baseline_read = statistics.median(files)
        read_head = heads[-1] | {"seconds": statistics.median(r["seconds"] for r in heads),
                                 "runs_s": [r["seconds"] for r in heads]}
        read_v1 = olds[-1] | {"seconds": statistics.median(r["seconds"] for r in olds),
                              "runs_s": [r["seconds"] for r in olds]}
    times = [c["seconds"] for c in commits]
    median = statistics.median(times)
    ran = [c for c in compactions if c["compacted"]]
    peak_commit = max(c["peak_rss"] for c in commits)
    peak_compact = max(c["peak_rss"] for c in compactions)
    rows = [
        ("first commit (v1) / full write", f"{first['seconds']:.2f} s", f"{full_write:.2f} s",
         f"{first['seconds'] / full_write:.2f}x", "<= 2x", first["seconds"] <= 2 * full_write),
        ("slowest chain commit / median", f"{max(times):.2f} s", f"median {median:.2f} s",
         f"{max(times) / median:.2f}x", "<= 3x", max(times) <= 3 * median),
        ("median chain commit / full write (info)", f"{median:.2f} s", f"{full_write:.2f} s",
         f"{100 * median / full_write:.1f}%", "-", None),
        ("compactions (compact --auto after each commit; info)",
         f"{len(ran)} ran, max {max((c['seconds'] for c in ran), default=0):.2f} s", "", "", "-", None),
        ("store incl. derived caches / one full copy", f"{(objects + caches) / MiB:,.0f} MiB "
         f"(objects {objects / MiB:,.0f}, caches {caches / MiB:,.0f})", f"copy {copy_bytes / MiB:,.0f} MiB",
         f"{(objects + caches) / copy_bytes:.2f}x", "<= 1.5x", objects + caches <= 1.5 * copy_bytes),
        ("index cache / data bytes (info: goal <= 0.5x)", f"{caches / MiB:,.0f} MiB", f"{objects / MiB:,.0f} MiB",
         f"{caches / objects:.2f}x", "<= 0.5x", caches <= 0.5 * objects),
        ("peak RSS of any chain commit", f"{peak_commit / MiB:,.0f} MiB", "", "", "<= 1 GiB", peak_commit <= GiB),
        ("peak RSS of any compaction", f"{peak_compact / MiB:,.0f} MiB", "", "", "<= 1 GiB", peak_compact <= GiB),
        ("read head (speed vs one Parquet file)", f"{read_head['seconds']:.2f} s ({spread(read_head['runs_s'])})",
         f"{baseline_read:.2f} s ({spread(files)})",
         f"{baseline_read / read_head['seconds']:.2f}x", ">= 0.8x", baseline_read / read_head["seconds"] >= 0.8),
        (f"read v1 ({args.versions} versions back)", f"{read_v1['seconds']:.2f} s ({spread(read_v1['runs_s'])})",
         f"{baseline_read:.2f} s ({spread(files)})",
         f"{baseline_read / read_v1['seconds']:.2f}x", ">= 0.8x", baseline_read / read_v1["seconds"] >= 0.8),
    ]
    lines = [f"# Chain benchmark: {n:,} rows, {args.versions} versions relabeling {args.relabel:,} rows each", "",
             f"- When: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; load average at end "
             f"{os.getloadavg()[0]:.2f}", f"- Command: `python bench/chain_bench.py --rows {n} --versions "
             f"{args.versions} --relabel {args.relabel}`", "",
             "| Measurement | Registry | Baseline | Ratio | Target | Result |", "|---|---|---|---|---|---|"]
    for name, value, base, ratio, target, ok in rows:
        lines.append(f"| {name} | {value} | {base} | {ratio} | {target} | "
                     f"{'info' if ok is None else 'PASS' if ok else 'FAIL'} |")
    lines += ["", "Every commit and compaction ran in its own fresh process (peak RSS is its VmHWM, imports "
              f"included); reads too (imports done before the clock starts), each the median of {READ_REPS}, "
              "alternating with the baseline reads of the copy, "
              "which run in the same kind of fresh process (a process's first large read also pays for "
              "its memory; in brackets the fastest and slowest run: on a virtual machine that hands memory back "
              "to its host, the same read of the same file in a fresh process varies 2-3x). "
              "A read hashes an object only if no verified marker matches the file: what "
              "this machine's commits and compactions wrote carries one. The baseline full write and "
              "read are pyarrow on one zstd Parquet file. "
              "Each child process hides pandas from pyarrow first, as the `registry` command does "
              "(registry.arrow_setup): pyarrow would otherwise import it, 0.4 s and 100 MiB, on its first "
              "conversion."]
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"first": first, "commits": commits,
                                                         "compactions": compactions, "objects": objects,
                                                         "caches": caches, "copy": copy_bytes,
                                                         "full_write": full_write, "baseline_read": baseline_read,
                                                         "baseline_read_runs_s": files,
                                                         "read_head": read_head, "read_v1": read_v1}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
