"""Comparing a catalog row with the audit event that recorded it: the wording every cross-check problem uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["CLOCK_SKEW_SECONDS", "compare", "differs", "time_problem"]

CLOCK_SKEW_SECONDS = 60.0
"""A row's own time may precede the event that recorded it by at most this much (same transaction)."""


def differs(what: str, column: str, catalog: object, chain: object) -> str:
    return f"{what}: {column} is {catalog!r} in the catalog, but the audit chain recorded {chain!r}"


def compare(what: str, event: dict[str, Any], created_at: str | None,
            columns: tuple[tuple[str, object, object], ...]) -> list[str]:
    """Each ``(column, catalog value, chain value)`` that differs, and a ``created_at`` out of step with ``event``."""
    problems = [differs(what, column, ours, theirs) for column, ours, theirs in columns if ours != theirs]
    late = time_problem(what, "created_at", created_at, event)
    return problems + ([late] if late else [])


def time_problem(what: str, column: str, row_time: str | None, event: dict[str, Any]) -> str | None:
    """A row's time must fall within :data:`CLOCK_SKEW_SECONDS` before the event that recorded it."""
    try:
        gap = (_parse(event["time"]) - _parse(row_time or "")).total_seconds()
    except ValueError:
        gap = -1.0
    if 0 <= gap <= CLOCK_SKEW_SECONDS:
        return None
    return (f"{what}: {column} is {row_time!r} in the catalog, but the audit chain recorded the change at "
            f"{event['time']}")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
