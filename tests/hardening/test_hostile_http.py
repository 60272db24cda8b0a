"""Hostile requests against a real `registry serve` process on 127.0.0.1 (issue 22).

One server for the module, with small limits (tests/support/hostile_support.py). Every answer must be a 4xx
or a success, never a 5xx; the process must survive every request; its peak RSS must stay within the
configured limits plus a stated margin; and nothing half-written may remain (no upload folder, no
unreferenced object, a clean `verify`).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.auth.tokens import create_token
from registry.context import create_home
from registry.lineage.emit import registry_namespace
from tests.conftest import Cli
from tests.support.api_support import ARROW, run_event
from tests.support.hostile_support import (
    LIMITS,
    MIB,
    Server,
    cpu_seconds,
    memory,
    raw_exchange,
    rss_budget,
    start_server,
)

ROWS = pa.table({"id": list(range(100)), "label": [f"l{i % 5}" for i in range(100)]})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, dict[str, str]], Path]]:
    """The server, tokens by role (plus ``scoped``: a writer limited to `signs`), and the home."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL"):
            mp.delenv(name, raising=False)
        home = create_home(root / "home").home
        with Registry.open(home) as reg:
            reg.create_dataset("signs", "id")
            reg.create_dataset("other", "id")
            reg.commit("signs", ROWS)
            reg.commit("other", ROWS)
            tokens = {}
            for name, role, scope in (("admin", "admin", []), ("writer", "writer", []), ("reader", "reader", []),
                                      ("auditor", "auditor", []), ("scoped", "writer", ["signs"])):
                secret, _ = create_token(reg.ctx, name, role, scope, actor="setup")
                tokens[name] = {"Authorization": f"Bearer {secret}"}
        server = start_server(home, root)
        try:
            yield server, tokens, home
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()


@pytest.fixture
def server(world: tuple[Server, dict[str, dict[str, str]], Path]) -> Iterator[Server]:
    """The module's server; after each test it must still be up, with no upload folder left behind."""
    yield world[0]
    assert world[0].alive(), "the server process died"
    assert list(world[0].spool.iterdir()) == [], "an upload folder was left behind"


@pytest.fixture
def tokens(world: tuple[Server, dict[str, dict[str, str]], Path]) -> dict[str, dict[str, str]]:
    return world[1]


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


def _arrow(table: pa.Table, compression: str | None = None) -> bytes:
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_an_anonymous_body_is_refused_before_it_is_read(server: Server) -> None:
    """300 MB declared, 64 KB sent, no token: 401 at once, and the server's memory does not move."""
    before = memory(server.proc.pid)[0]
    head = ("POST /api/v1/datasets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300 * MIB}\r\n\r\n")
    assert raw_exchange(server.url, head, b"[" * 65536).startswith("HTTP/1.1 401")
    assert memory(server.proc.pid)[0] < before + 32 * MIB


def test_bodies_past_the_limits_are_refused(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    auth = tokens["admin"]["Authorization"]
    declared = (f"POST /api/v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {40 * MIB}\r\n\r\n")
    assert raw_exchange(server.url, declared, b"{").startswith("HTTP/1.1 413")
    limit = int(LIMITS["REGISTRY_API_MAX_BODY_BYTES"])
    chunk = b'{"sql": "' + b" " * limit + b'"}'
    chunked = (f"POST /api/v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    assert raw_exchange(server.url, chunked, body).startswith("HTTP/1.1 413")
    with server.client(tokens["writer"]) as http:
        big = http.post("/datasets/signs/commits", content=b"\0" * (5 * MIB), headers={"Content-Type": ARROW})
        assert _error(big)[:2] == (413, "too_large")


def test_deeply_nested_inputs_are_refused_not_crashed_on(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    deep = b'{"id": 1, "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}\n"
    with server.client(tokens["writer"]) as http:
        response = http.post("/datasets/signs/commits", files={"file": ("rows.jsonl", deep)})
        status, code, message = _error(response)
        assert (status, code) == (422, "invalid_input")
        assert "rows.jsonl: line 1 nests 10001 levels deep" in message
        assert "registry-upload" not in message and str(server.spool) not in message
        for depth in (1_000, 5_000, 100_000):  # RecursionError territory for recursive parsers
            nested = http.post("/lineage", content=b"[" * depth + b"]" * depth,
                               headers={"Content-Type": "application/json"})
            assert 400 <= nested.status_code < 500, (depth, nested.status_code)


def test_hostile_label_studio_exports_are_refused(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    """Deep nesting made ijson's memory grow with the square of the depth; invalid UTF-8 and wrong shapes."""
    exports = {"deep.json": b"[" * 100_000 + b"]" * 100_000,
               "deep-task.json": b'[{"id": 1, "data": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}]",
               "bad-utf8.json": b'[{"id": 1, "data": {"text": "\xff"}}]', "object.json": b'{"tasks": 1}'}
    with server.client(tokens["writer"]) as http:
        for name, data in exports.items():
            response = http.post("/datasets/labels/imports", params={"format": "label-studio"},
                                 files={"file": (name, data)})
            status, code, message = _error(response)
            assert 400 <= status < 500 and name in message and "registry-upload" not in message, (name, message)
        assert "labels" not in [d["name"] for d in http.get("/datasets").json()["data"]]


def test_decompression_bombs_are_refused(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    """A few KB that declare or decode to more rows or bytes than the limits allow."""
    many = pa.table({"id": pa.array(range(1_000_000), pa.int64()), "label": pa.array(["x"] * 1_000_000)})
    sink = io.BytesIO()
    pq.write_table(many, sink, compression="zstd")
    assert sink.tell() < 4 * MIB
    with server.client(tokens["writer"]) as http:
        parquet = http.post("/datasets/signs/commits", files={"file": ("bomb.parquet", sink.getvalue())})
        status, code, message = _error(parquet)
        assert (status, code) == (413, "too_large") and "1,000,000 rows" in message
        arrow = http.post("/datasets/signs/commits", content=_arrow(many, "zstd"), headers={"Content-Type": ARROW})
        assert _error(arrow)[:2] == (413, "too_large")


@pytest.mark.parametrize(("column", "array"), [
    ("u", pa.UnionArray.from_sparse(pa.array([0, 1] * 50, pa.int8()), [pa.array(range(100)),
                                                                         pa.array(["a"] * 100)])),
    ("r", pa.RunEndEncodedArray.from_arrays([100], ["x"])),
    ("m", pa.array([pa.MonthDayNano([1, 2, 3])] * 100, pa.month_day_nano_interval())),
])
def test_unsupported_arrow_types_are_422_naming_the_column(server: Server, tokens: dict[str, dict[str, str]],
                                                           column: str, array: pa.Array) -> None:
    table = pa.table({"id": range(100), column: array})
    with server.client(tokens["writer"]) as http:
        status, code, message = _error(http.post("/datasets/signs/commits", content=_arrow(table),
                                                 headers={"Content-Type": ARROW}))
    assert (status, code) == (422, "invalid_input") and f"column {column!r}" in message


def test_duplicate_columns_are_422_naming_the_column(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    duplicated = pa.Table.from_arrays([pa.array([1, 2]), pa.array(["a", "b"]), pa.array(["c", "d"])],
                                      names=["id", "label", "label"])
    with server.client(tokens["writer"]) as http:
        arrow = http.post("/datasets/signs/commits", content=_arrow(duplicated), headers={"Content-Type": ARROW})
        csv = http.post("/datasets/signs/commits", files={"file": ("rows.csv", b"id,label,label\n1,a,b\n")})
    for response in (arrow, csv):
        status, code, message = _error(response)
        assert (status, code) == (422, "invalid_input") and "'label' appears more than once" in message
    assert "rows.csv:" in csv.json()["error"]["message"]


def test_duplicate_query_parameters_are_422(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    with server.client(tokens["reader"]) as http:
        response = http.get("/snapshots/signs/data?training=true&training=false")
    status, code, message = _error(response)
    assert (status, code) == (422, "invalid_input") and "'training'" in message


def test_names_with_a_trailing_newline_are_refused(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    with server.client(tokens["writer"]) as http:
        dataset = http.post("/datasets", json={"name": "signs\n", "key": ["id"]})
        tag = http.post("/refs/signs@main/tags", json={"tag": "v1\n"})
        main = http.post("/refs/signs@main/tags", json={"tag": "main\n"})
        assert [_error(r)[:2] for r in (dataset, tag, main)] == [(422, "invalid_name")] * 3
        assert "signs\n" not in [d["name"] for d in http.get("/datasets").json()["data"]]


def test_a_scoped_token_cannot_reach_other_datasets_through_lineage(
        server: Server, tokens: dict[str, dict[str, str]], world: tuple[Server, dict[str, dict[str, str]], Path]
) -> None:
    with Registry.open(world[2]) as reg:
        namespace = registry_namespace(reg.ctx)
        other = reg.show("other").id
        edges_before = len(reg.audit_log(action="lineage.ingest"))
    with server.client(tokens["scoped"]) as http:
        foreign = http.post("/lineage", json=run_event([{"namespace": namespace, "name": "other",
                                                         "facets": {"version": {"datasetVersion": other[:12]}}}]))
        missing = http.post("/lineage", json=run_event([{"namespace": namespace, "name": "nosuch",
                                                         "facets": {"version": {"datasetVersion": "0" * 12}}}]))
        own = http.post("/lineage", json=run_event([{"namespace": namespace, "name": "signs",
                                                     "facets": {"version": {"datasetVersion": "main"}}}]))
    assert _error(foreign) == (404, "not_found", "unknown dataset 'other'; the list of datasets shows their names")
    assert foreign.json()["error"]["hint"] == {"kind": "command", "name": "dataset list", "value": None}
    assert _error(missing)[:2] == (404, "not_found")
    assert _error(missing)[2].replace("nosuch", "other") == _error(foreign)[2]  # the same answer as for nothing
    assert other not in foreign.text
    assert own.status_code == 200, own.text
    with Registry.open(world[2]) as reg:
        ingested = reg.audit_log(action="lineage.ingest")
    assert len(ingested) == edges_before + 1 and all("other@" not in json.dumps(e.details) for e in ingested)


def test_query_limits_over_http(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    with server.client(tokens["auditor"]) as http:
        capped = http.post("/query", json={"sql": "SELECT * FROM range(5000)"})
        status, code, message = _error(capped)
        assert (status, code) == (422, "invalid_input") and "more than 1,000 rows" in message
        assert http.post("/query", json={"sql": "SELECT * FROM range(1000)"}).status_code == 200
        hungry = http.post("/query", json={"sql": "SELECT list(range) AS l FROM range(30000000) GROUP BY range % 3"})
        status, code, message = _error(hungry)
        assert status == 422 and "memory" in message.lower(), message


def test_a_query_stops_when_its_client_disconnects(server: Server, tokens: dict[str, dict[str, str]]) -> None:
    endless = {"sql": "SELECT count(*) FROM range(100000000000) a WHERE a.range % 7 = 3"}
    with server.client(tokens["auditor"], timeout=1.0) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/query", json=endless)
    time.sleep(1.0)  # the disconnect poll and DuckDB's interrupt check
    spent = cpu_seconds(server.proc.pid)
    time.sleep(1.5)
    assert cpu_seconds(server.proc.pid) - spent < 0.5, "the abandoned query is still running"


def test_forwarded_for_is_not_believed_by_default(server: Server, tokens: dict[str, dict[str, str]],
                                                  world: tuple[Server, dict[str, dict[str, str]], Path]) -> None:
    with server.client({**tokens["writer"], "X-Forwarded-For": "203.0.113.66"}) as http:
        assert http.post("/datasets", json={"name": "spoofed", "key": ["id"]}).status_code == 201
    with Registry.open(world[2]) as reg:
        [event] = reg.audit_log(action="dataset.create", dataset="spoofed")
    assert event.client["remote_addr"] == "127.0.0.1"


def test_refused_requests_are_audited_once_per_interval(server: Server, tokens: dict[str, dict[str, str]],
                                                         world: tuple[Server, dict[str, dict[str, str]], Path]
                                                         ) -> None:
    with server.client(tokens["reader"]) as http:
        for number in range(20):
            refused = http.post("/datasets", json={"name": f"nope-{number}", "key": ["id"]})
            assert refused.status_code == 403
    with Registry.open(world[2]) as reg:
        denied = reg.audit_log(action="request.denied", actor="reader")
    assert len(denied) == 1 and denied[0].details["path"] == "/api/v1/datasets"


def test_zz_no_5xx_memory_within_limits_and_nothing_half_written(
        world: tuple[Server, dict[str, dict[str, str]], Path], tmp_path: Path) -> None:
    """Runs last in this module (name order under -p no:randomly; any order holds the claims so far)."""
    server, _, home = world
    assert server.statuses, "no request was recorded"
    assert [s for s in server.statuses if s[1] >= 500] == []
    peak = memory(server.proc.pid)[1]
    assert peak <= rss_budget(server.idle_rss), (peak, server.idle_rss)
    print(f"\nhostile HTTP suite: {len(server.statuses)} responses, 0 of 5xx; idle RSS "
          f"{server.idle_rss / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB, budget {rss_budget(server.idle_rss) / MIB:.0f}")
    cli = Cli(home=home, cwd=tmp_path)
    verify = cli("verify", "--json")
    assert verify.code == 0, verify.stdout + verify.stderr
    gc = json.loads(cli("gc", "--dry-run", "--min-age", "0", "--json").stdout)
    assert (gc["deleted"], gc["leftovers"]) == ([], []), gc  # no object or temporary file of a refused upload
