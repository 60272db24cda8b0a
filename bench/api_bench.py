#!/usr/bin/env python
"""HTTP API benchmark: request latency/throughput under 50 concurrent clients, and a streamed read.

Run ``python bench/api_bench.py [--rows 10000000] [--out bench/results/api.md]``; see
``bench/README.md`` for what is measured, the baselines and the targets.

(a) ``GET /api/v1/gates/{ref}`` and ``GET /api/v1/refs/{ref}`` (resolve a ref; ``/snapshots/{ref}`` when
the server has no ``/refs/{ref}``) against a real ``registry serve --workers 2`` process, on the
SQLite default and on PostgreSQL (``--postgres-url``, default ``$REGISTRY_TEST_POSTGRES_URL``), loaded
by ``wrk`` (50 connections); the baseline is a bare FastAPI endpoint returning a constant, under the
same uvicorn worker count, log level and load, measured in the same run.
(b) A streamed read of a ``--rows`` snapshot (core_bench's labels table) through the API's Arrow IPC
stream, against ``pyarrow.parquet.read_table`` of the same rows as one local Parquet file, with the
server's RSS growth sampled by psutil.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from core_bench import DATASET, KEY, MiB, environment, generate  # the same table as the core benchmark

SMALL = "signs"
POLICY = "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 2\n"
BASELINE_APP = '''from fastapi import FastAPI

app = FastAPI()


@app.get("/constant")
def constant() -> dict[str, str]:
    return {"status": "ok"}
'''
WRK_SCRIPT = '''wrk.headers["Authorization"] = "Bearer %s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "socket_errors": %%d, "non_2xx": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout,
    e.status))
end
'''
GOAL_P99_MS = 25.0
GOAL_RPS = 1000.0
GOAL_READ_SPEED = 0.5
GOAL_RSS_MIB = 300.0


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(argv: list[str], env: dict[str, str], port: int, log: Path, ready: str) -> Iterator[psutil.Process]:
    """A server process (its own process group), yielded once ``ready`` answers 200; stopped after.

    It runs in the log's folder, not the cwd: ``python -m`` puts the cwd first on ``sys.path``, which
    would let a checkout's working tree win over the code pinned on ``PYTHONPATH``."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=log.parent)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not become ready: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def registry_server(home: Path, env: dict[str, str], port: int, workers: int, log: Path
                    ) -> Any:
    argv = [sys.executable, "-m", "registry.cli.main", "--home", str(home), "serve", "--port", str(port),
            "--workers", str(workers)]
    return server(argv, env, port, log, "/readyz")


def baseline_server(folder: Path, env: dict[str, str], port: int, workers: int, log: Path) -> Any:
    (folder / "baseline_app.py").write_text(BASELINE_APP)
    argv = [sys.executable, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(folder), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "info"]  # as `registry serve`
    return server(argv, env, port, log, "/constant")


# --------------------------------------------------------------------------------------------
# Load generation
# --------------------------------------------------------------------------------------------


def wrk(url: str, token: str, connections: int, seconds: float, threads: int, folder: Path) -> dict[str, Any]:
    """One wrk run: requests/s, p50/p99 latency (ms), errors."""
    script = folder / "bearer.lua"
    script.write_text(WRK_SCRIPT % token)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000, "requests": raw["requests"],
            "socket_errors": raw["socket_errors"], "non_2xx": raw["non_2xx"]}


def measure(url: str, token: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """A warm-up, then ``--reps`` runs; the median run by requests/s is reported (all runs kept)."""
    if httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code != 200:
        raise RuntimeError(f"{url} does not answer 200")
    wrk(url, token, args.connections, 2, args.wrk_threads, folder)
    runs = [wrk(url, token, args.connections, args.seconds, args.wrk_threads, folder) for _ in range(args.reps)]
    median = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {**median, "runs": runs}


# --------------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------------


def make_home(path: Path, env: dict[str, str]) -> str:
    """A home with a small gated dataset (policy + QA run); returns an admin token's secret."""
    from registry import Registry
    from registry.auth.tokens import create_token
    from registry.context import create_home

    with patched_environ(env):
        create_home(path)
        with Registry.open(path) as reg:
            reg.create_dataset(SMALL, "id", owner="alice")
            reg.commit(SMALL, pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]}), message="v1")
            reg.set_policy(SMALL, POLICY, actor="alice")
            reg.qa_run(SMALL)
            secret, _ = create_token(reg.ctx, "bench", "admin", [], actor="bench")
    return secret


@contextmanager
def patched_environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"reg_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def resolve_path(base: str, token: str) -> tuple[str, bool]:
    """The resolve-ref path this server has: ``/refs/{ref}`` (contract "New") or the ``/snapshots/{ref}`` fallback."""
    spec = httpx.get(f"{base}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    if "get" in spec.get("paths", {}).get("/api/v1/refs/{ref}", {}):
        return f"/api/v1/refs/{SMALL}@main", True
    return f"/api/v1/snapshots/{SMALL}@main", False


# --------------------------------------------------------------------------------------------
# (a) latency and throughput
# --------------------------------------------------------------------------------------------


def latency_suite(backend: str, home: Path, env: dict[str, str], args: argparse.Namespace, folder: Path
                  ) -> dict[str, Any]:
    token = make_home(home, env)
    port = free_port()
    out: dict[str, Any] = {"backend": backend}
    with registry_server(home, env, port, args.workers, folder / f"serve-{backend}.log"):
        base = f"http://127.0.0.1:{port}"
        resolve, has_refs = resolve_path(base, token)
        out["resolve_endpoint"] = resolve.replace(f"{SMALL}@main", "{ref}")
        out["refs_endpoint_landed"] = has_refs
        for what, path in (("gate_status", f"/api/v1/gates/{SMALL}@main"), ("resolve_ref", resolve)):
            print(f"[{backend}] {what}: wrk {path}", flush=True)
            out[what] = measure(base + path, token, args, folder)
            print(f"  {out[what]['rps']:.0f} req/s, p50 {out[what]['p50_ms']:.2f} ms, "
                  f"p99 {out[what]['p99_ms']:.2f} ms", flush=True)
    return out


def baseline_suite(env: dict[str, str], args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    port = free_port()
    with baseline_server(folder, env, port, args.workers, folder / "baseline.log"):
        print("baseline: wrk /constant", flush=True)
        result = measure(f"http://127.0.0.1:{port}/constant", "none", args, folder)
    print(f"  {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms", flush=True)
    return result


# --------------------------------------------------------------------------------------------
# (b) streamed read
# --------------------------------------------------------------------------------------------


class RssSampler:
    """Samples the RSS of a server process tree every 20 ms; the largest growth of any one process."""

    def __init__(self, root: psutil.Process) -> None:
        self._procs = [root, *root.children(recursive=True)]
        self.start = {p.pid: p.memory_info().rss for p in self._procs}
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for p in self._procs:
                with suppress(psutil.NoSuchProcess):
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return max(self.peak[pid] - self.start[pid] for pid in self.start) / MiB

    @property
    def peak_mib(self) -> float:
        return max(self.peak.values()) / MiB


class _ResponseFile(io.RawIOBase):
    """A readable file over an httpx streamed response's body (for pyarrow's stream reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def client_read(base: str, token: str, ref: str) -> pa.Table:
    """The snapshot's rows through the Python client's ``read`` (the API's Arrow IPC stream)."""
    from registry_client import Client

    with Client(base, token) as client:
        table: pa.Table = client.read(ref)
    return table


def httpx_read(base: str, token: str, ref: str) -> pa.Table:
    """The same streamed request with httpx and pyarrow's IPC reader (when the client cannot read it)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{base}/api/v1/snapshots/{ref}/data", params={"format": "arrow"}, headers=headers,
                      timeout=600) as response:
        response.raise_for_status()
        source = io.BufferedReader(_ResponseFile(response.iter_raw(1 << 20)), 1 << 20)
        return pa.ipc.open_stream(source).read_all()


def pick_reader(base: str, token: str, ref: str) -> tuple[Any, str]:
    """The client's read if it is installed and reads this snapshot (also the warm-up), else httpx's."""
    try:
        client_read(base, token, ref)
        return client_read, "registry_client.Client.read"
    except ImportError:
        note = "registry_client is not installed"
    except Exception as exc:  # noqa: BLE001 - recorded in the report, and the read measured another way
        note = f"registry_client.Client.read failed: {type(exc).__name__}: {exc}"
    print(f"  {note}; reading with httpx + pyarrow.ipc instead", flush=True)
    httpx_read(base, token, ref)
    return httpx_read, f"httpx stream + pyarrow.ipc ({note})"


def read_suite(home: Path, env: dict[str, str], token: str, args: argparse.Namespace, folder: Path
               ) -> dict[str, Any]:
    from registry import Registry

    rng = np.random.default_rng(args.seed)
    data, labels = generate(args.rows, rng)
    rows = np.arange(args.rows)
    table = data.table(rows, labels)
    parquet = folder / "v1.parquet"
    pq.write_table(table, parquet, compression="zstd")
    expected_labels = table.column("label").value_counts().to_pylist()
    del table, data, labels
    print(f"committing {args.rows:,} rows", flush=True)
    t0 = time.perf_counter()
    with patched_environ(env), Registry.open(home) as reg:
        reg.create_dataset(DATASET, KEY)
        reg.commit(DATASET, parquet, message="v1")
    commit_s = time.perf_counter() - t0
    ref = f"{DATASET}@main"
    port = free_port()
    local, remote, growth, peak = [], [], [], []
    with registry_server(home, env, port, args.workers, folder / "serve-read.log") as proc:
        base = f"http://127.0.0.1:{port}"
        http_read, client = pick_reader(base, token, ref)  # also the warm-up (page cache, first touch)
        pq.read_table(parquet)
        for rep in range(args.reps):
            order = ("local", "remote") if rep % 2 == 0 else ("remote", "local")
            for which in order:
                if which == "local":
                    t0 = time.perf_counter()
                    got = pq.read_table(parquet)
                    local.append(time.perf_counter() - t0)
                else:
                    with RssSampler(proc) as sampler:
                        t0 = time.perf_counter()
                        got = http_read(base, token, ref)
                        remote.append(time.perf_counter() - t0)
                    growth.append(sampler.growth_mib)
                    peak.append(sampler.peak_mib)
                assert got.num_rows == args.rows, (which, got.num_rows)
                assert sorted(got.column("label").value_counts().to_pylist(), key=str) == sorted(
                    expected_labels, key=str), which
                del got
            print(f"  read rep {rep}: local {local[-1]:.2f} s, API {remote[-1]:.2f} s, "
                  f"server RSS growth {growth[-1]:.0f} MiB", flush=True)
    local_s, remote_s = statistics.median(local), statistics.median(remote)
    return {"rows": args.rows, "parquet_bytes": parquet.stat().st_size, "commit_s": commit_s,
            "local_read_s": local_s, "api_read_s": remote_s, "speed_ratio": local_s / remote_s,
            "server_rss_growth_mib": max(growth), "server_rss_peak_mib": max(peak),
            "local_runs": local, "api_runs": remote, "rss_growth_runs": growth,
            "client": client}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def uvicorn_stack() -> str:
    """Which event loop and HTTP parser uvicorn picks (``auto``) with the packages this run has."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(raw: dict[str, Any]) -> str:
    base = raw["baseline"]
    lines = ["# API benchmark", "",
             f"`registry serve --workers {raw['args']['workers']}` on 127.0.0.1, loaded by wrk with "
             f"{raw['args']['connections']} connections ({raw['args']['wrk_threads']} threads, "
             f"{raw['args']['seconds']:g} s runs, median of {raw['args']['reps']} by requests/s); baseline: a "
             "bare FastAPI endpoint returning a constant under the same uvicorn workers and load.", "",
             "| endpoint | catalog | req/s | p50 ms | p99 ms | baseline req/s | baseline p99 ms | req/s vs baseline "
             "| goal p99 <= 25 ms, >= 1000 req/s |", "|---|---|---|---|---|---|---|---|---|"]
    for suite in raw["latency"]:
        for what in ("gate_status", "resolve_ref"):
            r = suite[what]
            name = "GET /api/v1/gates/{ref}" if what == "gate_status" else f"GET {suite['resolve_endpoint']}"
            ok = r["p99_ms"] <= GOAL_P99_MS and r["rps"] >= GOAL_RPS and r["non_2xx"] == 0 and not r["socket_errors"]
            lines.append(f"| `{name}` | {suite['backend']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                         f"| {base['rps']:.0f} | {base['p99_ms']:.2f} | {r['rps'] / base['rps']:.2f}x "
                         f"| {verdict(ok)} |")
    lines.append(f"| baseline `GET /constant` | | {base['rps']:.0f} | {base['p50_ms']:.2f} | {base['p99_ms']:.2f} "
                 "| | | | |")
    if read := raw.get("read"):
        speed_ok = read["speed_ratio"] >= GOAL_READ_SPEED
        rss_ok = read["server_rss_growth_mib"] <= GOAL_RSS_MIB
        lines += ["", f"Streamed read of a {read['rows']:,}-row snapshot (Arrow IPC over HTTP, client: "
                  f"{read['client']}) against `pyarrow.parquet.read_table` of the same rows as one local zstd "
                  f"Parquet file ({read['parquet_bytes'] / MiB:.0f} MiB); medians of {len(read['api_runs'])}, "
                  "interleaved.", "",
                  "| what | API | baseline | ratio | goal | |", "|---|---|---|---|---|---|",
                  f"| read time | {read['api_read_s']:.2f} s | {read['local_read_s']:.2f} s | "
                  f"{read['speed_ratio']:.2f}x speed | >= 0.5x | {verdict(speed_ok)} |",
                  f"| server RSS growth (largest, any worker) | {read['server_rss_growth_mib']:.0f} MiB | | | "
                  f"<= 300 MiB | {verdict(rss_ok)} |"]
    env = raw["environment"]
    lines += ["", "Notes:", "",
              f"- Resolve-ref endpoint: `{raw['latency'][0]['resolve_endpoint']}`"
              + ("" if raw["latency"][0]["refs_endpoint_landed"] else
                 " (the contract's `GET /refs/{ref}` had not landed; `/snapshots/{ref}` is the fallback)") + ".",
              "- Every request carries a bearer token (admin), so the registry figures include authentication "
              "(one catalog lookup of the token's hash); the baseline has none.",
              f"- uvicorn ran on {raw.get('uvicorn', 'asyncio + h11')} (uvicorn's `auto` choice; "
              "`uvicorn[standard]` brings uvloop and httptools).",
              "- Closed loop: each of the 50 connections sends its next request when the last one is answered, "
              "so the mean latency is connections / throughput (Little's law): p99 <= 25 ms with 50 connections "
              "needs well over 2,000 requests/s.",
              "- wrk runs on the same 2 cores as the server, as a real client would on loopback; "
              "both servers log every request (uvicorn's access log, log level info) as `registry serve` does.",
              f"- Machine: {env['cpus']} CPUs, {env['memory_gib']} GiB; load average {env['loadavg_at_start'][0]:.2f} "
              f"at start, {raw['loadavg_at_end'][0]:.2f} at end. Code: {env.get('git_head')}.",
              f"- Total wall time {raw['wall_s'] / 60:.1f} min. Raw figures (every run): `{raw['json_name']}`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the streamed snapshot (0: skip)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "api.md")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default=os.environ.get("REGISTRY_TEST_POSTGRES_URL"),
                        help="admin URL of a PostgreSQL server (a fresh database is created and dropped)")
    parser.add_argument("--tmp", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (Debian: apt-get install -y wrk)")
    started = time.perf_counter()
    raw: dict[str, Any] = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                    if k != "postgres_url"}, "environment": environment(), "latency": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OPENLINEAGE"))}
    env["OPENLINEAGE_DISABLED"] = "true"  # no lineage delivery in the measured servers
    with tempfile.TemporaryDirectory(prefix="api-bench-", dir=args.tmp) as scratch:
        folder = Path(scratch)
        raw["baseline"] = baseline_suite(env, args, folder)
        raw["latency"].append(latency_suite("sqlite", folder / "home-sqlite", env, args, folder))
        if args.postgres_url:
            with postgres_database(args.postgres_url) as url:
                pg_env = {**env, "REGISTRY_DATABASE_URL": url}
                raw["latency"].append(latency_suite("postgres", folder / "home-pg", pg_env, args, folder))
        else:
            print("no --postgres-url / REGISTRY_TEST_POSTGRES_URL: PostgreSQL skipped", flush=True)
        if args.rows:
            home = folder / "home-sqlite"
            from registry.auth.tokens import create_token
            from registry.context import open_context

            with patched_environ(env):
                ctx = open_context(home)
                token, _ = create_token(ctx, "bench-read", "reader", [], actor="bench")
                ctx.close()
            raw["read"] = read_suite(home, env, token, args, folder)
    raw["uvicorn"] = uvicorn_stack()
    raw["loadavg_at_end"] = os.getloadavg()
    raw["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path = args.out.with_suffix(".json")
    raw["json_name"] = json_path.name
    json_path.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    args.out.write_text(report(raw))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
