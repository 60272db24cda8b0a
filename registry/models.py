"""Catalog tables (SQLModel). The schema is owned by the alembic migrations in ``migrations/``.

Times are stored as ISO-8601 UTC strings (``2026-11-23T15:00:00.000000Z``): they sort, they
read the same on SQLite and PostgreSQL, and they enter snapshot ids byte for byte.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

__all__ = ["DatasetRow", "RefRow", "SchemaVersionRow", "SnapshotRow"]


class DatasetRow(SQLModel, table=True):
    """A named, keyed table."""

    __tablename__ = "dataset"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    key_columns: str = Field(description="JSON list of key column names")
    description: str = Field(default="")
    owner: str | None = Field(default=None, max_length=200)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=200)


class SnapshotRow(SQLModel, table=True):
    """One immutable version of a dataset's rows."""

    __tablename__ = "snapshot"

    id: str = Field(primary_key=True, max_length=64)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    seq: int = Field(description="1 for a dataset's first snapshot, then counting up")
    parents: str = Field(description="JSON list of parent snapshot ids")
    author: str = Field(max_length=200)
    message: str = Field(default="")
    created_at: str = Field(max_length=32)
    schema_version: int
    schema_fingerprint: str = Field(max_length=64)
    change_sha256: str = Field(max_length=64, description="Parquet object of rows this snapshot upserted")
    deletes_sha256: str | None = Field(default=None, max_length=64, description="keys it removed")
    manifest_sha256: str = Field(max_length=64, description="current physical layout; compaction swaps it")
    rows: int = Field(sa_type=BigInteger)
    bytes_written: int = Field(sa_type=BigInteger)
    added: int = Field(sa_type=BigInteger)
    changed: int = Field(sa_type=BigInteger)
    removed: int = Field(sa_type=BigInteger)
    annotations_sha256: str | None = Field(default=None, max_length=64,
                                           description="Parquet object of the annotation records this snapshot changed")
    summary: str = Field(default="", sa_column_kwargs={"server_default": ""},
                         description="one line, e.g. '+3,000 new, 2,000 relabeled, 12 removed'")
    store_commit_id: str | None = Field(default=None, max_length=64,
                                        description="the object store's commit holding this snapshot's objects "
                                                    "(a lakeFS commit id); None on stores without commits")


class RefRow(SQLModel, table=True):
    """A name pointing at a snapshot: a branch (moves by compare-and-swap) or a tag (never moves)."""

    __tablename__ = "ref"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    name: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=10, description="branch or tag")
    snapshot_id: str = Field(foreign_key="snapshot.id", max_length=64)
    updated_at: str = Field(max_length=32)


class SchemaVersionRow(SQLModel, table=True):
    """One distinct Arrow schema of a dataset, fingerprinted and classified against the previous."""

    __tablename__ = "schema_version"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    version: int = Field(primary_key=True)
    fingerprint: str = Field(max_length=64)
    arrow_schema: str = Field(description="the Arrow schema as JSON (see registry.snapshots.schema)")
    compatibility: str = Field(max_length=10, description="initial, compatible or breaking")
    changes: str = Field(default="[]", description="JSON list of column changes against the previous")
    first_snapshot_id: str = Field(max_length=64)
    created_at: str = Field(max_length=32)
