"""The API's hot reads (token lookup, ref resolution, gate status) never wait for SQLite's write lock.

They run as Core queries outside the ORM session; each must still open its transaction read-only, or
every API request would queue behind a commit in progress (and behind each other).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from registry import Registry
from registry.auth.tokens import authenticate, create_token
from registry.quality.gate import check_gate
from registry.snapshots.history import resolve


def _finishes_while_a_writer_holds_the_lock(reg: Registry, call: Callable[[], Any]) -> Any:
    writer = sqlite3.connect(reg.ctx.paths.home / "catalog.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    result: list[Any] = []
    try:
        thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
        thread.start()
        thread.join(10)  # the engine's busy timeout is 60 s: a reader waiting for the lock would still hang
        assert not thread.is_alive(), "the read waited for the write lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    return result[0]


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Registry, str, str]]:
    """A registry on the embedded SQLite catalog (its write lock is what these tests are about)."""
    reg = Registry.init(tmp_path / "home")
    reg.create_dataset("signs", "id")
    snapshot = reg.commit("signs", pa.table({"id": [1, 2], "label": ["a", "b"]})).snapshot_id
    reg.set_policy("signs", "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 2\n")
    reg.qa_run("signs")
    secret, _ = create_token(reg.ctx, "ci", "ci", [], actor="setup")
    yield reg, snapshot, secret
    reg.close()


def test_token_lookup_does_not_wait_for_a_writer(seeded: tuple[Registry, str, str]) -> None:
    reg, _, secret = seeded
    principal = _finishes_while_a_writer_holds_the_lock(reg, lambda: authenticate(reg.ctx, secret))
    assert (principal.name, principal.role) == ("ci", "ci")


def test_ref_resolution_does_not_wait_for_a_writer(seeded: tuple[Registry, str, str]) -> None:
    reg, snapshot, _ = seeded
    assert _finishes_while_a_writer_holds_the_lock(reg, lambda: resolve(reg.ctx, "signs")).snapshot_id == snapshot


def test_gate_status_does_not_wait_for_a_writer_and_equals_the_full_path(seeded: tuple[Registry, str, str]) -> None:
    reg, snapshot, _ = seeded
    status = _finishes_while_a_writer_holds_the_lock(reg, lambda: check_gate(reg.ctx.engine, "signs@main"))
    assert (status.snapshot_id, status.passes) == (snapshot, True)
    # A ref the Core path does not handle (REF~N) takes the ORM path and answers the same.
    reg.commit("signs", pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]}))
    assert check_gate(reg.ctx.engine, "signs@main~1").to_dict() == status.to_dict()
