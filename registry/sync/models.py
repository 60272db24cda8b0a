"""Catalog tables of the labeling-tool sync: where each dataset syncs from, how far it got, the
SHA-256 of its webhook secret (never the secret itself), and the lease that keeps two processes from
syncing one dataset at once."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

__all__ = ["LabelSyncRow", "SyncLeaseRow"]


class LabelSyncRow(SQLModel, table=True):
    """One dataset's Label Studio sync source and resume point."""

    __tablename__ = "label_sync"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    tool: str = Field(default="label-studio", max_length=40)
    server_url: str = Field(max_length=500)
    project_id: int
    key_field: str | None = Field(default=None, max_length=200)
    guideline_version: str | None = Field(default=None, max_length=200)
    last_updated_at: str | None = Field(default=None, max_length=40,
                                        description="newest task change time seen by the last committed sync")
    last_snapshot_id: str | None = Field(default=None, max_length=64)
    state_sha256: str | None = Field(default=None, max_length=64,
                                     description="object: per task id its sample key and change fingerprint")
    tasks: int = Field(default=0)
    annotations: int = Field(default=0)
    hook_secret_sha256: str | None = Field(default=None, max_length=64)
    synced_at: str | None = Field(default=None, max_length=32)


class SyncLeaseRow(SQLModel, table=True):
    """Who is syncing a dataset now, until when (one row while a sync runs; deleted when it ends)."""

    __tablename__ = "sync_lease"

    dataset: str = Field(primary_key=True, max_length=200, description="dataset name (it may not exist yet)")
    owner: str = Field(max_length=200, description="host:pid:nonce of the process holding the lease")
    expires_at: str = Field(max_length=32, description="UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ; a later sync may "
                                                        "take the lease after it")
