"""Sealing: move the unsealed events into one content-addressed Parquet segment (sorted by actor for
queries; the chain order is the sequence number).

The segment object is written first (temp file, fsync, rename); then one transaction checks that
nobody sealed meanwhile, records the segment, deletes the events it holds and advances the head's
``sealed_seq``. A crash in between leaves an unreferenced object and the events still unsealed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy import delete
from sqlmodel import col

from registry.audit import log as audit
from registry.audit.models import AuditEventRow, AuditHeadRow, AuditSegmentRow
from registry.audit.segments import unsealed_events, write_segment
from registry.context import SYSTEM_ACTOR, Actor, Context
from registry.db import transaction
from registry.timeutil import utc_now

__all__ = ["SealResult", "seal", "seal_quietly"]

_log = logging.getLogger(__name__)


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
        locked = audit.lock_head(session)
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
        audit.record(session, ctx, "audit.seal", "audit_segment", info.sha256, actor=actor,
                     details={"first_seq": first, "last_seq": last, "events": table.num_rows, "bytes": info.size})
    return SealResult(info.sha256, first, last, table.num_rows, info.size)


def seal_quietly(ctx: Context) -> None:
    """Automatic sealing after a commit: a failure is logged, never raised (the events stay safe,
    unsealed, and the next seal takes them)."""
    try:
        seal(ctx, SYSTEM_ACTOR)
    except Exception:  # noqa: BLE001 - the operation that triggered it has already committed
        _log.warning("automatic audit seal failed; run `registry audit seal`", exc_info=True)
