"""Issue 22's smaller pieces, each on real parts: full-string names, upsert type rules, query time
limits, audit verify on a flipped byte, serve's proxy trust and its bounded
shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import select

from registry import Registry
from registry.audit.models import AuditSegmentRow
from registry.catalog import check_branch_name, check_dataset_name, check_tag_name
from registry.cli.serve_cmds import server_options
from registry.config import Settings
from registry.db import transaction
from registry.errors import BreakingSchemaChange, InvalidInput, InvalidName, QueryInterrupted
from registry.query import QueryLimits, run_query
from tests.conftest import Cli
from tests.support.audit_helpers import make_history
from tests.support.serve_process import start_serve

SLOW_SQL = "SELECT count(*) FROM range(100000000000) a WHERE a.range % 7 = 3"


@pytest.mark.parametrize("check", [check_dataset_name, check_tag_name, check_branch_name])
@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\x00", "\u2028"])
def test_names_are_matched_as_whole_strings(check: object, suffix: str) -> None:
    assert check("signs") == "signs"  # type: ignore[operator]
    with pytest.raises(InvalidName):
        check("signs" + suffix)  # type: ignore[operator]


def test_branch_names() -> None:
    assert check_branch_name("fix/labels-2") == "fix/labels-2"
    for bad in ("", "/x", "x/", "a//b", "deadbeef00", "-x", "a" * 201):
        with pytest.raises(InvalidName):
            check_branch_name(bad)


def test_type_changing_upserts_follow_the_schema_rules(reg: Registry) -> None:
    reg.create_dataset("counts", "id")
    reg.commit("counts", pa.table({"id": [1, 2], "n": [10, 20], "name": ["a", "b"], "score": [0.5, 0.25]}))
    for column, values in (("n", ["30"]), ("name", [7])):
        row = {"id": [3], "n": [30], "name": ["c"], "score": [0.1], column: values}
        with pytest.raises(BreakingSchemaChange, match=f"'{column}' is"):
            reg.commit("counts", pa.table(row), mode="upsert")
    assert reg.read("counts").num_rows == 2  # nothing was written
    # a widening passes: int32 into int64, integers into a double column, a null column
    reg.commit("counts", pa.table({"id": [3], "n": pa.array([30], pa.int32()), "name": ["c"], "score": [1]}),
               mode="upsert")
    reg.commit("counts", pa.table({"id": [4], "n": [40], "name": pa.array([None], pa.null()), "score": [0.2]}),
               mode="upsert")
    # with --allow-breaking the values are converted, and refused when they do not convert
    reg.commit("counts", pa.table({"id": [5], "n": ["50"], "name": ["e"], "score": [0.3]}), mode="upsert",
               allow_breaking=True)
    with pytest.raises(InvalidInput, match="do not fit"):
        reg.commit("counts", pa.table({"id": [6], "n": ["six"], "name": ["f"], "score": [0.3]}), mode="upsert",
                   allow_breaking=True)
    table = reg.read("counts").sort_by("id")
    assert table.column("n").to_pylist() == [10, 20, 30, 40, 50] and table.schema.field("n").type == pa.int64()


def test_upserts_of_the_same_type_family_pass_and_lossy_values_are_refused(reg: Registry) -> None:
    """A CSV relabel reads decimals as double and times as another unit: within one family the upsert
    passes, cast to the dataset's types; a value the cast would change is refused, nothing written."""
    reg.create_dataset("labels", "id")
    reg.commit("labels", pa.table({"id": [1], "conf": pa.array([0.5], pa.float32()),
                                   "at": pa.array([1_000_000], pa.timestamp("us"))}))
    reg.commit("labels", pa.table({"id": [2], "conf": [0.25], "at": pa.array([2_000_000_000], pa.timestamp("ns"))}),
               mode="upsert")
    table = reg.read("labels").sort_by("id")
    assert table.schema.field("conf").type == pa.float32() and table.schema.field("at").type == pa.timestamp("us")
    assert table.column("conf").to_pylist() == [0.5, 0.25] and table.column("at")[1].value == 2_000_000
    with pytest.raises(InvalidInput):  # 1 ns is below the dataset's microsecond unit
        reg.commit("labels", pa.table({"id": [3], "conf": [0.5], "at": pa.array([1], pa.timestamp("ns"))}),
                   mode="upsert")
    with pytest.raises(BreakingSchemaChange, match="'at' is"):  # another time zone is another meaning
        reg.commit("labels", pa.table({"id": [3], "conf": [0.5], "at": pa.array([1], pa.timestamp("us", "UTC"))}),
                   mode="upsert")
    assert reg.read("labels").num_rows == 2


def test_a_query_past_its_time_limit_is_interrupted(reg: Registry) -> None:
    started = time.monotonic()
    with pytest.raises(QueryInterrupted, match="longer than the limit of 0.5 s"):
        run_query(reg.ctx, SLOW_SQL, limits=QueryLimits(timeout=0.5))
    assert time.monotonic() - started < 5


def test_a_cancelled_query_stops(reg: Registry) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(QueryInterrupted, match="cancelled"):
        run_query(reg.ctx, SLOW_SQL, limits=QueryLimits(timeout=60), cancel=cancel)


def test_a_query_within_its_limits_runs(reg: Registry) -> None:
    table = run_query(reg.ctx, "SELECT 42 AS answer", limits=QueryLimits(timeout=5, max_rows=1))
    assert table.to_pylist() == [{"answer": 42}]
    with pytest.raises(InvalidInput, match="more than 1 rows"):
        run_query(reg.ctx, "SELECT * FROM range(2)", limits=QueryLimits(max_rows=1))


def test_audit_verify_names_a_segment_with_a_flipped_byte(reg: Registry, cli: Cli) -> None:
    make_history(reg)
    reg.seal_audit()
    with transaction(reg.ctx.engine, readonly=True) as session:
        segment = session.exec(select(AuditSegmentRow)).one()
    path = reg.ctx.store.local_path(segment.sha256)
    data = bytearray(path.read_bytes())
    os.chmod(path, 0o644)
    undecodable = 0
    for offset in range(4, len(data) - 8, max(1, len(data) // 300)):  # flips across the file, strings included
        trial = bytearray(data)
        trial[offset] ^= 0x80
        path.write_bytes(bytes(trial))
        report = reg.verify_audit()
        assert not report.ok and segment.sha256[:12] in (report.problem or ""), offset
        undecodable += "cannot be decoded" in (report.problem or "")
    assert undecodable, "no flip reached the decoding of a string column"
    result = cli("audit", "verify")
    assert result.code == 1 and segment.sha256[:12] in result.stderr and "Traceback" not in result.stderr


def test_serve_trusts_forwarded_for_only_from_configured_proxies() -> None:
    assert server_options(Settings(api={"trusted_proxies": ""}))["proxy_headers"] is False
    trusted = server_options(Settings(api={"trusted_proxies": "10.0.0.1, 10.0.0.2"}))
    assert trusted["proxy_headers"] is True and trusted["forwarded_allow_ips"] == ["10.0.0.1", "10.0.0.2"]


def test_serve_shuts_down_within_its_grace_period_during_a_query(cli: Cli) -> None:
    from registry.auth.tokens import create_token
    from registry.context import open_context

    ctx = open_context(cli.home)
    try:
        secret, _ = create_token(ctx, "auditor", "auditor", actor="setup")
    finally:
        ctx.close()
    env = {**cli.env(), "REGISTRY_API_SHUTDOWN_GRACE_SECONDS": "2", "REGISTRY_QUERY_TIMEOUT_SECONDS": "600"}
    proc, url = start_serve([], cwd=cli.cwd, env=env, log=cli.cwd / "serve.log")
    try:
        query = threading.Thread(target=lambda: _post_quietly(url, secret), daemon=True)
        query.start()
        time.sleep(1.5)  # the query is running
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert time.monotonic() - started < 2 + 5, "serve outlived its grace period"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _post_quietly(url: str, secret: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server goes away mid-request: that is the point
        httpx.post(url + "/api/v1/query", json={"sql": SLOW_SQL}, headers={"Authorization": f"Bearer {secret}"},
                   timeout=60)


def test_a_parquet_footer_declaring_too_many_rows_is_refused_before_reading(tmp_path: Path) -> None:
    from registry.snapshots.inputs import InputLimits
    from registry.snapshots.tables import read_table_file

    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"id": pa.array(range(300_000), pa.int64())}), path, compression="zstd")
    with pytest.raises(InvalidInput, match="300,000 rows, more than the limit of 1,000"):
        read_table_file(path, InputLimits(max_rows=1_000))


def test_errors_over_http_do_not_show_server_paths(reg: Registry) -> None:
    from registry.api.app import create_app
    from tests.support.api_support import bearer, serve

    reg.create_dataset("signs", "id")
    reg.commit("signs", pa.table({"id": [1, 2], "label": ["a", "b"]}))
    from registry.models import SnapshotRow

    with transaction(reg.ctx.engine, readonly=True) as session:
        change = session.exec(select(SnapshotRow.change_sha256)).one()
    reg.ctx.store.local_path(change).unlink()  # a damaged store: the read names the missing object
    headers = bearer(reg, "r", "reader")
    with serve(create_app(reg.home)) as url:
        response = httpx.get(url + "/api/v1/snapshots/signs/data", headers=headers)
    assert 400 <= response.status_code < 500, response.text
    message = response.json()["error"]["message"]
    assert "object" in message and str(reg.home) not in message and "<registry home>" in message


@pytest.mark.parametrize(("text", "per_line", "deep"), [
    (b"[\n" * 100 + b"]\n" * 100, False, True),  # a pretty-printed document spans lines
    (b'[{"a": [1, "]]]]\\\\\\"' + b"[" * 300 + b'"]}]\n', False, False),  # brackets and escaped quotes in a string
    (b"[[[]]]\n" * 1000, True, False),  # many shallow lines
    (b'{"a": "\\\\\\\\"}\n' + b"[" * 70 + b"]" * 70 + b"\n", True, True),  # escaped backslashes end the string
    (b'{"a": "unbalanced\n' + b"[" * 70 + b"]" * 70 + b"\n", True, True),  # a bad line cannot hide the next
    (b'{"s": "' + b"[" * 500 + b'"}\n', True, False),
])
def test_json_nesting_is_measured_outside_strings(tmp_path: Path, text: bytes, per_line: bool, deep: bool) -> None:
    from registry.snapshots.inputs import check_json_depth

    path = tmp_path / "doc.json"
    path.write_bytes(text)
    if deep:
        with pytest.raises(InvalidInput, match="levels deep, more than the limit of 64"):
            check_json_depth(path, per_line=per_line)
    else:
        check_json_depth(path, per_line=per_line)
