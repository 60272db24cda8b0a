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
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
from sqlalchemy.exc import IntegrityError

from registry import catalog
from registry.audit import log as audit
from registry.context import SYSTEM_ACTOR, Context, resolve_actor
from registry.db import transaction
from registry.errors import BreakingSchemaChange, InvalidInput, RefConflict
from registry.failpoints import failpoint
from registry.lineage import emit as lineage_emit
from registry.models import SchemaVersionRow, SnapshotRow
from registry.snapshots.describe import describe_change
from registry.snapshots.hashing import hash_table, key_hash
from registry.snapshots.layers import LayerIndex, compare_sorted, in_sorted, write_parquet_object
from registry.snapshots.manifest import Layer, Manifest, snapshot_id
from registry.snapshots.reader import ManifestReader
from registry.snapshots.schema import compare_schemas, fingerprint, schema_to_json
from registry.snapshots.tables import check_keys, normalize, read_table_file, require_key_columns
from registry.timeutil import utc_now

if TYPE_CHECKING:
    from registry.provenance.store import RecordDelta

__all__ = ["AnnotationInput", "CommitResult", "Mode", "commit", "load_manifest"]

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


def load_manifest(ctx: Context, snapshot: SnapshotRow) -> Manifest:
    return Manifest.from_bytes(ctx.store.read_bytes(snapshot.manifest_sha256), f"manifest of {snapshot.id}")


def _as_table(source: pa.Table | str | Path, what: str) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, (str, Path)):
        return read_table_file(source)
    raise InvalidInput(f"{what}: expected a pyarrow.Table or a file path, got {type(source).__name__}")


def commit(
    ctx: Context,
    name: str,
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
    from registry.branches import guard_commit

    name, branch = catalog.split_ref(name) if "@" in name else (name, branch or catalog.MAIN)
    guard_commit(ctx, name, branch, author)
    run = lineage_emit.begin_commit(ctx, name, lineage)
    try:
        result = _commit(ctx, name, source, message=message, author=author, mode=mode, delete_keys=delete_keys,
                         expect_parent=expect_parent, allow_breaking=allow_breaking, progress=progress, run=run,
                         annotations=annotations, branch=branch)
    except Exception as exc:
        lineage_emit.fail_commit(ctx, run, exc)
        raise
    if not result.created:
        lineage_emit.complete_unchanged(ctx, run, name, result.snapshot_id)
    return result


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
    """The commit itself; :func:`commit` wraps it with the lineage run's START/COMPLETE or FAIL."""
    note = progress or (lambda _msg: None)
    who = resolve_actor(ctx, author)
    author = who.name
    if mode not in ("replace", "upsert"):
        raise InvalidInput(f"unknown mode {mode!r}; use replace or upsert")
    if mode == "replace" and delete_keys is not None:
        raise InvalidInput("--delete-keys goes with --mode upsert (in replace mode, leave the rows out instead)")
    if source is None and delete_keys is None:
        raise InvalidInput("nothing to commit: give a file of rows or --delete-keys")

    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, name)
        keys = catalog.key_columns(dataset)
        head_ref = catalog.get_ref(session, dataset, branch)
        parent = catalog.get_snapshot(session, head_ref.snapshot_id) if head_ref else None
        latest_schema = catalog.latest_schema_version(session, dataset)
        if expect_parent is not None:
            current = parent.id if parent else None
            if current is None or not current.startswith(expect_parent):
                raise RefConflict(f"{name}@{branch} is at {current[:12] if current else 'nothing'}, not at "
                                  f"{expect_parent[:12]}; another writer committed first")
        session.expunge_all()

    note("reading input")
    table = normalize(_as_table(source, "input")) if source is not None else None
    parent_manifest = load_manifest(ctx, parent) if parent else None
    parent_reader = ManifestReader(ctx.store, ctx.cache, parent_manifest) if parent_manifest else None

    if table is None:
        if parent is None:
            raise InvalidInput(f"{name} has no snapshot yet; there is nothing to delete from")
        assert parent_reader is not None
        table = parent_reader.schema().empty_table()
    if mode == "upsert" and parent is None:
        mode = "replace"
    if mode == "upsert" and latest_schema is not None and source is not None:
        table = _conform_to(table, json.loads(latest_schema.arrow_schema), name)

    schema_fp = fingerprint(table.schema) if source is not None else parent_manifest.schema_fingerprint  # type: ignore[union-attr]
    schema_cols = schema_to_json(table.schema) if source is not None else json.loads(latest_schema.arrow_schema)  # type: ignore[union-attr]
    changes = compare_schemas(json.loads(latest_schema.arrow_schema), schema_cols) if latest_schema else []
    breaking = [c for c in changes if c.breaking]
    if breaking and not allow_breaking:
        listed = "; ".join(c.describe() for c in breaking)
        raise BreakingSchemaChange(f"{name}: breaking schema change ({listed}); pass --allow-breaking to commit it")
    compatibility = "initial" if latest_schema is None else ("breaking" if breaking else
                                                             "compatible" if changes else "unchanged")

    note("hashing rows")
    require_key_columns(table, keys, "input")
    kh_in_input, rh_in_input, cells = hash_table(table, keys)
    order = check_keys(table, keys, kh_in_input, "input")
    kh, rh = kh_in_input[order], rh_in_input[order]

    new_base = parent is None or (latest_schema is not None and latest_schema.fingerprint != schema_fp)
    note("comparing with the parent")
    removed_kh = np.zeros(0, np.uint64)
    changed_mask = np.zeros(len(kh), bool)
    if new_base:
        keep = np.ones(table.num_rows, bool)
        added, changed = table.num_rows, 0
        if parent_reader is not None:
            found = compare_sorted(kh, rh, *parent_reader.effective_index())
            added, changed = int((~found.present).sum()), int((found.present & ~found.same).sum())
            removed_kh = found.removed_kh
            changed_mask = found.present & ~found.same
    elif mode == "replace":
        assert parent_reader is not None
        found = compare_sorted(kh, rh, *parent_reader.effective_index())
        keep = ~found.same
        added, changed = int((~found.present).sum()), int((found.present & ~found.same).sum())
        removed_kh = found.removed_kh
        changed_mask = found.present & ~found.same
    else:
        assert parent_reader is not None
        looked_up = parent_reader.lookup(kh)
        same = looked_up.present & (looked_up.rh == rh)
        keep = ~same
        added, changed = int((~looked_up.present).sum()), int((looked_up.present & ~same).sum())
        changed_mask = looked_up.present & ~same
        if delete_keys is not None:
            removed_kh = _deleted_hashes(parent_reader, delete_keys, keys, kh)

    delta = _annotation_delta(ctx, parent, annotations)
    if not new_base and not keep.any() and not removed_kh.size and (delta is None or delta.empty):
        assert parent is not None
        grandparents = catalog.parents_of(parent)
        return CommitResult(name, parent.id, grandparents[0] if grandparents else None, False, 0, 0, 0,
                            parent.rows, 0, latest_schema.version if latest_schema else 0, "unchanged")
    rows = table.num_rows if new_base or mode == "replace" else parent.rows + added - len(removed_kh)  # type: ignore[union-attr]

    note("writing objects")
    kept_rows = order[keep]  # input rows to store, in key-hash order
    keep_in_input = np.zeros(table.num_rows, bool)
    keep_in_input[kept_rows] = True
    everything = bool(keep_in_input.all())
    upserts = table if everything else table.filter(pa.array(keep_in_input))
    position_in_file = np.cumsum(keep_in_input) - 1
    change = write_parquet_object(ctx.store, upserts)
    ctx.cache.save_rows(change.sha256, LayerIndex.build(
        kh[keep], position_in_file[kept_rows], rh_in_input if everything else rh_in_input[keep_in_input],
        cells if everything else {c: h[keep_in_input] for c, h in cells.items()}, keys))
    failpoint("commit:after-change-object")
    bytes_written = change.size
    deletes_sha: str | None = None
    if removed_kh.size:  # sorted by every path above
        assert parent_reader is not None
        deleted_rows = parent_reader.fetch(removed_kh, columns=keys)
        deletes = write_parquet_object(ctx.store, deleted_rows)
        ctx.cache.save_deletes(deletes.sha256, removed_kh)
        deletes_sha = deletes.sha256
        bytes_written += deletes.size

    layer = Layer(rows=change.sha256, rows_count=upserts.num_rows, deletes=deletes_sha,
                  deletes_count=int(removed_kh.size))
    layers = (layer,) if new_base else (*parent_manifest.layers, layer)  # type: ignore[union-attr]
    manifest = Manifest(key_columns=tuple(keys), schema_fingerprint=schema_fp, rows=rows, layers=layers)
    failpoint("commit:after-objects")
    manifest_info = ctx.store.put_bytes(manifest.to_bytes())
    failpoint("commit:after-manifest")
    bytes_written += manifest_info.size

    annotations_sha: str | None = None
    if delta is not None and not delta.empty:
        from registry.provenance.store import write_delta

        records_info = write_delta(ctx, delta)
        annotations_sha = records_info.sha256
        bytes_written += records_info.size
    label_column = annotations.label_column if annotations else None
    relabeled = _relabeled(parent_reader, kh, cells, order, changed_mask, label_column) \
        if label_column and parent_reader is not None and label_column in cells else None
    summary = describe_change(added, changed, int(removed_kh.size), relabeled, delta)

    created_at = utc_now()
    parents = [parent.id] if parent else []
    new_id = snapshot_id(dataset=name, parents=parents, change_sha256=change.sha256, deletes_sha256=deletes_sha,
                         schema_fingerprint=schema_fp, author=author, message=message, created_at=created_at,
                         annotations_sha256=annotations_sha)
    lineage_metrics = lineage_emit.commit_metrics(table if mode == "replace" else None)  # outside the lock
    note("recording the snapshot")
    # Stores with commits (lakeFS) seal the objects now, naming the snapshot; a crash before the catalog
    # commits leaves a store commit no snapshot records, whose objects gc removes like any unreferenced ones.
    store_commit = ctx.store.seal_commit(new_id, message or f"registry commit {name}")
    try:
        with transaction(ctx.engine) as session:
            # Everything read in the first transaction still holds if main has not moved, and the
            # compare-and-swap below fails if it has (a racing schema version fails earlier, on
            # its primary key): no need to read it again.
            version = latest_schema.version if latest_schema else 0
            if latest_schema is None or latest_schema.fingerprint != schema_fp:
                version += 1
                session.add(SchemaVersionRow(
                    dataset_id=catalog.dataset_id(dataset), version=version, fingerprint=schema_fp,
                    arrow_schema=json.dumps(schema_cols), compatibility=compatibility,
                    changes=json.dumps([asdict(c) for c in changes]), first_snapshot_id=new_id,
                    created_at=created_at))
            snapshot_row = SnapshotRow(
                id=new_id, dataset_id=catalog.dataset_id(dataset), seq=(parent.seq + 1) if parent else 1,
                parents=json.dumps(parents), author=author, message=message, created_at=created_at,
                schema_version=version, schema_fingerprint=schema_fp, change_sha256=change.sha256,
                deletes_sha256=deletes_sha, manifest_sha256=manifest_info.sha256, rows=rows,
                bytes_written=bytes_written, added=added, changed=changed, removed=int(removed_kh.size),
                annotations_sha256=annotations_sha, summary=summary, store_commit_id=store_commit)
            session.add(snapshot_row)
            session.flush()
            catalog.move_branch(session, dataset, branch, parent.id if parent else None, new_id)
            lineage_emit.enqueue_commit(session, ctx, run, dataset=dataset, snapshot=snapshot_row, schema=schema_cols,
                                        mode=mode, compatibility=compatibility,
                                        column_metrics=lineage_metrics, layers=layers)
            audit.record(session, ctx, annotations.audit_action if annotations else "snapshot.commit", "snapshot",
                         new_id, dataset=name, snapshot=new_id, actor=who, details={
                             "parent": parent.id if parent else None, "ref": branch, "mode": mode,
                             "message": message, "rows": rows, "added": added, "changed": changed,
                             "removed": int(removed_kh.size), "schema_version": version,
                             "compatibility": compatibility, "bytes_written": bytes_written, "summary": summary,
                             "annotations": annotations_sha, **(annotations.audit_details if annotations else {})})
            failpoint("commit:before-catalog-commit")
    except IntegrityError as exc:
        raise RefConflict(f"{name}@{branch} was moved by another writer while committing; re-read and commit again") \
            from exc
    failpoint("commit:after-catalog-commit")
    upper_rows = sum(layer.rows_count + layer.deletes_count for layer in layers[1:])
    full = 0 < ctx.settings.compact_rows < upper_rows
    if full or len(layers) > ctx.settings.max_layers:
        note("compacting layers")
        from registry.snapshots.compact import compact_snapshot

        with transaction(ctx.engine, readonly=True) as session:
            snapshot = catalog.get_snapshot(session, new_id)
        compact_snapshot(ctx, name, snapshot, full=full, actor=SYSTEM_ACTOR)
    return CommitResult(name, new_id, parent.id if parent else None, True, added, changed, int(removed_kh.size),
                        rows, bytes_written, version, compatibility)


def _conform_to(table: pa.Table, columns: list[dict[str, str]], name: str) -> pa.Table:
    """Cast an upsert's columns to the dataset's current schema (same names required)."""
    wanted = [c["name"] for c in columns]
    missing = [c for c in wanted if c not in table.column_names]
    extra = [c for c in table.column_names if c not in wanted]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"]
                                                                           if extra else [])
        raise InvalidInput(f"{name}: upsert rows must have the dataset's columns ({'; '.join(parts)}); "
                           "use --mode replace to change the schema")
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


def _deleted_hashes(parent: ManifestReader, source: pa.Table | str | Path, keys: list[str],
                    upsert_kh: np.ndarray) -> np.ndarray:
    table = normalize(_as_table(source, "delete-keys"))
    missing_cols = [k for k in keys if k not in table.column_names]
    if missing_cols:
        raise InvalidInput(f"delete-keys: missing key column(s) {', '.join(missing_cols)}")
    table = table.select(keys)
    kh = key_hash(table, keys)
    check_keys(table, keys, kh, "delete-keys")
    both, _ = in_sorted(kh, upsert_kh)
    if both.any():
        example = table.filter(pa.array(both)).slice(0, 3).to_pylist()
        raise InvalidInput(f"delete-keys: {int(both.sum())} key(s) are also upserted, e.g. {example}; "
                           "a key can be upserted or deleted in one commit, not both")
    found = parent.lookup(kh)
    if not found.present.all():
        example = table.filter(pa.array(~found.present)).slice(0, 3).to_pylist()
        raise InvalidInput(f"delete-keys: {int((~found.present).sum())} key(s) are not in the dataset, "
                           f"e.g. {example}")
    return np.sort(kh)


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
    from registry.provenance.store import diff_records, records_at

    if parent is None:
        from registry.provenance.records import empty_records

        before = empty_records()
    else:
        with transaction(ctx.engine, readonly=True) as session:
            before = records_at(ctx, session, parent)
    return diff_records(before, annotations.records, annotations.replace)


def _relabeled(parent: ManifestReader, kh: np.ndarray, cells: dict[str, np.ndarray], order: np.ndarray,
               changed: np.ndarray, label_column: str) -> int | None:
    """How many changed rows (``changed``, in key-hash order) have another label than in the parent."""
    found = parent.lookup(kh[changed])
    before = parent.cell_hashes(found, [label_column])
    if before is None:
        return None
    return int((cells[label_column][order][changed] != before[label_column]).sum())
