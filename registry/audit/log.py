"""Appending audit events inside the caller's catalog transaction (design invariant 6).

Every mutating service function calls :func:`record` as the last step of its transaction, so the
event commits or rolls back with the change. The chain head row is locked (``FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so events from parallel
writers form one unbroken chain.

Sealing (:func:`seal`) moves the unsealed events into one content-addressed Parquet segment (sorted
by actor for queries; the chain order is the sequence number). The segment object is written first
(temp file, fsync, rename); then one transaction checks that nobody sealed meanwhile, records the
segment, deletes the events it holds and advances the head's ``sealed_seq``. A crash in between
leaves an unreferenced object and the events still unsealed. It lives here, not in a module of its
own, because appending triggers it and it appends its own event (``registry.audit.seal`` re-exports it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy import event as sa_event
from sqlmodel import Session, col, select

from registry.audit.chain import canonical_bytes, canonical_json, event_hash
from registry.audit.models import AuditEventRow, AuditHeadRow, AuditSegmentRow
from registry.context import SYSTEM_ACTOR, Actor, Context, resolve_actor
from registry.db import transaction
from registry.timeutil import utc_now

__all__ = ["AuditEvent", "EventSpec", "SealResult", "lock_head", "record", "record_many", "seal", "seal_quietly"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventSpec:
    """What happened, before the log numbers and chains it."""

    action: str
    """``<object>.<verb>``, e.g. ``snapshot.commit``, ``ref.tag``, ``gate.evaluate``."""
    object_type: str
    object_id: str
    dataset: str | None = None
    snapshot: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEvent:
    """One chained event as stored (``details`` and ``client`` decoded)."""

    seq: int
    event_id: str
    time: str
    actor: str
    actor_kind: str
    action: str
    object_type: str
    object_id: str
    dataset: str | None
    snapshot: str | None
    details: dict[str, Any]
    client: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def lock_head(session: Session) -> AuditHeadRow:
    """The chain head row, locked until the transaction ends (PostgreSQL; SQLite locks the whole file)."""
    return session.exec(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).one()


def record(session: Session, ctx: Context, action: str, object_type: str, object_id: str, *,
           dataset: str | None = None, snapshot: str | None = None, details: dict[str, Any] | None = None,
           actor: str | Actor | None = None) -> AuditEvent:
    """Append one event to the chain in ``session``'s transaction; it commits with the change.

    Call it last in the transaction: it locks the chain head until the commit.
    ``actor`` is a name given explicitly (``--author``), an :class:`Actor`, or None to resolve
    ``REGISTRY_ACTOR``, the API token's name, then the OS user.
    """
    spec = EventSpec(action, object_type, object_id, dataset, snapshot, details or {})
    return record_many(session, ctx, [spec], actor=actor)[0]


def record_many(session: Session, ctx: Context, specs: Sequence[EventSpec], *,
                actor: str | Actor | None = None) -> list[AuditEvent]:
    """Append several events by one actor in one statement (imports, bulk loads, benchmarks)."""
    who = actor if isinstance(actor, Actor) else resolve_actor(ctx, actor)
    client = canonical_json(ctx.client.to_dict())
    head = lock_head(session)
    seq, prev = head.seq, head.hash
    now = utc_now()
    rows: list[dict[str, Any]] = []
    events: list[AuditEvent] = []
    for spec in specs:
        seq += 1
        event_id = os.urandom(16).hex()  # a random (version-less) UUID, cheaper than uuid4()
        details = canonical_json(spec.details)
        digest = event_hash(prev, canonical_bytes(seq, event_id, now, who.name, who.kind, spec.action,
                                                  spec.object_type, spec.object_id, spec.dataset, spec.snapshot,
                                                  details, client, prev))
        rows.append({"seq": seq, "event_id": event_id, "time": now, "actor": who.name, "actor_kind": who.kind,
                     "action": spec.action, "object_type": spec.object_type, "object_id": spec.object_id,
                     "dataset": spec.dataset, "snapshot": spec.snapshot, "details": details, "client": client,
                     "prev_hash": prev, "hash": digest})
        events.append(AuditEvent(seq, event_id, now, who.name, who.kind, spec.action, spec.object_type,
                                 spec.object_id, spec.dataset, spec.snapshot, spec.details,
                                 ctx.client.to_dict(), prev, digest))
        prev = digest
    if rows:
        session.connection().execute(insert(AuditEventRow.__table__), rows)  # type: ignore[attr-defined]
        head.seq, head.hash = seq, prev
        session.add(head)
        session.flush()
        _seal_after_commit(session, ctx, head)
    return events


def _seal_after_commit(session: Session, ctx: Context, head: AuditHeadRow) -> None:
    """Seal a segment once the transaction commits, if enough events are unsealed."""
    threshold = ctx.settings.audit.seal_events
    if threshold <= 0 or head.seq - head.sealed_seq < threshold or session.info.get("audit_seal_pending"):
        return
    session.info["audit_seal_pending"] = True

    def _seal(_session: Session) -> None:
        seal_quietly(ctx)

    sa_event.listen(session, "after_commit", _seal, once=True)


@dataclass(frozen=True)
class SealResult:
    """The segment a seal wrote."""

    segment: str
    first_seq: int
    last_seq: int
    events: int
    bytes: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def seal(ctx: Context, actor: str | Actor | None = None) -> SealResult | None:
    """Seal every unsealed event into one segment; None when there is nothing to seal or another
    process sealed the same events first. The seal itself is audited (that event stays unsealed)."""
    from registry.audit.segments import unsealed_events, write_segment  # lazy: pyarrow only to seal

    with transaction(ctx.engine, readonly=True) as session:
        head = session.get(AuditHeadRow, 1)
        assert head is not None, "the audit head row is created by migration 0002"
        sealed_seq = head.sealed_seq
        table = unsealed_events(session, sealed_seq)
    if table.num_rows == 0:
        return None
    seqs = table.column("seq")
    first, last = seqs[0].as_py(), seqs[-1].as_py()
    info = write_segment(ctx.store, table)
    with transaction(ctx.engine) as session:
        session.info["audit_seal_pending"] = True  # the seal's own event must not trigger another seal
        locked = lock_head(session)
        if locked.sealed_seq != sealed_seq:
            return None
        session.add(AuditSegmentRow(sha256=info.sha256, first_seq=first, last_seq=last,
                                    first_prev_hash=table.column("prev_hash")[0].as_py(),
                                    last_hash=table.column("hash")[-1].as_py(), events=table.num_rows,
                                    bytes=info.size, created_at=utc_now()))
        session.execute(delete(AuditEventRow).where(col(AuditEventRow.seq) <= last))
        locked.sealed_seq = last
        session.add(locked)
        session.flush()
        record(session, ctx, "audit.seal", "audit_segment", info.sha256, actor=actor,
                     details={"first_seq": first, "last_seq": last, "events": table.num_rows, "bytes": info.size})
    return SealResult(info.sha256, first, last, table.num_rows, info.size)


def seal_quietly(ctx: Context) -> None:
    """Automatic sealing after a commit: a failure is logged, never raised (the events stay safe,
    unsealed, and the next seal takes them)."""
    try:
        seal(ctx, SYSTEM_ACTOR)
    except Exception:  # noqa: BLE001 - the operation that triggered it has already committed
        _log.warning("automatic audit seal failed; run `registry audit seal`", exc_info=True)
