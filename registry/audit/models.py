"""Catalog tables of the audit log: unsealed events, the chain head, and sealed segments.

Events live in ``audit_event`` until they are sealed into a Parquet segment (an object in the
store, named by its SHA-256); ``audit_segment`` lists the segments in order, and ``audit_head``
holds the newest sequence number and hash, so a truncated tail is detectable.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

__all__ = ["AuditEventRow", "AuditHeadRow", "AuditSegmentRow"]


class AuditEventRow(SQLModel, table=True):
    """One audit event not yet sealed into a segment."""

    __tablename__ = "audit_event"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_id: str = Field(max_length=32, unique=True)
    time: str = Field(max_length=32)
    actor: str = Field(max_length=200)
    actor_kind: str = Field(max_length=16)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=200)
    dataset: str | None = Field(default=None, max_length=200)
    snapshot: str | None = Field(default=None, max_length=64)
    details: str = Field(sa_column=Column(Text, nullable=False), description="canonical JSON")
    client: str = Field(sa_column=Column(Text, nullable=False), description="canonical JSON")
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHeadRow(SQLModel, table=True):
    """The single row holding the chain's head and how far it is sealed."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)
    sealed_seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditSegmentRow(SQLModel, table=True):
    """A sealed Parquet segment of consecutive events."""

    __tablename__ = "audit_segment"

    sha256: str = Field(primary_key=True, max_length=64)
    first_seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_prev_hash: str = Field(max_length=64)
    last_hash: str = Field(max_length=64)
    events: int
    bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: str = Field(max_length=32)
