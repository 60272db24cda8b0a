"""The request.denied throttle across processes (issue 22): its window lives in the catalog, so two server
processes (or two Registry contexts) on one catalog record the first refusal of a token once, count the rest,
and the next recorded event carries how many were left out; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from registry import Registry
from registry.auth.denied import record_denied
from registry.auth.tokens import create_token
from registry.context import ClientInfo, Context
from tests.support.hostile_support import start_server


def _as(ctx: Context, principal: str | None, addr: str = "127.0.0.1") -> Context:
    acting = dataclasses.replace(ctx, principal=principal, client=ClientInfo(kind="api", remote_addr=addr))
    acting.cache = ctx.cache
    return acting


def _denied(reg: Registry) -> list[dict[str, object]]:
    return [{"actor": e.actor, **e.details} for e in reg.audit_log(action="request.denied")]


def test_two_contexts_on_one_catalog_share_the_window(home: Path) -> None:
    with Registry.open(home) as one, Registry.open(home) as two:
        a, b = _as(one.ctx, "reader"), _as(two.ctx, "reader")
        recorded = [record_denied(ctx, "commit", "POST", "/api/v1/x", now=1000.0 + i)
                    for i, ctx in enumerate([a, b] * 5)]
        assert recorded == [True] + [False] * 9  # the first always, the rest counted
        # another token and an anonymous address each have their own window
        assert record_denied(_as(two.ctx, "writer"), "commit", "POST", "/api/v1/x", now=1001.0)
        assert record_denied(_as(one.ctx, None, "10.0.0.7"), "commit", "POST", "/api/v1/x", now=1001.0)
        assert not record_denied(_as(two.ctx, None, "10.0.0.7"), "commit", "POST", "/api/v1/x", now=1002.0)
        # past the window (60 s by default), from the other context: recorded, carrying the count
        assert record_denied(b, "commit", "POST", "/api/v1/y", now=1000.0 + 61)
        assert not record_denied(a, "commit", "POST", "/api/v1/y", now=1000.0 + 62)
        events = _denied(one)
        assert one.verify().ok
    assert [(e["actor"], e.get("suppressed"), e["path"]) for e in events] == [
        ("reader", None, "/api/v1/x"), ("writer", None, "/api/v1/x"), (events[2]["actor"], None, "/api/v1/x"),
        ("reader", 9, "/api/v1/y")]


def test_two_server_processes_record_the_first_refusal_once(home: Path, tmp_path: Path,
                                                            database_url: str | None) -> None:
    with Registry.open(home) as reg:
        reg.create_dataset("signs", "id")
        reg.commit("signs", pa.table({"id": [1]}))
        secret, _ = create_token(reg.ctx, "reader", "reader", actor="setup")
    extra = {"REGISTRY_DATABASE_URL": database_url} if database_url else {}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    servers = [start_server(home, tmp_path / "a", extra), start_server(home, tmp_path / "b", extra)]
    try:
        headers = {"Authorization": f"Bearer {secret}"}
        for number in range(12):
            url = servers[number % 2].api
            refused = httpx.post(f"{url}/datasets", json={"name": f"nope-{number}", "key": ["id"]},
                                 headers=headers, timeout=30)
            assert refused.status_code == 403
    finally:
        for server in servers:
            server.stop()
    with Registry.open(home) as reg:
        denied = reg.audit_log(action="request.denied", actor="reader")
        assert reg.verify().ok
    assert len(denied) == 1 and "suppressed" not in denied[0].details


def test_an_interval_of_zero_records_every_refusal(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_AUDIT_DENIED_INTERVAL_SECONDS", "0")
    with Registry.open(home) as reg:
        ctx = _as(reg.ctx, "reader")
        assert all(record_denied(ctx, "commit", "POST", "/api/v1/x", now=1000.0) for _ in range(3))
        assert len(_denied(reg)) == 3
