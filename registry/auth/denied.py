"""Recording refused API write attempts in the audit log (design invariant 6: who tried what).

A client hammering a refused route must not grow the audit log without bound, so per token (or, without
one, per client address) the first refusal of a window is always recorded, and later ones within
``audit_denied_interval_seconds`` are only counted; the next recorded event says how many were left out
(``suppressed``), so nothing is silently lost from the count. The window lives in the catalog
(``denied_window``), so every server process (uvicorn workers, several hosts on one PostgreSQL) shares
it: N workers record no more than one.

Each refusal is one short transaction: a conditional update counts it inside an open window; otherwise the
refusal claims a new window (a conditional update, or an insert for a first refusal) and appends the event
with the count taken over, in the same transaction, so a count is never lost or recorded twice.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from registry.audit import log as audit
from registry.auth.models import DeniedWindowRow
from registry.context import Context
from registry.db import table_of, transaction

__all__ = ["denied_key", "record_denied"]

_WINDOWS = table_of(DeniedWindowRow)
_ATTEMPTS = 4
"""Claims lost to another process's concurrent claim or insert before this one gives up recording."""


def denied_key(ctx: Context) -> str:
    """What the throttle counts refusals by: the token's name, else the client's address."""
    if ctx.principal:
        return f"token:{ctx.principal}"
    return f"addr:{ctx.client.remote_addr or 'unknown'}"


def record_denied(ctx: Context, action: str, method: str, path: str, now: float | None = None) -> bool:
    """Append a ``request.denied`` event (``ctx.principal`` is the actor) unless this token (or client
    address) had one recorded less than ``audit_denied_interval_seconds`` ago, in which case the refusal
    is counted for the next recorded event; whether it was recorded. ``now`` is the UNIX time (tests)."""
    now = time.time() if now is None else now
    interval = ctx.settings.audit.denied_interval_seconds
    details: dict[str, object] = {"action": action, "method": method, "path": path}
    if interval <= 0:
        _record(ctx, None, details)
        return True
    key = denied_key(ctx)
    for _ in range(_ATTEMPTS):
        try:
            with transaction(ctx.engine) as session:
                return _admit(session, ctx, key, now, interval, details)
        except IntegrityError:  # another process inserted the key's first window: count against it
            continue
    return False


def _admit(session: Session, ctx: Context, key: str, now: float, interval: float,
           details: dict[str, object]) -> bool:
    columns = _WINDOWS.c
    counted = session.execute(update(_WINDOWS).where(columns.key == key, columns.window_started > now - interval)
                              .values(suppressed=columns.suppressed + 1))
    if counted.rowcount:  # type: ignore[attr-defined]
        return False
    claimed = session.execute(update(_WINDOWS).where(columns.key == key, columns.window_started <= now - interval)
                              .values(window_started=now))
    if claimed.rowcount:  # type: ignore[attr-defined]
        # the row is locked by this transaction now: its count is exact
        suppressed = session.execute(select(columns.suppressed).where(columns.key == key)).scalar_one()
        session.execute(update(_WINDOWS).where(columns.key == key).values(suppressed=0))
    else:  # no window yet (a concurrent insert makes this fail: the caller counts it then)
        session.execute(insert(_WINDOWS).values(key=key, window_started=now, suppressed=0))
        suppressed = 0
    # windows long over with nothing left to report carry no information
    session.execute(delete(_WINDOWS).where(columns.window_started <= now - 2 * interval, columns.suppressed == 0,
                                           columns.key != key))
    _record(ctx, session, {**details, "suppressed": suppressed} if suppressed else details)
    return True


def _record(ctx: Context, session: Session | None, details: dict[str, object]) -> None:
    where = f"{details['method']} {details['path']}"[:200]
    if session is not None:
        audit.record(session, ctx, "request.denied", "request", where, details=details)
        return
    with transaction(ctx.engine) as own:
        audit.record(own, ctx, "request.denied", "request", where, details=details)
