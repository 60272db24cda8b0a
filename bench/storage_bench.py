"""Commit and read of the core benchmark's 10,000,000-row table on the S3 store, relative to the local store.

Both stores are measured in the same run, interleaved (local, S3, local, S3...), on fresh homes with a
SQLite catalog. The S3 store is moto's standalone server (``moto_server``) in its own process on
127.0.0.1: an in-memory S3 written in Python, far slower per byte than AWS S3, MinIO or Ceph, so
the ratios here are an upper bound on the S3 store's overhead, not a forecast.

    python bench/storage_bench.py                                  # 10M rows (a few minutes)
    python bench/storage_bench.py --rows 200000 --out /tmp/s.md    # quick

Measured (median of ``--reps``): the first commit of the full table (``replace``), an upsert commit
of 5,000 changed rows on top, a read of the snapshot with the object cache warm (the writer's
staged files are kept as cached copies) and cold (cache deleted: S3 downloads and hash-checks every
object), and ``verify`` (S3 hashes the bytes the server returns). A warm read is a read of local files
on both stores; it is the median of three reads in a row, since one read of a large table on a shared
machine varies by a factor of two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_bench import DATASET, KEY, environment, fmt_b, fmt_s, generate, log, relabel  # noqa: E402

CHANGED = 5_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoProcess:
    """``python -m moto.server`` on 127.0.0.1 in a child process (so it does not share our GIL)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}", "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}

    def bucket(self) -> str:
        from pyarrow import fs as pafs

        name = f"bench-{uuid.uuid4().hex[:10]}"
        pafs.S3FileSystem(access_key="bench", secret_key="bench", region="us-east-1", scheme="http",
                          endpoint_override=f"127.0.0.1:{self.port}", allow_bucket_creation=True).create_dir(name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _home(root: Path, storage_url: str | None) -> Path:
    from registry.config import write_home_config
    from registry.context import create_home

    home = root / f"home-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    write_home_config(home, {"format": 1, **({"storage_url": storage_url} if storage_url else {})})
    return create_home(home).home


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "storage.md")
    parser.add_argument("--tmp", type=Path, default=None)
    args = parser.parse_args()
    for var in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
        os.environ.pop(var, None)
    os.environ["REGISTRY_COMPACT_ROWS"] = "0"  # measure the store, not a compaction after the upsert

    rng = np.random.default_rng(args.seed)
    log(f"generating {args.rows:,} rows")
    data, labels = generate(args.rows, rng)
    v1 = data.table(np.arange(args.rows), labels)
    changed_idx = rng.choice(args.rows, CHANGED, replace=False)
    relabel(labels, changed_idx, rng)
    changes = data.table(np.sort(changed_idx), labels)

    from registry import Registry

    moto = MotoProcess()
    os.environ.update(moto.env())
    scratch = Path(tempfile.mkdtemp(prefix="storage-bench-", dir=args.tmp))
    env = environment()
    figures: dict[str, dict[str, list[float]]] = {}

    def record(step: str, store: str, fn: Callable[[], Any], repeat: int = 1) -> Any:
        runs = [_timed(fn) for _ in range(repeat)]
        seconds, out = statistics.median(t for t, _ in runs), runs[-1][1]
        figures.setdefault(step, {}).setdefault(store, []).append(seconds)
        log(f"  {store:5s} {step}: {fmt_s(seconds)}")
        return out

    sizes: dict[str, int] = {}
    try:
        for rep in range(args.reps):
            order = ["local", "s3"] if rep % 2 == 0 else ["s3", "local"]
            for store in order:
                log(f"rep {rep + 1}/{args.reps}: {store}")
                url = f"s3://{moto.bucket()}/registry" if store == "s3" else None
                home = _home(scratch, url)
                with Registry.open(home) as reg:
                    reg.create_dataset(DATASET, KEY)
                    first = record(f"commit {args.rows:,} rows (replace)", store, lambda r=reg: r.commit(DATASET, v1))
                    sizes["v1 bytes"] = first.bytes_written
                    record(f"upsert commit of {CHANGED:,} rows", store,
                           lambda r=reg: r.commit(DATASET, changes, mode="upsert"))
                    record("read (object cache warm, median of 3 reads)", store, lambda r=reg: r.read(DATASET), 3)
                shutil.rmtree(home / "cache")
                with Registry.open(home) as reg:
                    record("read (cold: cache and indexes deleted)", store, lambda r=reg: r.read(DATASET))
                    report = record("verify", store, lambda r=reg: r.verify())
                    assert report.ok, report.problems
                shutil.rmtree(home)
    finally:
        moto.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for step, by_store in figures.items():
        local, s3 = statistics.median(by_store["local"]), statistics.median(by_store["s3"])
        rows.append({"step": step, "local_s": local, "s3_s": s3, "ratio": s3 / local})
    result = {"rows": args.rows, "reps": args.reps, "v1_bytes": sizes.get("v1 bytes"), "steps": rows,
              "raw": figures, "environment": env}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = [
        f"# Storage benchmark: S3 store (moto server) relative to the local store, {args.rows:,} rows",
        "",
        f"Median of {args.reps} interleaved runs; fresh home per run (SQLite catalog); the first commit writes "
        f"{fmt_b(sizes.get('v1 bytes', 0))} of objects. Code {env.get('git_head')}, "
        f"{env['cpus']} CPUs, load at start {env['loadavg_at_start']}.",
        "",
        "| Step | local | S3 (moto) | S3 / local |",
        "|---|---:|---:|---:|",
        *[f"| {r['step']} | {fmt_s(r['local_s'])} | {fmt_s(r['s3_s'])} | {r['ratio']:.2f}x |" for r in rows],
        "",
        "moto is an in-memory S3 written in Python (one process, one request at a time per connection), so every",
        "byte crosses a Python HTTP server: the ratios are an upper bound on the S3 store's overhead. Against",
        "AWS S3, MinIO or Ceph the upload and download legs run at network speed instead.",
        "Warm reads are local reads: a commit keeps the objects it wrote in the home's verified object cache.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
