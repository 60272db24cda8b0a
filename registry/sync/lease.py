"""One sync of a dataset at a time, across processes: a lease row in the catalog (``sync_lease``).

A webhook's coalescing runner keeps one sync per dataset inside a process; several ``registry serve``
workers (or a cron sync beside them) share only the catalog, so the lease lives there. Taking it is one
INSERT, or, when a row exists, an UPDATE that succeeds only if the holder's lease expired or the holder
is a process of this host that no longer runs (a killed sync never blocks the next one for long).
A sync that finds the lease held gets :class:`~registry.errors.Conflict` naming the holder; the
webhook runner waits and syncs after it, so an event is still followed by a sync that began after it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from registry.context import Context
from registry.db import transaction
from registry.errors import Conflict
from registry.sync.models import SyncLeaseRow
from registry.timeutil import utc_now

__all__ = ["LEASE_SECONDS", "acquire", "hold_lease", "release"]

LEASE_SECONDS = 1800
"""How long a lease lasts: longer than any sync measured (98 s for 20,000 tasks x 3 annotations)."""

_HOST = socket.gethostname()


def _owner() -> str:
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _gone(owner: str) -> bool:
    """True when ``owner`` is a process of this host that has exited."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(ctx: Context, name: str, owner: str, seconds: float = LEASE_SECONDS) -> str | None:
    """Take the sync lease of ``name`` for ``owner``; None when taken, else the current holder."""
    try:
        with transaction(ctx.engine) as session:
            session.add(SyncLeaseRow(dataset=name, owner=owner, expires_at=_later(seconds)))
        return None
    except IntegrityError:
        pass
    with transaction(ctx.engine) as session:
        current = session.get(SyncLeaseRow, name)
        if current is None:  # released in between: the next call takes it
            return "a sync that just ended"
        holder = current.owner
        if current.expires_at >= utc_now() and not _gone(holder):
            return f"{holder} until {current.expires_at}"
        taken = session.execute(update(SyncLeaseRow).where(SyncLeaseRow.dataset == name,  # type: ignore[arg-type]
                                                           SyncLeaseRow.owner == holder)  # type: ignore[arg-type]
                                .values(owner=owner, expires_at=_later(seconds)))
        return None if taken.rowcount == 1 else "another process that took it first"  # type: ignore[attr-defined]


def release(ctx: Context, name: str, owner: str) -> None:
    """Give the lease of ``name`` back (only if ``owner`` still holds it)."""
    with transaction(ctx.engine) as session:
        session.execute(delete(SyncLeaseRow).where(SyncLeaseRow.dataset == name,  # type: ignore[arg-type]
                                                   SyncLeaseRow.owner == owner))  # type: ignore[arg-type]


@contextmanager
def hold_lease(ctx: Context, name: str) -> Iterator[str]:
    """Hold ``name``'s sync lease for the block.

    Raises:
        Conflict: another process is syncing ``name`` (the message names it); nothing was done.
    """
    owner = _owner()
    holder = acquire(ctx, name, owner)
    if holder is not None:
        raise Conflict(f"a sync of {name} is already running ({holder}); it runs again after that one")
    try:
        yield owner
    finally:
        release(ctx, name, owner)
