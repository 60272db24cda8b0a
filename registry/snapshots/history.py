"""Reading history: resolve refs, log, show, tag, schema versions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from registry import catalog
from registry.audit import log as audit
from registry.context import Context
from registry.db import read_connection, table_of, transaction
from registry.models import DatasetRow, RefRow, SchemaVersionRow, SnapshotRow
from registry.refs import Ref
from registry.snapshots.describe import describe_change

__all__ = ["ResolvedRef", "SchemaVersionInfo", "SnapshotInfo", "log", "resolve", "resolve_ref", "schema_versions",
           "show", "tag"]


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as users see it."""

    id: str
    dataset: str
    parents: list[str]
    author: str
    created_at: str
    message: str
    rows: int
    added: int
    changed: int
    removed: int
    bytes_written: int
    schema_version: int
    tags: list[str] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)
    schema: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""
    """One line computed at commit time, e.g. ``+3,000 new, 2,000 relabeled, 12 removed``."""
    annotations_sha256: str | None = None
    """The object of annotation records this snapshot changed, if any."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class SchemaVersionInfo:
    """One schema version of a dataset and how it relates to the one before."""

    version: int
    fingerprint: str
    compatibility: str
    columns: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    first_snapshot_id: str
    created_at: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


resolve_ref = catalog.resolve_ref
"""``NAME[@REF]`` (a :class:`~registry.refs.Ref` or its text) -> the dataset and the snapshot it names."""


@dataclass(frozen=True)
class ResolvedRef:
    """What a ``NAME[@REF]`` names now: the dataset, the ref as written (``main`` by default) and the full id."""

    dataset: str
    ref: str
    snapshot_id: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def resolve(ctx: Context, ref: Ref | str) -> ResolvedRef:
    """The snapshot ``NAME[@REF]`` names, from the catalog alone (one short read transaction, no data read).

    Raises:
        InvalidName: a string that is no ref.
        NotFound: no such dataset or ref. AmbiguousRef: an id prefix matches several snapshots.
    """
    ref = Ref.coerce(ref)
    with read_connection(ctx.engine) as connection:  # a Core select: the API resolves refs on hot paths
        named = connection.execute(_NAMED_REF, {"dataset": ref.dataset, "ref": ref.ref_name}).scalar()
    if named is None:  # not a branch or tag: REF~N, an id prefix, or nothing (resolve_ref says which)
        with transaction(ctx.engine, readonly=True) as session:
            named = resolve_ref(session, ref)[1].id
    return ResolvedRef(ref.dataset, ref.ref_name, named)


_REFS, _DATASETS = table_of(RefRow), table_of(DatasetRow)
_NAMED_REF = (sa_select(_REFS.c.snapshot_id).join(_DATASETS, _DATASETS.c.id == _REFS.c.dataset_id)
              .where(_DATASETS.c.name == bindparam("dataset"), _REFS.c.name == bindparam("ref")))


def _refs_by_snapshot(session: Session, dataset: DatasetRow) -> dict[str, list[RefRow]]:
    found: dict[str, list[RefRow]] = {}
    for ref in session.exec(select(RefRow).where(RefRow.dataset_id == dataset.id)).all():
        found.setdefault(ref.snapshot_id, []).append(ref)
    return found


def _info(row: SnapshotRow, dataset: DatasetRow, refs: list[RefRow], schema: list[dict[str, Any]] | None = None
          ) -> SnapshotInfo:
    return SnapshotInfo(
        id=row.id, dataset=dataset.name, parents=catalog.parents_of(row), author=row.author,
        created_at=row.created_at, message=row.message, rows=row.rows, added=row.added, changed=row.changed,
        removed=row.removed, bytes_written=row.bytes_written, schema_version=row.schema_version,
        tags=sorted(r.name for r in refs if r.kind == "tag"),
        branches=sorted(r.name for r in refs if r.kind == "branch"), schema=schema or [],
        summary=row.summary or describe_change(row.added, row.changed, row.removed),
        annotations_sha256=row.annotations_sha256)


def log(ctx: Context, ref: Ref | str, limit: int | None = None) -> list[SnapshotInfo]:
    """History from ``ref`` (default the head of ``main``) back along first parents, newest first."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset, head = resolve_ref(session, ref)
        refs = _refs_by_snapshot(session, dataset)
        rows = {s.id: s for s in session.exec(select(SnapshotRow).where(SnapshotRow.dataset_id == dataset.id)).all()}
        result: list[SnapshotInfo] = []
        current: SnapshotRow | None = head
        while current is not None and (limit is None or len(result) < limit):
            result.append(_info(current, dataset, refs.get(current.id, [])))
            parents = catalog.parents_of(current)
            current = rows.get(parents[0]) if parents else None
        return result


def show(ctx: Context, ref: Ref | str) -> SnapshotInfo:
    """One snapshot with its schema."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset, row = resolve_ref(session, ref)
        version = session.get(SchemaVersionRow, (dataset.id, row.schema_version))
        schema = json.loads(version.arrow_schema) if version else []
        return _info(row, dataset, _refs_by_snapshot(session, dataset).get(row.id, []), schema)


def tag(ctx: Context, ref: Ref | str, name: str, actor: str | None = None) -> SnapshotInfo:
    """Tag the snapshot ``ref`` names; tags never move.

    Raises:
        AlreadyExists: the tag exists.
        InvalidName: the tag name is not allowed.
    """
    with transaction(ctx.engine) as session:
        dataset, row = resolve_ref(session, ref)
        catalog.add_tag(session, dataset, name, row.id)
        session.flush()
        audit.record(session, ctx, "ref.tag", "ref", f"{dataset.name}@{name}", dataset=dataset.name, snapshot=row.id,
                     actor=actor, details={"tag": name, "requested_ref": str(ref), "moved_ref": name, "kind": "tag"})
        return _info(row, dataset, _refs_by_snapshot(session, dataset).get(row.id, []))


def schema_versions(ctx: Context, name: str) -> list[SchemaVersionInfo]:
    """Every schema version of dataset ``name``, oldest first."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, catalog.check_dataset_name(name))
        rows = session.exec(select(SchemaVersionRow).where(SchemaVersionRow.dataset_id == dataset.id)
                            .order_by(col(SchemaVersionRow.version))).all()
        return [SchemaVersionInfo(r.version, r.fingerprint, r.compatibility, json.loads(r.arrow_schema),
                                  json.loads(r.changes), r.first_snapshot_id, r.created_at) for r in rows]
