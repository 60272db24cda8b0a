"""Catalog tables of branches: which branches are protected, and the conflicts of refused merges."""

from __future__ import annotations

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

__all__ = ["BranchProtectionRow", "MergeConflictRow"]


class BranchProtectionRow(SQLModel, table=True):
    """A protected branch: direct commits are refused, changes arrive only by merge."""

    __tablename__ = "branch_protection"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    branch: str = Field(primary_key=True, max_length=200)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=200)


class MergeConflictRow(SQLModel, table=True):
    """One unresolved conflict of the latest refused merge of ``source`` into ``target`` (the
    ``merge_conflicts`` query view); replaced by the next attempt and cleared by a merge that lands."""

    __tablename__ = "merge_conflict"

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    source: str = Field(max_length=200, description="the source ref as given (a branch name or snapshot id)")
    target: str = Field(max_length=200)
    source_snapshot: str = Field(max_length=64)
    target_snapshot: str = Field(max_length=64)
    base_snapshot: str | None = Field(default=None, max_length=64)
    key: str = Field(sa_column=Column(Text, nullable=False), description="JSON of the key values")
    column_name: str = Field(max_length=200, description="the column, or '*' for a row deleted on one side")
    kind: str = Field(max_length=20)
    base: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ours: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    theirs: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ours_annotator: str | None = Field(default=None, max_length=200)
    ours_labeled_at: str | None = Field(default=None, max_length=64)
    ours_guideline: str | None = Field(default=None, max_length=200)
    theirs_annotator: str | None = Field(default=None, max_length=200)
    theirs_labeled_at: str | None = Field(default=None, max_length=64)
    theirs_guideline: str | None = Field(default=None, max_length=200)
    recorded_at: str = Field(max_length=32)
