"""Catalog tables of the lineage package: the event outbox, the delivery lease and the graph's edges.

An operation writes its OpenLineage events to ``lineage_outbox`` in its own transaction; a
deliverer holding the single-row ``lineage_lease`` sends them afterwards in id order and marks
each one delivered. ``lineage_edge`` holds the lineage graph: nodes are registry snapshots
(``snapshot``: dataset name + snapshot id), external datasets (``dataset``: namespace + name) and
job runs (``run``: job namespace + job name + run id).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["LineageEdgeRow", "LineageLeaseRow", "LineageNamespaceRow", "LineageOutboxRow"]


class LineageOutboxRow(SQLModel, table=True):
    """One OpenLineage RunEvent waiting for (or done with) delivery."""

    __tablename__ = "lineage_outbox"
    __table_args__ = (Index("ix_lineage_outbox_status_id", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=36, index=True)
    event_type: str = Field(max_length=16, description="START, COMPLETE, FAIL, ...")
    job_namespace: str = Field(max_length=200)
    job_name: str = Field(max_length=400)
    payload: str = Field(sa_column=Column(Text, nullable=False), description="the event as JSON")
    status: str = Field(default="pending", max_length=16, description="pending, delivered or failed (gave up)")
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: str = Field(max_length=32)
    next_attempt_at: str = Field(max_length=32, description="no automatic retry before this time")
    last_attempt_at: str | None = Field(default=None, max_length=32)
    delivered_at: str | None = Field(default=None, max_length=32)


class LineageLeaseRow(SQLModel, table=True):
    """The single row naming the process allowed to deliver, until ``expires_at``."""

    __tablename__ = "lineage_lease"

    id: int = Field(default=1, primary_key=True)
    owner: str | None = Field(default=None, max_length=64)
    expires_at: str | None = Field(default=None, max_length=32)


class LineageNamespaceRow(SQLModel, table=True):
    """The single row holding this registry's dataset namespace, fixed by ``registry init``, so it stays
    the same when the registry moves hosts (see :mod:`registry.lineage.namespace`)."""

    __tablename__ = "lineage_namespace"

    id: int = Field(default=1, primary_key=True)
    namespace: str = Field(max_length=400)
    fixed_at: str = Field(max_length=32)


class LineageEdgeRow(SQLModel, table=True):
    """A directed edge of the lineage graph (``src`` -> ``dst``).

    ``kind``: ``parent`` (parent snapshot -> child), ``source`` (declared source -> snapshot),
    ``read`` (snapshot -> training run), ``consume`` (snapshot -> run of an external system, from an
    ingested event) and ``produce`` (such a run -> an external output dataset). Versions are ``""``
    when a node has none, so the unique constraint also holds for those.
    """

    __tablename__ = "lineage_edge"
    __table_args__ = (
        UniqueConstraint("kind", "src_kind", "src_namespace", "src_name", "src_version", "dst_kind",
                         "dst_namespace", "dst_name", "dst_version", name="uq_lineage_edge"),
        Index("ix_lineage_edge_src", "src_name", "src_version"),
        Index("ix_lineage_edge_dst", "dst_name", "dst_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    src_kind: str = Field(max_length=16, description="snapshot, dataset or run")
    src_namespace: str = Field(default="", max_length=400, description="'' for this registry's snapshots")
    src_name: str = Field(max_length=400)
    src_version: str = Field(default="", max_length=64)
    dst_kind: str = Field(max_length=16)
    dst_namespace: str = Field(default="", max_length=400)
    dst_name: str = Field(max_length=400)
    dst_version: str = Field(default="", max_length=64)
    run_id: str = Field(default="", max_length=36, description="the run that recorded the edge")
    created_at: str = Field(max_length=32)
