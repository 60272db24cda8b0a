#!/usr/bin/env python
"""Audit log benchmark: append latency, bulk rate, verify of 1M events, query over 10M events.

Run ``python bench/audit_bench.py [--verify-events 1000000] [--query-events 10000000]
[--out bench/results/audit.md]``. Each figure is reported with a baseline measured in the same run:

- append: one ``record()`` transaction vs. a transaction inserting one equally wide row into a
  plain table of the same catalog (what any audited write pays anyway);
- bulk: ``record_many()`` vs. a raw ``executemany`` of the same rows into that plain table;
- verify: ``registry audit verify`` (read every segment, recompute every hash) vs. the naive way
  to hash the same events (``json.dumps(sort_keys=True)`` + SHA-256 per event, nothing read);
- query: all events of one actor through ``registry query`` over the sealed segments vs. the
  same DuckDB query over one Parquet file holding all the events (the ideal layout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import text

from registry import Registry
from registry.audit.chain import GENESIS, canonical_bytes, canonical_json, event_hash
from registry.audit.log import EventSpec, record, record_many
from registry.audit.models import AuditHeadRow, AuditSegmentRow
from registry.audit.segments import EVENT_SCHEMA, write_segment
from registry.db import transaction
from registry.timeutil import utc_now

ACTORS = [f"annotator-{i:03d}" for i in range(200)]


def _spec(i: int) -> EventSpec:
    return EventSpec("snapshot.commit", "snapshot", f"{i:064x}", dataset=f"ds{i % 50}", snapshot=f"{i:064x}",
                     details={"added": i % 1000, "changed": i % 7, "removed": 0, "message": "relabel round"})


def bench_append(reg: Registry, n: int) -> dict[str, float]:
    engine = reg.ctx.engine
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_plain (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    audited, plain = [], []
    for i in range(n):
        t0 = time.perf_counter()
        with transaction(engine) as session:
            record(session, reg.ctx, "ref.tag", "ref", f"ds@t{i}", dataset="ds", details={"i": i})
        audited.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with transaction(engine) as session:
            session.execute(text("INSERT INTO bench_plain (body) VALUES (:b)"), {"b": "x" * 400})
        plain.append(time.perf_counter() - t0)
    a, p = statistics.median(audited) * 1e3, statistics.median(plain) * 1e3
    return {"append_ms_median": a, "append_ms_p95": sorted(audited)[int(n * 0.95)] * 1e3,
            "plain_insert_ms_median": p, "append_vs_plain": a / p}


def bench_bulk(reg: Registry, n: int, batch: int) -> dict[str, float]:
    specs = [_spec(i) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        with transaction(reg.ctx.engine) as session:
            record_many(session, reg.ctx, specs[start:start + batch], actor="bulk-loader")
    audited = time.perf_counter() - t0
    rows = [{"b": canonical_json(s.details) + "x" * 300} for s in specs]
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        with transaction(reg.ctx.engine) as session:
            session.execute(text("INSERT INTO bench_plain (body) VALUES (:b)"), rows[start:start + batch])
    plain = time.perf_counter() - t0
    return {"bulk_events_per_s": n / audited, "plain_rows_per_s": n / plain, "bulk_vs_plain_time": audited / plain}


def fill_segments(reg: Registry, total: int, per_segment: int, progress: str) -> float:
    """Chain ``total`` events and seal them as the seal path does, ``per_segment`` per segment, without the
    catalog round trip (which the bulk figure measures); returns the seconds spent."""
    t0 = time.perf_counter()
    now = utc_now()
    client = canonical_json({"host": platform.node(), "kind": "sdk", "remote_addr": None})
    with transaction(reg.ctx.engine, readonly=True) as session:
        head = session.get(AuditHeadRow, 1)
        assert head is not None and head.seq == 0, "fill_segments needs an empty chain"
    prev, seq = GENESIS, 0
    segments = []
    while seq < total:
        cols: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
        for _ in range(min(per_segment, total - seq)):
            seq += 1
            actor = ACTORS[seq % len(ACTORS)]
            details = canonical_json({"added": seq % 1000, "message": "relabel round"})
            values = (seq, f"{seq:032x}", now, actor, "user", "snapshot.commit", "snapshot", f"{seq:064x}",
                      f"ds{seq % 50}", f"{seq:064x}", details, client, prev)
            digest = event_hash(prev, canonical_bytes(*values))
            for name, value in zip(EVENT_SCHEMA.names, (*values, digest), strict=True):
                cols[name].append(value)
            prev = digest
        table = pa.table(cols, schema=EVENT_SCHEMA)
        info = write_segment(reg.ctx.store, table)
        segments.append(AuditSegmentRow(sha256=info.sha256, first_seq=cols["seq"][0], last_seq=seq,
                                        first_prev_hash=cols["prev_hash"][0], last_hash=prev,
                                        events=table.num_rows, bytes=info.size, created_at=now))
        if seq % (10 * per_segment) == 0 or seq == total:
            print(f"  {progress}: {seq:,}/{total:,} events", flush=True)
    with transaction(reg.ctx.engine) as session:
        session.add_all(segments)
        head = session.get(AuditHeadRow, 1)
        assert head is not None
        head.seq, head.hash, head.sealed_seq = seq, prev, seq
        session.add(head)
    return time.perf_counter() - t0


def bench_verify(reg: Registry, n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    report = reg.verify_audit()
    seconds = time.perf_counter() - t0
    assert report.ok and report.events == n, report
    table = reg.query("SELECT * EXCLUDE (hash) FROM audit_log ORDER BY seq").to_pylist()
    t0 = time.perf_counter()
    for event in table:
        event["time"] = str(event["time"])
        event["details"], event["client"] = json.loads(event["details"]), json.loads(event["client"])
        hashlib.sha256(event.pop("prev_hash").encode() + json.dumps(event, sort_keys=True).encode()).hexdigest()
    naive = time.perf_counter() - t0
    return {"verify_events": n, "verify_s": seconds, "naive_hash_only_s": naive, "verify_vs_naive": seconds / naive}


def bench_query(reg: Registry, n: int, tmp: Path) -> dict[str, float]:
    import duckdb

    sql = "SELECT * FROM audit_log WHERE actor = 'annotator-007'"
    reg.query(sql)  # warm the page cache like the baseline below
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = reg.query(sql)
        times.append(time.perf_counter() - t0)
    expected = sum(1 for s in range(1, n + 1) if s % len(ACTORS) == 7)
    assert result.num_rows == expected, (result.num_rows, expected)
    with transaction(reg.ctx.engine, readonly=True) as session:
        paths = [str(reg.ctx.store.local_path(s.sha256)) for s in session.exec(
            __import__("sqlmodel").select(AuditSegmentRow)).all()]
    single = tmp / "all-events.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_parquet({paths}) ORDER BY seq) TO '{single}' (FORMAT parquet, "
                "COMPRESSION zstd)")
    con.sql(f"SELECT * FROM read_parquet('{single}') WHERE actor = 'annotator-007'").to_arrow_table()
    base = []
    for _ in range(3):
        t0 = time.perf_counter()
        con.sql(f"SELECT * FROM read_parquet('{single}') WHERE actor = 'annotator-007'").to_arrow_table()
        base.append(time.perf_counter() - t0)
    return {"query_events": n, "query_segments": len(paths), "query_s": min(times), "one_file_s": min(base),
            "query_vs_one_file": min(times) / min(base), "matching_rows": expected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--bulk-events", type=int, default=50_000)
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    parser.add_argument("--query-events", type=int, default=10_000_000)
    parser.add_argument("--segment-events", type=int, default=100_000,
                        help="events per sealed segment in the verify/query stores")
    parser.add_argument("--skip-query", action="store_true", help="skip the 10M-event query part")
    parser.add_argument("--out", type=Path, default=Path("bench/results/audit.md"))
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with Registry.init(tmp / "small") as reg:
            reg.ctx.settings = reg.ctx.settings.replace(audit={"seal_events": 0})
            print("append latency ...")
            results.update(bench_append(reg, args.appends))
            print("bulk append ...")
            results.update(bench_bulk(reg, args.bulk_events, 1000))
        with Registry.init(tmp / "verify") as reg:
            results["verify_fill_s"] = fill_segments(reg, args.verify_events, args.segment_events, "verify store")
            print("verify ...")
            results.update(bench_verify(reg, args.verify_events))
        shutil.rmtree(tmp / "verify")
        if args.skip_query:
            results.update(query_events=0, query_segments=0, query_s=float("nan"), one_file_s=float("nan"),
                           query_vs_one_file=float("nan"))
        else:
            with Registry.init(tmp / "query") as reg:
                results["query_fill_s"] = fill_segments(reg, args.query_events, args.segment_events, "query store")
                print("query ...")
                results.update(bench_query(reg, args.query_events, tmp))
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.write_text(_markdown(results))


def _markdown(r: dict[str, Any]) -> str:
    rows = [
        (f"append one event, SQLite (median; p95 {r['append_ms_p95']:.2f} ms)", f"{r['append_ms_median']:.2f} ms",
         f"plain one-row insert transaction {r['plain_insert_ms_median']:.2f} ms", f"{r['append_vs_plain']:.2f}x",
         "<= 5 ms"),
        ("bulk append", f"{r['bulk_events_per_s']:,.0f} events/s",
         f"raw executemany {r['plain_rows_per_s']:,.0f} rows/s", f"{r['bulk_vs_plain_time']:.2f}x time",
         ">= 10,000 events/s"),
        (f"`audit verify` of {r['verify_events']:,} events", f"{r['verify_s']:.2f} s",
         f"json.dumps + SHA-256 per event, nothing read: {r['naive_hash_only_s']:.2f} s",
         f"{r['verify_vs_naive']:.2f}x", "<= 15 s"),
        (f"one actor's events over {r['query_events']:,} events in {r['query_segments']} segments",
         f"{r['query_s']:.3f} s", f"same query on one seq-ordered Parquet file: {r['one_file_s']:.3f} s",
         f"{r['query_vs_one_file']:.2f}x", "<= 1 s"),
    ]
    lines = ["| measure | registry | baseline (same run) | ratio | goal |", "|---|---|---|---|---|",
             *("| " + " | ".join(row) + " |" for row in rows)]
    return (f"# Audit log benchmark\n\nMachine: {r['machine']}, Python {r['python']}. "
            "Produced by `python bench/audit_bench.py`.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
