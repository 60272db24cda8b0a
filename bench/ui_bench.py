"""Console page loads in headless Chromium over a dataset with 1,000 snapshots and a 100,000-row label diff.

Seeds a registry home (one dataset: ``--rows`` rows, then ``--changed`` of them relabeled in one commit, then
small one-row commits up to ``--snapshots``), runs ``registry serve`` on 127.0.0.1, and times, for each console
page, a fresh navigation from ``page.goto`` until the page's content is drawn (median and max of ``--reps``),
next to the API calls the page makes. Needs Debian's Chromium at /usr/bin/chromium and ``pip install playwright``.

    python bench/ui_bench.py                         # 200,000 rows, 100,000 relabeled, 1,000 snapshots
    python bench/ui_bench.py --out bench/results/ui.md
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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

import httpx
import numpy as np
import pyarrow as pa

from registry import Registry
from registry.auth.tokens import create_token
from registry.context import create_home
from registry.lineage.emit import registry_namespace
from registry.lineage.intake import ingest_run_event

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RENDERED = "performance.getEntriesByName('console:rendered').pop().startTime"
"""Milliseconds from the start of the navigation until the console drew the page (its own mark)."""
POLICY = "checks:\n  - check: row_count\n    min: 10000000\n"


def labels(ids: np.ndarray, shift: int) -> pa.Array:
    names = np.array([f"class_{c:02d}" for c in range(20)], dtype=object)
    return pa.array(names[(ids + shift) % 20], pa.string())


def seed(home: Path, rows: int, changed: int, snapshots: int) -> dict[str, Any]:
    """The dataset ``bench``; returns the refs and timings of the seeding."""
    started = time.perf_counter()
    reg = Registry.open(create_home(home).home)
    reg.create_dataset("bench", "id", description="console bench", owner="bench")
    ids = np.arange(rows, dtype=np.int64)
    reg.commit("bench", pa.table({"id": ids, "label": labels(ids, 0)}), message="all rows", author="bench")
    moved = ids[:changed]
    reg.commit("bench", pa.table({"id": moved, "label": labels(moved, 1)}), mode="upsert",
               message=f"relabel {changed:,} rows", author="bench")
    log = reg.log("bench")
    a, b = f"bench@{log[1].id}", f"bench@{log[0].id}"
    reg.tag(b, "relabeled")
    if snapshots - 2 > rows - changed:
        raise SystemExit("--snapshots - 2 must not exceed --rows - --changed (each small commit fixes a new row)")
    for i in range(snapshots - 2):
        key = np.array([rows - 1 - i], dtype=np.int64)  # an untouched row: any shift in 1..19 changes its label
        reg.commit("bench", pa.table({"id": key, "label": labels(key, 1 + i % 19)}), mode="upsert",
                   message=f"fix {i}", author=f"annotator-{i % 7}")
    assert len(reg.log("bench")) == snapshots, "a small commit changed nothing"
    reg.set_policy("bench", POLICY, actor="bench")
    reg.qa_run("bench", actor="ci")
    head = reg.show("bench").id
    ingest_run_event(reg.ctx, {
        "eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "producer": "https://example.com/trainer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "airflow", "name": "train"},
        "inputs": [{"namespace": registry_namespace(reg.ctx), "name": "bench",
                    "facets": {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": head}}}],
        "outputs": []})
    secret, _ = create_token(reg.ctx, "bench-admin", "admin", [], actor="bench")
    reg.close()
    return {"a": a, "b": b, "head": head, "token": secret, "key": str(rows - 1),
            "seed_seconds": time.perf_counter() - started}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "REGISTRY_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("registry serve did not become ready")


def timed(reps: int, action: Callable[[], None]) -> dict[str, float]:
    action()  # warm: the server's caches and the browser's module cache, as on a second visit
    runs = []
    for _ in range(reps):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return {"median_ms": round(1000 * statistics.median(runs), 1), "max_ms": round(1000 * max(runs), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--changed", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a killed bench still stops its server and scratch

    with tempfile.TemporaryDirectory(prefix="ui-bench-") as scratch:
        home = Path(scratch) / "home"
        facts = seed(home, args.rows, args.changed, args.snapshots)
        print(f"seeded {args.snapshots:,} snapshots in {facts['seed_seconds']:.1f} s", flush=True)
        proc, url = start_server(home)
        headers = {"Authorization": f"Bearer {facts['token']}"}
        q = httpx.QueryParams
        pages = {
            "datasets": ("#/datasets", "#datasets .badge", ["/datasets", "/gates/bench@" + facts["head"]]),
            f"history ({args.snapshots:,} snapshots)": ("#/datasets/bench", "#history tbody tr",
                                                        ["/datasets/bench/log"]),
            f"label diff ({args.changed:,} relabeled)": (
                f"#/diff?{q(a=facts['a'], b=facts['b'])}", "#changes tbody tr",
                [f"/diff?{q(a=facts['a'], b=facts['b'], labels='true', rows=50)}"]),
            "label diff, next page": (None, None,
                                      [f"/diff/labels/rows?{q(a=facts['a'], b=facts['b'], offset=50, limit=50)}"]),
            "sample provenance": (f"#/sample/bench/{facts['key']}", "#sample-history",
                                  [f"/datasets/bench/history?key={facts['key']}"]),
            "gate": ("#/gate/bench", "#checks", ["/gates/bench", "/gates/bench/results"]),
            "audit trail": ("#/audit", "#audit-events", ["/audit/events?limit=200"]),
            "lineage": ("#/lineage/bench", "#lineage-graph", ["/lineage/graph?ref=bench"]),
        }
        results: dict[str, dict[str, Any]] = {}
        try:
            with sync_playwright() as playwright, httpx.Client(base_url=url + "/api/v1", headers=headers,
                                                               timeout=60) as client:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(viewport={"width": 1366, "height": 860})
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.goto(url + "/ui/")
                page.fill("#token", facts["token"])
                page.click("button[type=submit]")
                page.wait_for_selector("#datasets")

                def api_calls(paths: list[str]) -> Callable[[], None]:
                    return lambda: [client.get(p).raise_for_status() for p in paths] and None

                for name, (route, selector, paths) in pages.items():
                    entry: dict[str, Any] = {"api": timed(args.reps, api_calls(paths))}
                    if route is not None:
                        rendered: list[float] = []

                        def load(route: str = route, selector: str = selector, rendered: list[float] = rendered
                                 ) -> None:
                            page.goto("about:blank")
                            page.goto(f"{url}/ui/{route}")
                            page.wait_for_selector(selector)
                            rendered.append(page.evaluate(RENDERED))

                        entry["page"] = timed(args.reps, load)
                        runs = rendered[1:]
                        entry["in_page"] = {"median_ms": round(statistics.median(runs), 1),
                                            "max_ms": round(max(runs), 1)}
                    results[name] = entry
                    print(name, json.dumps(entry), flush=True)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    report = ["| page | drawn, in page: median (max) ms | driver wall time: median (max) ms | its API calls: median "
              "(max) ms |", "|---|---:|---:|---:|"]
    blank = {"median_ms": "-", "max_ms": "-"}
    for name, entry in results.items():
        cells = [f"{m['median_ms']} ({m['max_ms']})" for m in (entry.get("in_page", blank), entry.get("page", blank),
                                                                 entry["api"])]
        report.append(f"| {name} | " + " | ".join(cells) + " |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"Console bench: {args.rows:,} rows, {args.changed:,} relabeled, {args.snapshots:,} snapshots, "
            f"{args.reps} reps (seeding {facts['seed_seconds']:.0f} s); {os.cpu_count()} CPUs, load average "
            f"{load} at the end\n\n" + "\n".join(report) + "\n")
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
