"""Shared helpers of the audit tests: a small history, and raw access to the catalog's events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from registry import Registry
from registry.audit.chain import FIELDS, canonical_bytes, event_hash
from tests.support.helpers import labels_table

EVENT_COLUMNS = FIELDS[:-1]
"""Every stored column of an event but its hash: what the hash covers."""


def make_history(reg: Registry, tags: int = 4) -> None:
    """A dataset, one commit and ``tags`` tags: ``2 + tags`` events."""
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(50), message="first")
    for i in range(tags):
        reg.tag("labels@main", f"t{i}")


def events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM audit_event ORDER BY seq"))]


def execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def insert_event(engine: Engine, row: dict[str, Any]) -> None:
    """Put an event row straight into the catalog, as someone with write access to it could."""
    execute(engine, f"INSERT INTO audit_event ({', '.join(FIELDS)}) VALUES ({', '.join(':' + c for c in FIELDS)})",
            **{c: row[c] for c in FIELDS})


def rehash(event: dict[str, Any], prev_hash: str) -> str:
    """The hash ``event`` would have after ``prev_hash`` (what a forger recomputes)."""
    values = {name: event[name] for name in EVENT_COLUMNS}
    values["prev_hash"] = prev_hash
    return event_hash(prev_hash, canonical_bytes(**values))


def forge_consistent_chain(engine: Engine, seq: int, **changes: Any) -> None:
    """Alter event ``seq`` and recompute every later hash and the head: a rewrite only a checkpoint catches."""
    rows = events(engine)
    prev = None
    for row in rows:
        if row["seq"] == seq:
            row.update(changes)
        if prev is not None:
            row["prev_hash"] = prev
        row["hash"] = rehash(row, row["prev_hash"])
        prev = row["hash"]
        execute(engine, "UPDATE audit_event SET actor = :actor, prev_hash = :prev_hash, hash = :hash "
                        "WHERE seq = :seq", actor=row["actor"], prev_hash=row["prev_hash"], hash=row["hash"],
                seq=row["seq"])
    execute(engine, "UPDATE audit_head SET hash = :hash WHERE id = 1", hash=prev)
