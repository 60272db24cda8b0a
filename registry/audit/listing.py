"""``registry audit log``: events filtered by dataset, actor, action and time, through the query layer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from registry.audit.log import AuditEvent
from registry.context import Context
from registry.errors import InvalidInput
from registry.query import run_query

__all__ = ["list_events", "parse_time"]


def parse_time(text: str, what: str) -> datetime:
    """An ISO date or time (``2026-11-23``, ``2026-11-23T10:00``, with or without ``Z``) as naive UTC.

    Raises:
        InvalidInput: the text is not an ISO date or time.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{what}: {text!r} is not an ISO date or time (e.g. 2026-11-23 or 2026-11-23T10:00Z)") \
            from exc
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def list_events(ctx: Context, *, dataset: str | None = None, actor: str | None = None, action: str | None = None,
                since: str | None = None, until: str | None = None, limit: int | None = None) -> list[AuditEvent]:
    """Events matching every filter given, oldest first; ``action`` matches exactly or as a prefix
    ending in a dot (``snapshot.`` selects every snapshot action); ``until`` is exclusive."""
    where: list[str] = []
    params: list[object] = []
    for column, value in (("dataset", dataset), ("actor", actor)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if action is not None:
        where.append("starts_with(action, ?)" if action.endswith(".") else "action = ?")
        params.append(action)
    for op, text, what in ((">=", since, "--since"), ("<", until, "--until")):
        if text is not None:
            where.append(f"time {op} ?")
            params.append(parse_time(text, what))
    sql = "SELECT * FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
    if limit is not None:
        sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY seq"
    rows = run_query(ctx, sql, parameters=params).to_pylist()
    return [AuditEvent(r["seq"], r["event_id"], _iso(r["time"]), r["actor"], r["actor_kind"], r["action"],
                       r["object_type"], r["object_id"], r["dataset"], r["snapshot"], json.loads(r["details"]),
                       json.loads(r["client"]), r["prev_hash"], r["hash"]) for r in rows]


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
