"""Dataset use cases: create and list."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from registry import catalog
from registry.audit import log as audit
from registry.context import Context, resolve_actor
from registry.db import transaction
from registry.errors import AlreadyExists, Hint, InvalidInput
from registry.models import DatasetRow, RefRow, SnapshotRow
from registry.timeutil import utc_now

__all__ = ["DatasetInfo", "create_dataset", "list_datasets"]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset and the head of its ``main`` branch."""

    name: str
    key_columns: list[str]
    description: str
    owner: str | None
    created_at: str
    created_by: str
    head: str | None
    rows: int
    snapshots: int
    last_commit_at: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def create_dataset(ctx: Context, name: str, key_columns: list[str], description: str = "",
                   owner: str | None = None, actor: str | None = None) -> DatasetInfo:
    """Create an empty keyed dataset.

    Raises:
        InvalidName: the name breaks the naming rules.
        InvalidInput: no key column, or a key column named twice.
        AlreadyExists: a dataset of that name exists.
    """
    catalog.check_dataset_name(name)
    keys = [k.strip() for k in key_columns if k.strip()]
    if not keys:
        raise InvalidInput("a dataset needs at least one key column", hint=Hint("option", "key", "sample_id"))
    if len(set(keys)) != len(keys):
        raise InvalidInput(f"key column named twice in {', '.join(keys)}")
    who = resolve_actor(ctx, actor)
    row = DatasetRow(name=name, key_columns=json.dumps(keys), description=description, owner=owner or who.name,
                     created_at=utc_now(), created_by=who.name)
    try:
        with transaction(ctx.engine) as session:
            if session.exec(select(DatasetRow).where(DatasetRow.name == name)).first() is not None:
                raise AlreadyExists(f"dataset {name!r} exists already")
            session.add(row)
            session.flush()
            audit.record(session, ctx, "dataset.create", "dataset", name, dataset=name, actor=who,
                         details={"key_columns": keys, "description": description, "owner": row.owner})
    except IntegrityError as exc:
        raise AlreadyExists(f"dataset {name!r} exists already") from exc
    return DatasetInfo(name, keys, description, row.owner, row.created_at, who.name, None, 0, 0, None)


def list_datasets(ctx: Context) -> list[DatasetInfo]:
    """Every dataset with its head snapshot, row count and number of snapshots, by name."""
    with transaction(ctx.engine, readonly=True) as session:
        counts: dict[int, int] = {
            ds_id: int(n) for ds_id, n in session.execute(
                select(SnapshotRow.dataset_id, func.count()).group_by(col(SnapshotRow.dataset_id))).all()}
        heads = {ref.dataset_id: ref.snapshot_id
                 for ref in session.exec(select(RefRow).where(RefRow.name == catalog.MAIN)).all()}
        head_rows = {s.id: s for s in session.exec(select(SnapshotRow).where(
            col(SnapshotRow.id).in_(list(heads.values())))).all()} if heads else {}
        result = []
        for ds in session.exec(select(DatasetRow).order_by(DatasetRow.name)).all():
            ds_id = catalog.dataset_id(ds)
            head = head_rows.get(heads.get(ds_id, ""))
            result.append(DatasetInfo(ds.name, catalog.key_columns(ds), ds.description, ds.owner, ds.created_at,
                                      ds.created_by, head.id if head else None, head.rows if head else 0,
                                      counts.get(ds_id, 0), head.created_at if head else None))
        return result
