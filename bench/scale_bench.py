#!/usr/bin/env python
"""Scale benchmark: every everyday operation on one large table, each in a fresh process, with its peak RSS.

Run ``python bench/scale_bench.py [--rows 100000000] [--out bench/results/scale.md]``. It writes the
table of the core benchmark's shape (``core_bench``'s generator: key, label, annotator, confidence,
time) to one zstd Parquet file a row group at a time, so generating it never holds the table, and a
5,000-row change file (2,000 relabels, 3,000 new rows). Then each step runs in its own fresh child
process (wall time of the call, peak RSS as the process's VmHWM, imports included), next to a plain
baseline run the same way:

| step | registry | baseline |
|---|---|---|
| commit | ``Registry.commit`` of the file (first commit) | pyarrow: the file copied row group by row group |
| upsert | the change file, ``mode="upsert"`` | - |
| diff | ``Registry.diff`` v1 -> v2 | DuckDB full-join diff of v1 and v2 files (``memory_limit`` 2 GB) |
| label diff | ``Registry.label_diff`` v1 -> v2 | - |
| compaction | ``Registry.compact`` (full) of v2 | - |
| verify | ``Registry.verify`` | SHA-256 of the v1 file |
| qa run | ``Registry.qa_run`` (row count, nulls, label values) | DuckDB: the same checks as one query |
| export | ``Registry.export`` to a Parquet file | the file copy (the commit's baseline) |
| HTTP read | ``GET /snapshots/main/data`` (Arrow stream) from a ``registry serve``; the server's peak RSS | - |

Goal (issue 19): each registry step at 100M rows completes with peak RSS <= 2 GiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import core_bench as cb  # noqa: E402  (same data generator as the core and chain benchmarks)

GiB = 1024**3
MiB = 1024**2
GOAL_RSS = 2 * GiB
CHUNK = 1 << 20
LABEL_VALUES = ", ".join(f"class_{i:02d}" for i in range(cb.N_CLASSES))
POLICY = f"""checks:
  - check: row_count
    min: 1
  - check: not_null
    columns: [sample_id, label]
  - check: allowed_values
    column: label
    values: [{LABEL_VALUES}]
"""

CHILD = r"""
import json, sys, threading, time
from registry.arrow_setup import hide_pandas
hide_pandas()
peak_anon = [0]

def _anon():  # the process's private memory (heap, Arrow buffers), not pages of files it maps
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) * 1024
    return 0

def _sample():
    while True:
        peak_anon[0] = max(peak_anon[0], _anon())
        time.sleep(0.005)

threading.Thread(target=_sample, daemon=True).start()
spec = json.loads(sys.argv[1])
op = spec["op"]
t0 = time.perf_counter()
out = {}
if op == "copy":
    import pyarrow.parquet as pq
    source = pq.ParquetFile(spec["src"])
    with pq.ParquetWriter(spec["dst"], source.schema_arrow, compression="zstd") as writer:
        for number in range(source.num_row_groups):
            writer.write_table(source.read_row_group(number))
    out["rows"] = source.metadata.num_rows
elif op == "sha256":
    import hashlib
    digest = hashlib.sha256()
    with open(spec["src"], "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    out["sha256"] = digest.hexdigest()
elif op.startswith("duckdb_"):
    import duckdb
    con = duckdb.connect()
    con.execute("SET memory_limit='2GB'")
    con.execute("SET enable_progress_bar=false")  # it writes to stdout, where the result goes
    con.execute(f"SET temp_directory='{spec['tmp']}'")
    if op == "duckdb_diff":
        row = con.execute(
            "SELECT count(*) FILTER (WHERE a.sample_id IS NULL), count(*) FILTER (WHERE b.sample_id IS NULL), "
            "count(*) FILTER (WHERE a.sample_id IS NOT NULL AND b.sample_id IS NOT NULL AND "
            "(a.label IS DISTINCT FROM b.label OR a.annotator_id IS DISTINCT FROM b.annotator_id OR "
            "a.confidence IS DISTINCT FROM b.confidence OR a.created_at IS DISTINCT FROM b.created_at)) "
            f"FROM read_parquet('{spec['a']}') a FULL JOIN read_parquet('{spec['b']}') b USING (sample_id)").fetchone()
        out = {"added": row[0], "removed": row[1], "changed": row[2]}
    else:
        labels = ", ".join(f"'class_{i:02d}'" for i in range(20))
        row = con.execute(f"SELECT count(*), count(*) FILTER (WHERE sample_id IS NULL OR label IS NULL), "
                          f"count(*) FILTER (WHERE label NOT IN ({labels})) FROM read_parquet('{spec['src']}')"
                          ).fetchone()
        out = {"rows": row[0], "nulls": row[1], "bad_labels": row[2]}
else:
    from registry import Registry
    reg = Registry.open(spec["home"])
    t0 = time.perf_counter()
    if op == "commit":
        r = reg.commit("labels", spec["path"], mode=spec["mode"], message=op)
        out = {"added": r.added, "changed": r.changed, "removed": r.removed}
    elif op == "diff":
        r = reg.diff("labels@v1", "labels@main", rows=0)
        out = {"added": r.added, "changed": r.changed, "removed": r.removed}
    elif op == "label_diff":
        out = {"relabeled": reg.label_diff("labels@v1", "labels@main", rows=0).relabeled}
    elif op == "compact":
        out = {k: v for k, v in reg.compact("labels@main").to_dict().items() if not isinstance(v, (dict, list))}
    elif op == "verify":
        r = reg.verify()
        out = {"objects": r.objects, "problems": len(r.problems)}
    elif op == "qa":
        out = {"status": reg.qa_run("labels@main").to_dict()["status"]}
    elif op == "export":
        out = {"rows": reg.export("labels@main", spec["out"])}
    elif op == "tag":
        reg.tag("labels@main", "v1")
seconds = time.perf_counter() - t0
hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
flat = {k: v for k, v in out.items() if not isinstance(v, (dict, list))}
peak_anon[0] = max(peak_anon[0], _anon())
print(json.dumps({"seconds": seconds, "peak_rss": hwm, "peak_anon": peak_anon[0], **flat}, default=str))
"""


def child(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                          check=False, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1],
                "exit": proc.returncode}
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    return result


def generate(path: Path, n: int, seed: int) -> None:
    """The v1 table, one row group of ``CHUNK`` rows at a time."""
    rng = np.random.default_rng(seed)
    data, labels = cb.generate(n, rng)
    writer: pq.ParquetWriter | None = None
    for start in range(0, n, CHUNK):
        part = data.table(np.arange(start, min(start + CHUNK, n)), labels)
        if writer is None:
            writer = pq.ParquetWriter(path, part.schema, compression="zstd")
        writer.write_table(part, row_group_size=CHUNK)
    assert writer is not None
    writer.close()
    np.save(path.with_suffix(".labels.npy"), labels)


def change_files(folder: Path, n: int, seed: int) -> tuple[Path, Path]:
    """The 5,000-row upsert (2,000 relabels, 3,000 new) and the whole v2 (for DuckDB's diff)."""
    rng = np.random.default_rng(seed)
    data, labels = cb.generate(n, rng)
    pick = np.random.default_rng(seed + 1)
    relabeled = np.sort(pick.choice(n, cb.RELABELED, replace=False))
    cb.relabel(labels, relabeled, pick)
    added = np.arange(n, n + cb.ADDED)
    change = folder / "change.parquet"
    pq.write_table(data.table(np.concatenate([relabeled, added]), labels), change, compression="zstd")
    v2 = folder / "v2.parquet"
    writer: pq.ParquetWriter | None = None
    for start in range(0, n + cb.ADDED, CHUNK):
        part = data.table(np.arange(start, min(start + CHUNK, n + cb.ADDED)), labels)
        if writer is None:
            writer = pq.ParquetWriter(v2, part.schema, compression="zstd")
        writer.write_table(part, row_group_size=CHUNK)
    assert writer is not None
    writer.close()
    return change, v2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_read(home: Path, env: dict[str, str]) -> dict[str, Any]:
    """Stream the head through a real ``registry serve``; the server's peak RSS is the figure."""
    import httpx

    token = json.loads(subprocess.run(
        [sys.executable, "-m", "registry.cli.main", "--home", str(home), "token", "create", "--name",
         f"bench{time.time_ns()}", "--role", "reader", "--json"], capture_output=True, text=True, env=env,
        check=True).stdout)["token"]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "--home", str(home), "serve", "--port",
                               str(port)], env={**env, "REGISTRY_COMPACT_INTERVAL": "0"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                return {"error": "the server did not start"}
            time.sleep(0.2)
        peak_anon = [0]
        reading = threading.Event()

        def sample() -> None:  # the server's private memory while it streams
            while not reading.is_set():
                with contextlib.suppress(OSError, StopIteration):
                    status = Path(f"/proc/{server.pid}/status").read_text().splitlines()
                    anon = next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon"))
                    peak_anon[0] = max(peak_anon[0], anon)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        received = 0
        with httpx.stream("GET", f"{base}/api/v1/snapshots/labels@main/data?format=arrow",
                          headers={"Authorization": f"Bearer {token}"}, timeout=None) as response:
            if response.status_code != 200:
                return {"error": f"HTTP {response.status_code}"}
            for chunk in response.iter_bytes(1 << 20):
                received += len(chunk)
        seconds = time.perf_counter() - start
        reading.set()
        sampler.join()
        status = Path(f"/proc/{server.pid}/status").read_text()
        hwm = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM"))
        return {"seconds": seconds, "peak_rss": hwm, "peak_anon": peak_anon[0], "bytes": received}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def _fmt(result: dict[str, Any] | None) -> tuple[str, str]:
    if result is None:
        return "-", "-"
    if "error" in result:
        return f"failed: {result['error'][:80]}", "-"
    anon = f" ({result['peak_anon'] / MiB:,.0f} private)" if "peak_anon" in result else ""
    return f"{result['seconds']:.1f} s", f"{result['peak_rss'] / MiB:,.0f} MiB{anon}"


def report(out: Path, n: int, steps: list[tuple[str, dict[str, Any], dict[str, Any] | None]], sizes: dict[str, int],
           started: float) -> None:
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / GiB
    lines = [f"# Scale: {n:,} rows, each step in a fresh process", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {memory:.0f} GiB, "
             f"Python {platform.python_version()}; load average at the end "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; whole run {(time.time() - started) / 60:.0f} min. "
             f"v1 file: {sizes['v1'] / MiB:,.0f} MiB of zstd Parquet. Peak RSS is the process's VmHWM (imports "
             "included; the HTTP read: the server process's); in brackets the peak of its private memory "
             "(RssAnon, sampled every 5 ms): the rest of the RSS is pages of files the process maps (Parquet "
             "objects, memory-mapped indexes), shared and reclaimable page cache. Goal (issue 19): every "
             "registry step <= 2 GiB.", "",
             "| step | registry | registry peak RSS | baseline | baseline | baseline peak RSS | "
             "within 2 GiB at this size |",
             "|---|---|---|---|---|---|---|"]
    for name, ours, (base) in steps:
        t, rss = _fmt(ours)
        bt, brss = _fmt(base)
        meets = "yes" if "peak_rss" in ours and ours["peak_rss"] <= GOAL_RSS else "**no**"
        lines.append(f"| {name} | {t} | {rss} | {BASELINES.get(name, '-')} | {bt} | {brss} | {meets} |")
    lines += ["", f"Store after the steps: {sizes['store'] / MiB:,.0f} MiB of objects, "
              f"{sizes['cache'] / MiB:,.0f} MiB of derived caches."]
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"rows": n, "steps": steps, "sizes": sizes}, indent=2) + "\n")


BASELINES = {"commit": "pyarrow file copy", "diff": "DuckDB full-join diff", "verify": "SHA-256 of the file",
             "qa run": "DuckDB checks query", "export": "pyarrow file copy"}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale.md")
    parser.add_argument("--tmp", type=Path, default=None, help="parent folder for the scratch folder")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--skip-http", action="store_true", help="leave out the HTTP read")
    args = parser.parse_args()
    started = time.time()
    folder = Path(tempfile.mkdtemp(prefix="scale_bench_", dir=args.tmp))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update({"REGISTRY_ACTOR": "bench", "OPENLINEAGE_DISABLED": "true", "REGISTRY_PRELOAD": "off"})
    try:
        v1 = folder / "v1.parquet"
        print(f"generating {args.rows:,} rows in {folder}", flush=True)
        generate(v1, args.rows, args.seed)
        change, v2 = change_files(folder, args.rows, args.seed)
        home = folder / "home"
        from registry import Registry

        reg = Registry.init(home)
        reg.create_dataset("labels", key="sample_id")
        reg.set_policy("labels", POLICY)
        reg.close()
        tmp = folder / "duckdb_tmp"
        tmp.mkdir()
        common = {"home": str(home)}
        steps: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

        def step(name: str, ours: dict[str, Any], base: dict[str, Any] | None = None) -> None:
            result = child({**common, **ours}, env)
            baseline = child(base, env) if base is not None else None
            steps.append((name, result, baseline))
            print(f"{name:<12} {_fmt(result)} baseline {_fmt(baseline)}", flush=True)

        copy = {"op": "copy", "src": str(v1), "dst": str(folder / "copy.parquet")}
        step("commit", {"op": "commit", "path": str(v1), "mode": "replace"}, copy)
        child({**common, "op": "tag"}, env)
        step("upsert", {"op": "commit", "path": str(change), "mode": "upsert"})
        step("diff", {"op": "diff"}, {"op": "duckdb_diff", "a": str(v1), "b": str(v2), "tmp": str(tmp)})
        step("label diff", {"op": "label_diff"})
        step("compaction", {"op": "compact"})
        step("verify", {"op": "verify"}, {"op": "sha256", "src": str(v1)})
        step("qa run", {"op": "qa"}, {"op": "duckdb_qa", "src": str(v2), "tmp": str(tmp)})
        step("export", {"op": "export", "out": str(folder / "export.parquet")}, copy)
        if not args.skip_http:
            result = http_read(home, env)
            steps.append(("HTTP read", result, None))
            print(f"{'HTTP read':<12} {_fmt(result)}", flush=True)
        sizes = {"v1": v1.stat().st_size,
                 "store": sum(p.stat().st_size for p in (home / "objects").rglob("*") if p.is_file()),
                 "cache": sum(p.stat().st_size for p in (home / "cache").rglob("*") if p.is_file())}
        report(args.out, args.rows, steps, sizes, started)
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
