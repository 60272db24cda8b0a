"""Catalog tables of the quality package: policy versions, gate results, waivers, pins.

Gate results and waivers are never updated: a new evaluation or waiver is a new row, and a
policy change makes old results stale by their ``policy_hash``, never rewrites them.
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

__all__ = ["GateResultRow", "PinRow", "PolicyRow", "WaiverRow"]


class PolicyRow(SQLModel, table=True):
    """One version of a dataset's QA policy (the newest version is the current policy)."""

    __tablename__ = "qa_policy"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    version: int = Field(primary_key=True)
    policy_hash: str = Field(max_length=64, description="SHA-256 of the canonical checks (gate semantics)")
    document: str = Field(sa_type=Text, description="the YAML as given")
    checks: str = Field(sa_type=Text, description="canonical JSON of the validated checks")
    maintainers: str = Field(sa_type=Text, default="[]", description="JSON list of actors who may change it")
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=200)


class GateResultRow(SQLModel, table=True):
    """The immutable outcome of one policy version on one snapshot."""

    __tablename__ = "gate_result"

    id: str = Field(primary_key=True, max_length=32)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    snapshot_id: str = Field(foreign_key="snapshot.id", max_length=64, index=True)
    policy_version: int
    policy_hash: str = Field(max_length=64)
    status: str = Field(max_length=10, description="passed or failed")
    checks: str = Field(sa_type=Text, description="JSON list of check outcomes")
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=200)
    duration_ms: int = Field(default=0)


class WaiverRow(SQLModel, table=True):
    """An audited exception: a snapshot may pass its gate although checks failed."""

    __tablename__ = "gate_waiver"

    id: str = Field(primary_key=True, max_length=32)
    dataset_id: int = Field(foreign_key="dataset.id")
    snapshot_id: str = Field(foreign_key="snapshot.id", max_length=64, index=True)
    checks: str | None = Field(sa_type=Text, default=None, description="JSON list of waived checks; NULL: all")
    reason: str = Field(sa_type=Text)
    expires_at: str | None = Field(default=None, max_length=32)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=200)


class PinRow(SQLModel, table=True):
    """A snapshot pinned for a training job (the lockfile entry, kept in the catalog too)."""

    __tablename__ = "dataset_pin"

    id: str = Field(primary_key=True, max_length=32)
    dataset_id: int = Field(foreign_key="dataset.id")
    snapshot_id: str = Field(foreign_key="snapshot.id", max_length=64, index=True)
    requested_ref: str = Field(max_length=200)
    job: str | None = Field(default=None, max_length=200)
    content_hash: str = Field(max_length=80)
    gate_result_id: str | None = Field(default=None, max_length=32)
    waiver_id: str | None = Field(default=None, max_length=32)
    lockfile: str = Field(sa_type=Text, default="", description="the lockfile path the pin was written to")
    pinned_at: str = Field(max_length=32)
    pinned_by: str = Field(max_length=200)
