"""Recomputing the audit chain from the stored bytes (design invariant 5).

Walks every sealed segment (checking its SHA-256 against its name first), then the unsealed
events, then the head in the catalog, and stops at the first event that is missing, repeated,
out of order, altered, or not chained to the one before; with a checkpoint it also proves that
the history up to the checkpoint is the one the auditor saw.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlmodel import col, select

from registry.audit.chain import FIELDS, GENESIS, canonical_bytes, event_hash
from registry.audit.models import AuditHeadRow, AuditSegmentRow
from registry.audit.segments import unsealed_events
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput, NotFound
from registry.timeutil import utc_now

__all__ = ["CHECKPOINT_FORMAT", "AuditVerifyReport", "Checkpoint", "parse_checkpoint", "read_checkpoint",
           "verify_audit", "write_checkpoint"]

CHECKPOINT_FORMAT = "registry-audit-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """A (sequence, hash) an auditor keeps outside the registry."""

    seq: int
    hash: str
    time: str
    home: str

    def to_dict(self) -> dict[str, object]:
        return {"format": CHECKPOINT_FORMAT, **asdict(self)}


@dataclass
class AuditVerifyReport:
    """What verify checked, and the first problem if any."""

    events: int = 0
    segments: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoint: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, **asdict(self)}


class _Walk:
    """The chain state while walking events in stored order."""

    def __init__(self, checkpoint: Checkpoint | None) -> None:
        self.expected_seq = 1
        self.prev = GENESIS
        self.checkpoint = checkpoint
        self.checkpoint_seen = False
        self.bad_seq: int | None = None
        self.problem: str | None = None

    def fail(self, seq: int, problem: str) -> bool:
        self.bad_seq, self.problem = seq, problem
        return False

    def walk(self, table: pa.Table, where: str) -> bool:
        """Check ``table``'s events continue the chain; False at the first problem."""
        cols = [table.column(name).to_pylist() for name in FIELDS]
        (seqs, ids, times, actors, kinds, actions, otypes, oids, datasets, snaps, details, clients, prevs,
         hashes) = cols
        expected, prev = self.expected_seq, self.prev
        for i, seq in enumerate(seqs):
            if seq != expected:
                if seq > expected:
                    return self.fail(expected, f"event {expected} is missing ({where} goes on with event {seq})")
                return self.fail(seq, f"event {seq} appears out of place ({where} holds it where event {expected} "
                                      "belongs): an event was inserted or the events were reordered")
            if prevs[i] != prev:
                return self.fail(seq, f"event {seq} does not chain to event {seq - 1} (its prev_hash differs): "
                                      "an event before it was replaced or the chain was spliced")
            digest = event_hash(prev, canonical_bytes(seq, ids[i], times[i], actors[i], kinds[i], actions[i],
                                                      otypes[i], oids[i], datasets[i], snaps[i], details[i],
                                                      clients[i], prev))
            if digest != hashes[i]:
                return self.fail(seq, f"event {seq} was modified (its content does not match its hash)")
            if self.checkpoint is not None and seq == self.checkpoint.seq:
                self.checkpoint_seen = True
                if digest != self.checkpoint.hash:
                    return self.fail(seq, f"event {seq} differs from the checkpoint taken at {self.checkpoint.time}: "
                                          "the history up to it was rewritten")
            prev = digest
            expected += 1
        self.expected_seq, self.prev = expected, prev
        return True


def verify_audit(ctx: Context, checkpoint: Checkpoint | None = None) -> AuditVerifyReport:
    """Recompute the whole chain; the report names the first bad sequence number, if any."""
    report = AuditVerifyReport(checkpoint=checkpoint.to_dict() if checkpoint else None)
    with transaction(ctx.engine, readonly=True) as session:
        head = session.get(AuditHeadRow, 1)
        assert head is not None, "the audit head row is created by migration 0002"
        segments = session.exec(select(AuditSegmentRow).order_by(col(AuditSegmentRow.first_seq))).all()
        unsealed = unsealed_events(session)  # all of them: a sealed event put back is an insertion
        report.head_seq, report.head_hash = head.seq, head.hash
    walk = _Walk(checkpoint)
    for segment in segments:
        report.segments += 1
        if not _check_segment(ctx, segment, walk, report):
            break
    else:
        if _walk_safely(walk, unsealed, "the unsealed log", walk.expected_seq):
            report.events += unsealed.num_rows
            _check_tail(walk, head.seq, head.hash)
    if walk.problem is None and checkpoint is not None and not walk.checkpoint_seen:
        walk.fail(walk.expected_seq, f"the log ends at event {walk.expected_seq - 1}, before the checkpoint's "
                                     f"event {checkpoint.seq}: events were removed")
    report.first_bad_seq, report.problem = walk.bad_seq, walk.problem
    return report


def _check_segment(ctx: Context, segment: AuditSegmentRow, walk: _Walk, report: AuditVerifyReport) -> bool:
    span = f"segment {segment.sha256[:12]} (events {segment.first_seq}..{segment.last_seq})"
    try:
        data = ctx.store.read_bytes(segment.sha256)
    except NotFound:
        return walk.fail(segment.first_seq, f"{span} is missing from the object store")
    altered = hashlib.sha256(data).hexdigest() != segment.sha256
    try:
        table = pq.ParquetFile(pa.BufferReader(data)).read().sort_by("seq")  # stored by actor; chained by seq
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError) as exc:
        return walk.fail(segment.first_seq, f"{span} was modified and is no longer readable Parquet: {exc}")
    if not _walk_safely(walk, table, span, segment.first_seq):
        if altered:
            walk.problem = f"{span} was modified: {walk.problem}"
        return False
    report.events += table.num_rows
    if altered:
        return walk.fail(segment.first_seq, f"{span} was modified (its bytes no longer match its SHA-256)")
    seqs = table.column("seq")
    if (table.num_rows != segment.events or seqs[0].as_py() != segment.first_seq
            or seqs[-1].as_py() != segment.last_seq or table.column("hash")[-1].as_py() != segment.last_hash):
        return walk.fail(segment.first_seq, f"{span}: the catalog's record of the segment does not match its content")
    return True


def _walk_safely(walk: _Walk, table: pa.Table, where: str, first_seq: int) -> bool:
    """:meth:`_Walk.walk`, with undecodable or mistyped content (a flipped byte in a string, a column of
    the wrong type) reported as a modification rather than raised."""
    try:
        return walk.walk(table, where)
    except (pa.ArrowException, UnicodeError, KeyError, TypeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return walk.fail(first_seq, f"{where} was modified and its events cannot be decoded: {detail}")


def _check_tail(walk: _Walk, head_seq: int, head_hash: str) -> None:
    last = walk.expected_seq - 1
    if last < head_seq:
        walk.fail(last + 1, f"the log ends at event {last} but the catalog's head is event {head_seq}: "
                            f"events {last + 1}..{head_seq} were removed (truncated tail)")
    elif last > head_seq:
        walk.fail(head_seq + 1, f"events {head_seq + 1}..{last} lie beyond the catalog's head (event {head_seq}): "
                                "they were inserted")
    elif walk.prev != head_hash:
        walk.fail(last, f"event {last}'s hash differs from the head hash the catalog keeps")


def write_checkpoint(ctx: Context, out: Path | None = None) -> Checkpoint:
    """The current (sequence, head hash, time); written to ``out`` as JSON when given."""
    with transaction(ctx.engine, readonly=True) as session:
        head = session.get(AuditHeadRow, 1)
        assert head is not None
    checkpoint = Checkpoint(head.seq, head.hash, utc_now(), str(ctx.paths.home))
    if out is not None:
        out.write_text(json.dumps(checkpoint.to_dict(), indent=2) + "\n")
    return checkpoint


def read_checkpoint(path: Path) -> Checkpoint:
    """Load a checkpoint file written by :func:`write_checkpoint`.

    Raises:
        InvalidInput: the file is missing, not JSON, or not a checkpoint.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"checkpoint file {path} does not exist") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"checkpoint file {path} is not JSON: {exc}") from exc
    return parse_checkpoint(data, f"checkpoint file {path}")


def parse_checkpoint(data: Any, where: str = "checkpoint") -> Checkpoint:
    """A checkpoint from its JSON object (as :meth:`Checkpoint.to_dict` writes it); ``where`` names it in errors.

    Raises:
        InvalidInput: not a checkpoint, or no valid seq and hash.
    """
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise InvalidInput(f"{where} is not an audit checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    try:
        seq, digest = int(data["seq"]), str(data["hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"{where} lacks a valid seq and hash") from exc
    if len(digest) != 64:
        raise InvalidInput(f"{where}: hash must be 64 hex characters")
    return Checkpoint(seq, digest, str(data.get("time", "")), str(data.get("home", "")))
