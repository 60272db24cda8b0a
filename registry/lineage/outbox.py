"""The lineage outbox: queue events inside an operation's transaction, deliver them after it.

Queueing (:func:`enqueue`) is one INSERT in the caller's transaction, so an event exists exactly
when the operation committed (design invariant 9). Delivery (:func:`deliver`) runs later, outside
any operation: one deliverer at a time holds the lease row, sends pending events in outbox id
order (so per run in the order they were queued) and marks each delivered in its own short
transaction right after the transport accepted it. A failed send counts an attempt, keeps the
error and schedules the next automatic try with exponential backoff; later events of that run wait
behind it. After ``max_attempts`` an event is parked as ``failed`` until ``flush --retry-failed``.

Delivery is exactly once unless the process dies between a successful send and its mark (a
window of one catalog write): then the next pass sends that event again, so a crash makes it at
least once. OpenLineage consumers key runs by run id and event type, which makes such a repeat
harmless; docs/lineage.md discusses it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry.context import Context
from registry.db import transaction
from registry.failpoints import failpoint
from registry.lineage.models import LineageLeaseRow, LineageOutboxRow
from registry.lineage.settings import LineageSettings
from registry.lineage.transport import describe_sink, open_sender
from registry.timeutil import parse_utc, utc_now

__all__ = ["DeliveryReport", "OutboxStatus", "deliver", "enqueue", "outbox_status", "retry_failed"]

_BATCH = 200


def enqueue(session: Session, events: Sequence[dict[str, Any]]) -> list[LineageOutboxRow]:
    """Queue RunEvents (dicts) in ``session``'s transaction; they are sent after it commits."""
    now = utc_now()
    rows = [LineageOutboxRow(run_id=e["run"]["runId"], event_type=e["eventType"], job_namespace=e["job"]["namespace"],
                             job_name=e["job"]["name"], payload=json.dumps(e, sort_keys=True, default=str),
                             created_at=now, next_attempt_at=now) for e in events]
    session.add_all(rows)
    session.flush()
    return rows


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    failed_attempts: int = 0
    parked: int = 0
    pending: int | None = None
    """Events still pending afterwards (counted by explicit and waiting flushes only)."""
    busy: bool = False
    """Another process held the delivery lease; nothing was sent."""
    disabled: bool = False
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _later(seconds: float) -> str:
    return (parse_utc(utc_now()) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _acquire(ctx: Context, owner: str, seconds: float) -> bool:
    """Take (or renew) the delivery lease for ``seconds`` if it is free, expired or ours."""
    now = utc_now()
    with transaction(ctx.engine) as session:
        result = session.execute(
            update(LineageLeaseRow).where(
                col(LineageLeaseRow.id) == 1,
                col(LineageLeaseRow.owner).is_(None) | (col(LineageLeaseRow.expires_at) < now)
                | (col(LineageLeaseRow.owner) == owner))
            .values(owner=owner, expires_at=_later(seconds)))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return True
        if session.get(LineageLeaseRow, 1) is not None:
            return False
    try:  # the row is missing (a catalog created without the migration's insert)
        with transaction(ctx.engine) as session:
            session.add(LineageLeaseRow(id=1, owner=owner, expires_at=_later(seconds)))
        return True
    except IntegrityError:
        return False


def _release(ctx: Context, owner: str) -> None:
    with transaction(ctx.engine) as session:
        session.execute(update(LineageLeaseRow).where(col(LineageLeaseRow.id) == 1, col(LineageLeaseRow.owner) == owner)
                        .values(owner=None, expires_at=None))


def _due(ctx: Context, after_id: int) -> tuple[list[LineageOutboxRow], set[str]]:
    """The next pending events by id, and the runs held back by a parked (failed) event."""
    with transaction(ctx.engine, readonly=True) as session:
        rows = list(session.exec(select(LineageOutboxRow).where(
            LineageOutboxRow.status == "pending", col(LineageOutboxRow.id) > after_id)
            .order_by(col(LineageOutboxRow.id)).limit(_BATCH)).all())
        parked = set(session.exec(select(LineageOutboxRow.run_id).where(LineageOutboxRow.status == "failed")
                                  .distinct()).all())
    return rows, parked


def _mark_delivered(ctx: Context, event_id: int) -> None:
    now = utc_now()
    with transaction(ctx.engine) as session:
        session.execute(update(LineageOutboxRow).where(col(LineageOutboxRow.id) == event_id)
                        .values(status="delivered", delivered_at=now, last_attempt_at=now,
                                attempts=col(LineageOutboxRow.attempts) + 1))


def _mark_failed(ctx: Context, row: LineageOutboxRow, error: str, settings: LineageSettings) -> bool:
    """Count a failed attempt; True if the event is now parked."""
    attempts = row.attempts + 1
    delay = min(settings.backoff_seconds * 2 ** (attempts - 1), settings.backoff_max_seconds)
    parked = attempts >= settings.max_attempts
    with transaction(ctx.engine) as session:
        session.execute(update(LineageOutboxRow).where(col(LineageOutboxRow.id) == row.id).values(
            attempts=attempts, last_error=error[:2000], last_attempt_at=utc_now(), next_attempt_at=_later(delay),
            status="failed" if parked else "pending"))
    return parked


def deliver(ctx: Context, *, respect_backoff: bool = False, wait: float = 0.0) -> DeliveryReport:
    """Send pending events in outbox order; see the module docstring for the guarantees.

    ``respect_backoff``: skip events whose next automatic attempt is not due yet (automatic
    delivery after an operation); an explicit flush sends everything pending. ``wait``: keep
    retrying, with backoff, for up to this many seconds while events remain pending (and wait that
    long for a busy lease). Never raises for transport trouble: errors are recorded on the events
    and in the report.
    """
    if ctx.settings.lineage.openlineage.disabled:
        return DeliveryReport(disabled=True)
    deliverer = _Deliverer(ctx)
    deadline = time.monotonic() + wait
    while not deliverer.acquire():
        if time.monotonic() >= deadline:
            return DeliveryReport(busy=True)
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    try:
        while True:
            deliverer.one_pass(respect_backoff)
            remaining = deadline - time.monotonic()
            if wait <= 0 and respect_backoff:
                break  # automatic delivery after an operation: one pass, nothing more to report
            deliverer.report.pending = _count_pending(ctx)
            pause = _seconds_to_next_due(ctx) if deliverer.report.pending and remaining > 0 else None
            if pause is None or pause > remaining or deliverer.lost:
                break
            time.sleep(max(0.05, pause))
            respect_backoff = True
    finally:
        deliverer.close()
    return deliverer.report


class _Deliverer:
    """One lease holder's state: the lease owner id, the report, the client (created on first send)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.owner = uuid.uuid4().hex
        self.settings = ctx.settings.lineage
        self.report = DeliveryReport()
        self.sender: Any = None
        self.renewed = 0.0
        self.lost = False
        """Another process took the lease over (ours expired): stop sending."""

    def acquire(self) -> bool:
        """Take the lease, or renew it (once a quarter of its time has passed)."""
        if self.renewed and time.monotonic() - self.renewed < self.settings.lease_seconds / 4:
            return True
        if _acquire(self.ctx, self.owner, self.settings.lease_seconds):
            self.renewed = time.monotonic()
            return True
        return False

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
        _release(self.ctx, self.owner)

    def one_pass(self, respect_backoff: bool) -> None:
        """One walk over the pending events in id order; a run whose event failed or is not due
        yet is held back for the rest of the pass, so its events never overtake each other."""
        held: set[str] = set()
        after_id = 0
        while True:
            rows, parked = _due(self.ctx, after_id)
            held |= parked
            now = utc_now()
            for row in rows:
                assert row.id is not None
                after_id = row.id
                if self.lost:
                    return
                if row.run_id in held:
                    continue
                if respect_backoff and row.next_attempt_at > now:
                    held.add(row.run_id)
                    continue
                if not self._send(row):
                    held.add(row.run_id)
            if len(rows) < _BATCH:
                return

    def _send(self, row: LineageOutboxRow) -> bool:
        assert row.id is not None
        try:
            if self.sender is None:
                self.sender = open_sender(self.ctx.paths.home, self.settings)
            if not self.acquire():  # keep the lease fresh before each send
                self.lost = True
                return False
            self.sender.send(json.loads(row.payload))
            failpoint("lineage:after-send")  # the one window where a crash repeats an event
        except Exception as exc:  # noqa: BLE001 - any transport failure is recorded, never raised
            message = f"{type(exc).__name__}: {exc}"
            self.report.failed_attempts += 1
            if len(self.report.errors) < 20:
                self.report.errors.append(message)
            self.report.parked += _mark_failed(self.ctx, row, message, self.settings)
            return False
        _mark_delivered(self.ctx, row.id)
        self.report.delivered += 1
        return True


def _count_pending(ctx: Context) -> int:
    with transaction(ctx.engine, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(LineageOutboxRow)
                                .where(LineageOutboxRow.status == "pending")).one())


def _seconds_to_next_due(ctx: Context) -> float | None:
    with transaction(ctx.engine, readonly=True) as session:
        first = session.exec(select(func.min(LineageOutboxRow.next_attempt_at))
                             .where(LineageOutboxRow.status == "pending")).one()
    if first is None:
        return None
    return max(0.0, (parse_utc(first) - parse_utc(utc_now())).total_seconds())


def retry_failed(ctx: Context) -> int:
    """Return parked events to pending with a fresh attempt budget; how many."""
    with transaction(ctx.engine) as session:
        result = session.execute(update(LineageOutboxRow).where(col(LineageOutboxRow.status) == "failed")
                                 .values(status="pending", attempts=0, next_attempt_at=utc_now()))
        return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class OutboxStatus:
    """Counts for ``registry lineage status``."""

    pending: int
    retrying: int
    """Pending events with at least one failed attempt."""
    failed: int
    """Parked after ``max_attempts``; ``flush --retry-failed`` sends them again."""
    delivered: int
    oldest_pending: str | None
    last_error: str | None
    sink: str
    delivery: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def outbox_status(ctx: Context) -> OutboxStatus:
    """How many events wait, retry, failed or were delivered, and the newest error."""
    with transaction(ctx.engine, readonly=True) as session:
        counts = {status: int(n) for status, n in session.execute(
            select(LineageOutboxRow.status, func.count()).group_by(col(LineageOutboxRow.status))).all()}
        retrying = int(session.exec(select(func.count()).select_from(LineageOutboxRow).where(
            LineageOutboxRow.status == "pending", col(LineageOutboxRow.attempts) > 0)).one())
        oldest = session.exec(select(func.min(LineageOutboxRow.created_at))
                              .where(LineageOutboxRow.status != "delivered")).one()
        last_error = session.exec(select(LineageOutboxRow.last_error).where(
            LineageOutboxRow.status != "delivered", col(LineageOutboxRow.last_error).is_not(None))
            .order_by(col(LineageOutboxRow.last_attempt_at).desc())).first()
    lineage = ctx.settings.lineage
    sink = ("disabled (OPENLINEAGE_DISABLED=true)" if lineage.openlineage.disabled
            else describe_sink(ctx.paths.home, lineage))
    return OutboxStatus(counts.get("pending", 0), retrying, counts.get("failed", 0), counts.get("delivered", 0),
                        oldest, last_error, sink, ctx.settings.lineage.delivery)
