"""Catalog tables of the labeling-tool sync: where each dataset syncs from, how far it got, and the
SHA-256 of its webhook secret (never the secret itself)."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

__all__ = ["LabelSyncRow"]


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
