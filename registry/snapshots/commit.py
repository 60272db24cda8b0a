"""The commit use case: turn a new table (or a set of changes) into the next snapshot.

Order of work (design invariant 2): validate everything in memory; write the change objects
(temp file, fsync, rename); write the manifest; then one catalog transaction inserts the
snapshot and moves ``main`` by compare-and-swap. A crash anywhere leaves the old state plus at
most unreferenced objects, which ``gc`` removes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from sqlalchemy.exc import IntegrityError

from registry import catalog
from registry.arrays import arrow_array
from registry.audit import log as audit
from registry.branch_models import BranchProtectionRow
from registry.context import Actor, Context, resolve_actor
from registry.db import transaction
from registry.errors import BreakingSchemaChange, Hint, InvalidInput, RefConflict
from registry.failpoints import failpoint
from registry.lineage import emit as lineage_emit
from registry.models import DatasetRow, SchemaVersionRow, SnapshotRow
from registry.prefetch import prefetched
from registry.provenance.records import empty_records
from registry.provenance.store import RecordDelta, diff_records, records_at, write_delta
from registry.refs import Ref
from registry.snapshots import first_commit
from registry.snapshots.describe import describe_change
from registry.snapshots.guard import guard_commit, refuse_commit
from registry.snapshots.hashing import hash_table, key_hash
from registry.snapshots.id_sort import argsort_ids
from registry.snapshots.identity import Identity, assign_ids, rows_equal
from registry.snapshots.inputs import InputLimits
from registry.snapshots.layer_reader import Lookup, ManifestReader
from registry.snapshots.layer_write import StagedLayer, write_layer
from registry.snapshots.layers import LayerIndex, alt_metadata, in_sorted
from registry.snapshots.manifest import Manifest, load_manifest, snapshot_id
from registry.snapshots.schema import SchemaChange, compare_schemas, fingerprint, schema_to_json
from registry.snapshots.tables import (
    check_key_values,
    check_upsert_types,
    normalize,
    read_table_file,
    require_key_columns,
)
from registry.timeutil import utc_now

__all__ = ["AnnotationInput", "CommitResult", "Mode", "commit"]

Mode = Literal["replace", "upsert"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CommitResult:
    """What a commit did. ``created`` is False when the input changed nothing."""

    dataset: str
    snapshot_id: str
    parent: str | None
    created: bool
    added: int
    changed: int
    removed: int
    rows: int
    bytes_written: int
    schema_version: int
    compatibility: str

    def to_dict(self) -> dict[str, object]:
        """JSON form; ``id`` repeats ``snapshot_id`` under the name scripts use for every snapshot."""
        return {"id": self.snapshot_id, **asdict(self)}


def _as_table(ctx: Context, source: pa.Table | str | Path, what: str) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, (str, Path)):
        return read_table_file(source, InputLimits.from_settings(ctx.settings.inputs))
    raise InvalidInput(f"{what}: expected a pyarrow.Table or a file path, got {type(source).__name__}")


def commit(
    ctx: Context,
    name: Ref | str,
    source: pa.Table | str | Path | None,
    *,
    message: str = "",
    author: str | None = None,
    mode: Mode = "replace",
    delete_keys: pa.Table | str | Path | None = None,
    expect_parent: str | None = None,
    allow_breaking: bool = False,
    progress: Progress | None = None,
    lineage: lineage_emit.LineageRun | None = None,
    annotations: AnnotationInput | None = None,
    branch: str | None = None,
) -> CommitResult:
    """Commit ``source`` to the ``main`` branch of dataset ``name`` (or to ``branch``; ``NAME@BRANCH`` too).

    ``replace``: ``source`` is the full new content. ``upsert``: its rows are merged by key into the
    parent. ``delete_keys`` (upsert only): a table or file of keys to remove. ``lineage``: the
    OpenLineage job, run, parent run and sources of the commit (default: a new run of ``registry`` /
    ``commit/<name>``); its START and COMPLETE are queued in the commit's transaction, a FAIL if it
    raises (see docs/lineage.md). ``annotations``: the snapshot's annotation records (only their changes
    are stored) and how to audit the commit (an import names its source).

    Raises:
        NotFound: unknown dataset; ``expect_parent`` or a ``lineage`` source names no snapshot.
        InvalidInput: unreadable file, missing key column, null/empty/duplicate keys, a key both
            upserted and deleted, deleting keys that are not there, columns that do not match; a
            malformed ``lineage`` job, run id or source.
        BreakingSchemaChange: the schema change is breaking and ``allow_breaking`` is False.
        RefConflict: ``main`` is not at ``expect_parent``, or moved while committing.
        PermissionDenied: the branch is protected (changes reach it only by merge; the refusal is audited).
    """
    # A bare name is checked where it is looked up (an unknown or bad name is NotFound, as it always was).
    target = name if isinstance(name, Ref) else Ref.parse(name) if "@" in name else Ref(name)
    name, branch = target.dataset, target.name or branch or catalog.MAIN
    guard_commit(ctx, name, branch, author)
    run = lineage_emit.begin_commit(ctx, name, lineage)
    try:
        result = _commit(ctx, name, source, message=message, author=author, mode=mode, delete_keys=delete_keys,
                         expect_parent=expect_parent, allow_breaking=allow_breaking, progress=progress, run=run,
                         annotations=annotations, branch=branch)
    except Exception as exc:
        lineage_emit.fail_commit(ctx, run, exc)
        if isinstance(exc, _Protected):
            refuse_commit(ctx, name, branch, author)
        raise
    if not result.created:
        lineage_emit.complete_unchanged(ctx, run, name, result.snapshot_id)
    return result


@dataclass
class _Request:
    """Stage 1 (parse): what the commit was asked, the catalog state it builds on, and the input rows."""

    name: str
    branch: str
    mode: Mode
    message: str
    who: Actor
    dataset: DatasetRow
    keys: list[str]
    parent: SnapshotRow | None
    latest_schema: SchemaVersionRow | None
    """The dataset's newest schema version (numbering goes on from it)."""
    parent_schema: SchemaVersionRow | None
    """The branch head's schema version, which the new rows are checked and classified against (another
    branch may have a newer schema)."""
    table: pa.Table
    has_rows: bool
    delete_keys: pa.Table | str | Path | None
    annotations: AnnotationInput | None
    parent_manifest: Manifest | None
    parent_reader: ManifestReader | None
    stream: Path | None = None
    """A Parquet file a first commit writes a row group at a time (:mod:`registry.snapshots.first_commit`);
    ``table`` is then empty, with the file's schema."""


@dataclass(frozen=True)
class _Schema:
    """Stage 2 (classify schema): the new schema against the dataset's latest."""

    fingerprint: str
    columns: list[dict[str, Any]]
    changes: list[SchemaChange]
    compatibility: str
    new_base: bool
    """The snapshot starts a new base layer (first commit, or the schema changed)."""


@dataclass
class _Change:
    """Stage 3 (diff per mode): which input rows to store, which keys go, and the counts."""

    ids: np.ndarray  # per input row (input order): its id (see registry.snapshots.identity)
    kh: np.ndarray  # per input row: its key hash (its id unless a collision gave it an alternate id)
    order: np.ndarray  # the input rows sorted by id
    rh: np.ndarray  # per input row: its row hash
    cells: dict[str, np.ndarray]  # per column, per input row: value hashes
    keep: np.ndarray  # per input row: stored in the change layer
    changed: np.ndarray  # per input row: its key was there with other values
    removed: np.ndarray  # sorted ids of deleted keys
    added: int
    rows: int
    delta: RecordDelta | None
    described: pa.Table | None = None
    """The rows the per-row arrays describe, when not the whole input (see :func:`_diff_in_parent_order`)."""
    found: Lookup | None = None
    """Per row: where its id is in the parent (``parent.lookup``), when the ids were looked up one by one and
    none is an alternate id; kept with the layer's index for diffs of the parent and this commit."""


@dataclass(frozen=True)
class _Written:
    """Stage 4 (write objects): the objects and manifest of the new snapshot, its annotation records, and
    what the snapshot's change counts."""

    staged: StagedLayer
    annotations_sha: str | None
    bytes_written: int
    """Every object's bytes: the layer's, the manifest's and the annotation records'."""
    added: int
    changed: int
    removed: int
    rows: int
    relabeled: int | None
    delta: RecordDelta | None
    column_metrics: dict[str, dict[str, Any]]
    """The lineage facet's per-column metrics (see :func:`registry.lineage.emit.commit_metrics`)."""


def _commit(
    ctx: Context,
    name: str,
    source: pa.Table | str | Path | None,
    *,
    message: str,
    author: str | None,
    mode: Mode,
    delete_keys: pa.Table | str | Path | None,
    expect_parent: str | None,
    allow_breaking: bool,
    progress: Progress | None,
    run: lineage_emit.CommitRun,
    annotations: AnnotationInput | None,
    branch: str = catalog.MAIN,
) -> CommitResult:
    """The commit itself, in named stages; :func:`commit` wraps it with the lineage run's START/COMPLETE or
    FAIL. Nothing is written before stage 4, and nothing is visible before stage 5's transaction."""
    note = progress or (lambda _msg: None)
    request = _parse(ctx, name, source, message=message, author=author, mode=mode, delete_keys=delete_keys,
                     expect_parent=expect_parent, annotations=annotations, note=note, branch=branch,
                     allow_breaking=allow_breaking)
    schema = _classify_schema(request, allow_breaking)
    if request.stream is not None:
        note("writing objects")
        written = _write_streamed(ctx, request, schema, note)
    else:
        note("comparing with the parent")
        change = _diff(ctx, request, schema)
        if not schema.new_base and not change.keep.any() and not change.removed.size and \
                (change.delta is None or change.delta.empty):
            parent = request.parent
            assert parent is not None
            grandparents = catalog.parents_of(parent)
            return CommitResult(name, parent.id, grandparents[0] if grandparents else None, False, 0, 0, 0,
                                parent.rows, 0, parent.schema_version, "unchanged")
        note("writing objects")
        written = _write_objects(ctx, request, schema, change)
    note("recording the snapshot")
    result = _record(ctx, request, schema, written, run)
    _after_commit(ctx, result)
    return result


def _parse(ctx: Context, name: str, source: pa.Table | str | Path | None, *, message: str, author: str | None,
           mode: Mode, delete_keys: pa.Table | str | Path | None, expect_parent: str | None,
           annotations: AnnotationInput | None, note: Progress, branch: str = catalog.MAIN,
           allow_breaking: bool = False) -> _Request:
    """Stage 1: check the request, read the branch head and its schema, read the input rows."""
    who = resolve_actor(ctx, author)
    if mode not in ("replace", "upsert"):
        raise InvalidInput(f"unknown mode {mode!r}; use replace or upsert")
    if mode == "replace" and delete_keys is not None:
        raise InvalidInput("keys to delete go with upsert mode (in replace mode, leave the rows out instead)",
                           hint=Hint("option", "mode", "upsert"))
    if source is None and delete_keys is None:
        raise InvalidInput("nothing to commit: give a file of rows or of keys to delete",
                           hint=Hint("option", "delete_keys"))

    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, name)
        keys = catalog.key_columns(dataset)
        head_ref = catalog.get_ref(session, dataset, branch)
        parent = catalog.get_snapshot(session, head_ref.snapshot_id) if head_ref else None
        latest_schema = catalog.latest_schema_version(session, dataset)
        parent_schema = session.get(SchemaVersionRow, (dataset.id, parent.schema_version)) if parent else None
        if expect_parent is not None:
            current = parent.id if parent else None
            if current is None or not current.startswith(expect_parent):
                raise RefConflict(f"{name}@{branch} is at {current[:12] if current else 'nothing'}, not at "
                                  f"{expect_parent[:12]}; another writer committed first")
        session.expunge_all()

    note("reading input")
    stream = Path(source) if source is not None and first_commit.streams(source, parent is not None) else None
    if stream is not None:
        table = first_commit.input_schema(stream, InputLimits.from_settings(ctx.settings.inputs)).empty_table()
    else:
        table = normalize(_as_table(ctx, source, "input")) if source is not None else None
    parent_manifest = load_manifest(ctx, parent) if parent else None
    parent_reader = ManifestReader(ctx.store, ctx.cache, parent_manifest) if parent_manifest else None
    if table is None:
        if parent_reader is None:
            raise InvalidInput(f"{name} has no snapshot yet; there is nothing to delete from")
        table = parent_reader.schema().empty_table()
    if mode == "upsert" and parent is None:
        mode = "replace"
    if mode == "upsert" and parent_schema is not None and source is not None:
        check_upsert_types(table, json.loads(parent_schema.arrow_schema), name, allow_breaking)
        table = _conform_to(table, json.loads(parent_schema.arrow_schema), name)
    return _Request(name, branch, mode, message, who, dataset, keys, parent, latest_schema, parent_schema, table,
                    source is not None,
                    delete_keys, annotations, parent_manifest, parent_reader, stream)


def _classify_schema(request: _Request, allow_breaking: bool) -> _Schema:
    """Stage 2: fingerprint the new schema and classify it against the parent's (breaking needs consent)."""
    latest = request.parent_schema
    if request.has_rows or latest is None:
        fingerprint_, columns = fingerprint(request.table.schema), schema_to_json(request.table.schema)
    else:
        assert request.parent_manifest is not None
        fingerprint_, columns = request.parent_manifest.schema_fingerprint, json.loads(latest.arrow_schema)
    changes = compare_schemas(json.loads(latest.arrow_schema), columns) if latest else []
    breaking = [c for c in changes if c.breaking]
    if breaking and not allow_breaking:
        listed = "; ".join(c.describe() for c in breaking)
        raise BreakingSchemaChange(f"{request.name}: breaking schema change ({listed}); allow breaking changes "
                                   "to commit it", hint=Hint("option", "allow_breaking"))
    compatibility = "initial" if latest is None else ("breaking" if breaking else
                                                      "compatible" if changes else "unchanged")
    new_base = request.parent is None or request.parent.schema_fingerprint != fingerprint_
    return _Schema(fingerprint_, columns, changes, compatibility, new_base)


def _diff(ctx: Context, request: _Request, schema: _Schema) -> _Change:
    """Stage 3: each input row's id (hash matches confirmed by the key values), and per mode which rows
    changed (confirmed by the values), which are new and which keys go."""
    table, keys, parent = request.table, request.keys, request.parent_reader
    require_key_columns(table, keys, "input")
    in_order = _diff_in_parent_order(ctx, request, schema)
    if in_order is not None:
        return in_order
    kh, rh, cells = hash_table(table, keys)
    check_key_values(table, keys, "input")
    identity = assign_ids(table, keys, kh, parent)
    present = identity.found.present
    same = np.zeros(table.num_rows, bool)
    if identity.aligned:  # the input holds the parent's rows in order: compare in place, no gathers
        assert identity.parent_rows is not None
        m = identity.aligned
        same[:m] = (identity.found.rh[:m] == rh[:m]) & rows_equal(table.slice(0, m), identity.parent_rows,
                                                                  table.column_names)
    else:
        hinted = np.flatnonzero(present)
        equal_hash = identity.found.rh[hinted] == rh[hinted]
        candidates = hinted[equal_hash]  # equal hashes say "maybe unchanged"; the values decide
        if candidates.size:
            assert parent is not None and identity.parent_rows is not None
            if set(table.column_names) <= set(identity.parent_rows.column_names):  # matched in bulk
                before = identity.parent_rows.take(arrow_array(np.flatnonzero(equal_hash)))
            else:
                before = parent.fetch(identity.ids[candidates], found=identity.found.take(candidates))
            same[candidates] = rows_equal(table.take(arrow_array(candidates)), before, table.column_names)
    changed = present & ~same
    removed = np.zeros(0, np.uint64)
    if parent is not None and (schema.new_base or request.mode == "replace"):
        eff_ids, _ = parent.effective_index()
        kept_ids = np.sort(identity.ids[present])
        removed = np.asarray(eff_ids[~in_sorted(eff_ids, kept_ids)[0]]) if len(eff_ids) else removed
    elif request.delete_keys is not None:
        assert parent is not None
        removed = _deleted_ids(ctx, parent, request.delete_keys, keys, identity.ids)
    keep = np.ones(table.num_rows, bool) if schema.new_base else ~same
    added = int((~present).sum())
    if schema.new_base or request.mode == "replace":
        rows = table.num_rows
    else:
        assert request.parent is not None
        rows = request.parent.rows + added - len(removed)
    delta = _annotation_delta(ctx, request.parent, request.annotations)
    order = identity.order if identity.order is not None else argsort_ids(identity.ids)
    return _Change(identity.ids, kh, order, rh, cells, keep, changed, removed, added, rows, delta,
                   found=_plain_lookup(identity, kh, parent))


def _diff_in_parent_order(ctx: Context, request: _Request, schema: _Schema) -> _Change | None:
    """Stage 3's fast path for a replace commit whose input starts with the parent's rows in the parent's
    read order (an export edited in place, new rows appended): the values are compared in place and only
    the rows that differ are hashed, so hashing costs O(k), not O(n). None when the input is not in that
    order, or gives a key twice: the general path then decides (and names the error)."""
    parent, table, keys = request.parent_reader, request.table, request.keys
    if request.mode != "replace" or parent is None or schema.new_base:
        return None
    m = parent.manifest.rows
    if not m or table.num_rows < m or set(parent.schema().names) != set(table.column_names):
        return None
    same = _same_in_order(parent, table, keys)
    if same is None:
        return None
    changed_rows = np.flatnonzero(~same)
    rows = table.take(arrow_array(np.concatenate([changed_rows, np.arange(m, table.num_rows)])))
    check_key_values(rows, keys, "input")
    kh, rh, cells = hash_table(rows, keys)
    # The changed rows' keys are the parent's: looked up, they get the parent's ids (alternate ones included)
    # at the cost of the k rows, not of the parent's whole index. A new row whose key the parent holds
    # means the input gives a key twice: the general path names the error.
    identity = assign_ids(rows, keys, kh, parent)
    changed = np.zeros(rows.num_rows, bool)
    changed[:changed_rows.size] = True
    if not np.array_equal(identity.found.present, changed):
        return None
    ids = identity.ids
    return _Change(ids, kh, argsort_ids(ids), rh, cells, np.ones(rows.num_rows, bool), changed,
                   np.zeros(0, np.uint64), rows.num_rows - changed_rows.size, table.num_rows,
                   _annotation_delta(ctx, request.parent, request.annotations), described=rows,
                   found=_plain_lookup(identity, kh, parent))


def _plain_lookup(identity: Identity, kh: np.ndarray, parent: ManifestReader | None) -> Lookup | None:
    """``identity.found`` when it is exactly what ``parent.lookup(identity.ids)`` gives: looked up id by id,
    every id the key's own hash, and no alternate ids in the parent (then no probe moved anything)."""
    if parent is None or not identity.looked_up or not np.array_equal(identity.ids, kh) or parent.has_alt_ids():
        return None
    return identity.found


def _same_in_order(parent: ManifestReader, table: pa.Table, keys: list[str]) -> np.ndarray | None:
    """Per parent row: the input row at its position holds equal values. The parent is read a row group at
    a time (the next one decoding while this one is compared), so memory is the input and two row groups,
    not two whole tables. None as soon as a row's key differs: the input is not in the parent's order."""
    same = np.zeros(parent.manifest.rows, bool)
    start = 0
    for rows in prefetched(parent.iter_row_groups()):
        head = table.slice(start, rows.num_rows)
        here = rows_equal(head, rows, table.column_names)
        differ = arrow_array(np.flatnonzero(~here))
        if len(differ) and not rows_equal(head.take(differ), rows.take(differ), keys).all():
            return None
        same[start:start + rows.num_rows] = here
        start += rows.num_rows
    return same


def _write_objects(ctx: Context, request: _Request, schema: _Schema, change: _Change) -> _Written:
    """Stage 4: the change rows, the deleted keys, the manifest and the annotation records, each written
    durably (temp file, fsync, rename) before any catalog change."""
    table = change.described if change.described is not None else request.table
    keys = request.keys
    keep = change.keep
    everything = bool(keep.all())
    upserts = table if everything else table.filter(arrow_array(keep))
    ids_in_file = change.ids if everything else change.ids[keep]
    kh_in_file = change.kh if everything else change.kh[keep]
    rh_in_file = change.rh if everything else change.rh[keep]
    cells = change.cells if everything else {c: h[keep] for c, h in change.cells.items()}
    alt = ids_in_file[ids_in_file != kh_in_file]

    def index() -> LayerIndex:  # built while the rows object is encoded
        kept_order = change.order if everything else change.order[keep[change.order]]  # input rows, by id
        position_in_file = kept_order if everything else (np.cumsum(keep) - 1)[kept_order]
        return LayerIndex.build(change.ids[kept_order], position_in_file, rh_in_file, cells, keys, alt,
                                upserts.select(keys))

    parent_manifest = request.parent_manifest
    below = () if schema.new_base or parent_manifest is None else parent_manifest.layers
    hits = change.found if change.found is None or everything else change.found.take(keep)
    staged = write_layer(ctx, upserts, index, keys=keys, metadata=alt_metadata(ids_in_file, kh_in_file),
                         removed=change.removed, parent=request.parent_reader, below=below,
                         schema_fingerprint=schema.fingerprint, total_rows=change.rows,
                         point=lambda name: failpoint(f"commit:{name}"), below_hits=hits)
    label_column = request.annotations.label_column if request.annotations else None
    relabeled = _relabeled(request.parent_reader, change, label_column) \
        if label_column and request.parent_reader is not None and label_column in change.cells else None
    metrics = lineage_emit.commit_metrics(ctx, request.table if request.mode == "replace" else None)
    annotations_sha, records_bytes = _write_records(ctx, change.delta)
    return _Written(staged, annotations_sha, staged.bytes_written + records_bytes, change.added,
                    int(change.changed.sum()), int(change.removed.size), change.rows, relabeled, change.delta, metrics)


def _write_streamed(ctx: Context, request: _Request, schema: _Schema, note: Progress) -> _Written:
    """Stages 3 and 4 of a first commit of a Parquet file, streamed (see :mod:`registry.snapshots.first_commit`):
    every row is new, so nothing is compared, and the rows are checked as they are written."""
    assert request.stream is not None
    layer = first_commit.write_first_layer(
        ctx, request.stream, request.keys, schema_fingerprint=schema.fingerprint,
        limits=InputLimits.from_settings(ctx.settings.inputs),
        metrics=not ctx.settings.lineage.openlineage.disabled, point=lambda name: failpoint(f"commit:{name}"),
        note=note)
    delta = _annotation_delta(ctx, None, request.annotations)
    annotations_sha, records_bytes = _write_records(ctx, delta)
    return _Written(layer.staged, annotations_sha, layer.staged.bytes_written + records_bytes, layer.rows, 0, 0,
                    layer.rows, None, delta, layer.column_metrics)


def _write_records(ctx: Context, delta: RecordDelta | None) -> tuple[str | None, int]:
    """The annotation records' change object, if any: its SHA-256 and size."""
    if delta is None or delta.empty:
        return None, 0
    info = write_delta(ctx, delta)
    return info.sha256, info.size


class _Protected(Exception):
    """The branch was protected after :func:`guard_commit` looked: the transaction rolls back."""


def _record(ctx: Context, request: _Request, schema: _Schema, written: _Written,
            run: lineage_emit.CommitRun) -> CommitResult:
    """Stage 5: one catalog transaction inserts the snapshot (and a new schema version), moves ``main`` by
    compare-and-swap, appends the audit event and queues the lineage event."""
    name, parent, dataset, annotations = request.name, request.parent, request.dataset, request.annotations
    added, changed, removed, rows = written.added, written.changed, written.removed, written.rows
    summary = describe_change(added, changed, removed, written.relabeled, written.delta)
    author = request.who.name
    created_at = utc_now()
    parents = [parent.id] if parent else []
    staged = written.staged
    new_id = snapshot_id(dataset=name, parents=parents, change_sha256=staged.change_sha256,
                         deletes_sha256=staged.deletes_sha256, schema_fingerprint=schema.fingerprint, author=author,
                         message=request.message, created_at=created_at, annotations_sha256=written.annotations_sha)
    # Stores with commits (lakeFS) seal the objects now, naming the snapshot; a crash before the catalog
    # commits leaves a store commit no snapshot records, whose objects gc removes like any unreferenced ones.
    store_commit = ctx.store.seal_commit(new_id, request.message or f"registry commit {name}")
    latest, same = request.latest_schema, request.parent_schema
    if same is None or same.fingerprint != schema.fingerprint:
        same = latest if latest is not None and latest.fingerprint == schema.fingerprint else None
    try:
        with transaction(ctx.engine) as session:
            # Everything read in the first transaction still holds if main has not moved, and the
            # compare-and-swap below fails if it has (a racing schema version fails earlier, on
            # its primary key): no need to read it again.
            version = same.version if same is not None else (latest.version if latest else 0)
            if same is None:
                version += 1
                session.add(SchemaVersionRow(
                    dataset_id=catalog.dataset_id(dataset), version=version, fingerprint=schema.fingerprint,
                    arrow_schema=json.dumps(schema.columns), compatibility=schema.compatibility,
                    changes=json.dumps([asdict(c) for c in schema.changes]), first_snapshot_id=new_id,
                    created_at=created_at))
            snapshot_row = SnapshotRow(
                id=new_id, dataset_id=catalog.dataset_id(dataset), seq=(parent.seq + 1) if parent else 1,
                parents=json.dumps(parents), author=author, message=request.message, created_at=created_at,
                schema_version=version, schema_fingerprint=schema.fingerprint, change_sha256=staged.change_sha256,
                deletes_sha256=staged.deletes_sha256, manifest_sha256=staged.manifest_sha256, rows=rows,
                bytes_written=written.bytes_written, added=added, changed=changed, removed=removed,
                annotations_sha256=written.annotations_sha, summary=summary, store_commit_id=store_commit)
            session.add(snapshot_row)
            session.flush()
            catalog.move_branch(session, dataset, request.branch, parent.id if parent else None, new_id)
            # Checked after the compare-and-swap locked the ref row (protect_branch locks it too), in the
            # same transaction: a branch protected since guard_commit looked refuses the commit.
            if session.get(BranchProtectionRow, (dataset.id, request.branch)) is not None:
                raise _Protected
            lineage_emit.enqueue_commit(session, ctx, run, dataset=dataset, snapshot=snapshot_row,
                                        schema=schema.columns, mode=request.mode,
                                        compatibility=schema.compatibility, column_metrics=written.column_metrics,
                                        layers=staged.layers)
            audit.record(session, ctx, annotations.audit_action if annotations else "snapshot.commit", "snapshot",
                         new_id, dataset=name, snapshot=new_id, actor=request.who, details={
                             **(annotations.audit_details if annotations else {}),  # never over the keys below
                             "parent": parent.id if parent else None, "ref": request.branch,
                             "moved_ref": request.branch, "mode": request.mode,
                             "message": request.message, "rows": rows, "added": added, "changed": changed,
                             "removed": removed, "schema_version": version,
                             "compatibility": schema.compatibility, "bytes_written": written.bytes_written,
                             "summary": summary, "annotations": written.annotations_sha,
                             "lineage_sources": [node.key for _ref, node in run.sources]})
            failpoint("commit:before-catalog-commit")
    except IntegrityError as exc:
        raise RefConflict(f"{name}@{request.branch} was moved by another writer while committing; "
                          "re-read and commit again") from exc
    failpoint("commit:after-catalog-commit")
    return CommitResult(name, new_id, parent.id if parent else None, True, added, changed, removed,
                        rows, written.bytes_written, version, schema.compatibility)


def _after_commit(ctx: Context, result: CommitResult) -> None:
    """Stage 6: work after the snapshot is visible, outside the transaction. Compaction is deliberately not
    here (a commit never waits for it): the ``registry serve`` worker and ``registry compact --auto`` run
    it. Nothing else is due today; this is where work that must not delay or fail the commit goes."""
    del ctx, result


def _conform_to(table: pa.Table, columns: list[dict[str, str]], name: str) -> pa.Table:
    """Cast an upsert's columns to the dataset's current schema (same names required)."""
    wanted = [c["name"] for c in columns]
    missing = [c for c in wanted if c not in table.column_names]
    extra = [c for c in table.column_names if c not in wanted]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"]
                                                                           if extra else [])
        raise InvalidInput(f"{name}: upsert rows must have the dataset's columns ({'; '.join(parts)}); "
                           "commit in replace mode to change the schema", hint=Hint("option", "mode", "replace"))
    table = table.select(wanted)
    target = pa.schema([pa.field(c["name"], _type_from_string(c["type"], table.schema.field(c["name"]).type))
                        for c in columns])
    try:
        return table.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(f"{name}: upsert rows do not fit the dataset's column types: {exc}") from exc


def _type_from_string(text: str, current: pa.DataType) -> pa.DataType:
    if str(current) == text:
        return current
    try:
        return pa.type_for_alias(text)
    except ValueError:
        return current


def _deleted_ids(ctx: Context, parent: ManifestReader, source: pa.Table | str | Path, keys: list[str],
                upsert_ids: np.ndarray) -> np.ndarray:
    """The sorted ids of the keys to delete, each found in the parent by its values."""
    table = normalize(_as_table(ctx, source, "delete-keys"))
    missing_cols = [k for k in keys if k not in table.column_names]
    if missing_cols:
        raise InvalidInput(f"delete-keys: missing key column(s) {', '.join(missing_cols)}")
    table = table.select(keys)
    check_key_values(table, keys, "delete-keys")
    identity = assign_ids(table, keys, key_hash(table, keys), parent, "delete-keys")
    both, _ = in_sorted(identity.ids, np.sort(upsert_ids))
    if both.any():
        example = table.filter(arrow_array(both)).slice(0, 3).to_pylist()
        raise InvalidInput(f"delete-keys: {int(both.sum())} key(s) are also upserted, e.g. {example}; "
                           "a key can be upserted or deleted in one commit, not both")
    if not identity.found.present.all():
        example = table.filter(arrow_array(~identity.found.present)).slice(0, 3).to_pylist()
        raise InvalidInput(f"delete-keys: {int((~identity.found.present).sum())} key(s) are not in the dataset, "
                           f"e.g. {example}")
    return np.sort(identity.ids)


@dataclass(frozen=True)
class AnnotationInput:
    """Annotation records to commit with the rows, and how the commit is audited."""

    records: pa.Table
    """The records of the new snapshot (``registry.provenance.records.RECORD_SCHEMA``)."""
    label_column: str | None = None
    """The rows' label column: changed rows whose label differs are counted as relabeled."""
    replace: bool = True
    """``records`` is the full set (records it lacks are removed), else only additions and updates."""
    audit_action: str = "snapshot.commit"
    audit_details: dict[str, object] = field(default_factory=dict)


def _annotation_delta(ctx: Context, parent: SnapshotRow | None, annotations: AnnotationInput | None
                      ) -> RecordDelta | None:
    if annotations is None:
        return None
    if parent is None:
        before = empty_records()
    else:
        with transaction(ctx.engine, readonly=True) as session:
            before = records_at(ctx, session, parent)
    return diff_records(before, annotations.records, annotations.replace)


def _relabeled(parent: ManifestReader, change: _Change, label_column: str) -> int | None:
    """How many changed rows have another label than in the parent."""
    changed = np.flatnonzero(change.changed)
    found = parent.lookup(change.ids[changed])
    before = parent.cell_hashes(found, [label_column])
    if before is None:
        return None
    return int((change.cells[label_column][changed] != before[label_column]).sum())
