"""The merge use case: ``NAME@SOURCE`` into a branch, three-way against the merge base, gated by the
target's QA policy before the branch moves (write-audit-publish).

Order of work: read both heads and the merge base; fast-forward when the target has not moved since
the base; else plan the merge cell by cell (:mod:`registry.snapshots.merge`), resolve conflicts
(a resolutions file, then ``prefer``, then ``strategy``), write the merge layer and the union of
both sides' annotation records, evaluate the target's policy on the result, and in one transaction
insert the snapshot (two parents) and its gate result, move the target by compare-and-swap, queue
the lineage run and append the audit event. Any refusal (conflicts, a failing gate) leaves the target
where it was and is audited as ``merge.refused``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry import catalog
from registry.audit import log as audit
from registry.branch_models import MergeConflictRow
from registry.context import Actor, Context, resolve_actor
from registry.db import transaction
from registry.errors import GateBlocked, Hint, InvalidInput, NotFound, RefConflict, UnresolvedConflicts
from registry.lineage import emit as lineage_emit
from registry.models import DatasetRow, SchemaVersionRow, SnapshotRow
from registry.provenance import merge_records
from registry.provenance.store import write_delta
from registry.quality.merge_gate import audit_facts, evaluate_result, record_and_decide
from registry.quality.models import GateResultRow
from registry.quality.store import current_policy
from registry.refs import Ref
from registry.snapshots.ancestry import load_graph
from registry.snapshots.describe import describe_change
from registry.snapshots.inputs import InputLimits
from registry.snapshots.manifest import snapshot_id
from registry.snapshots.merge import Conflict, MergePlan, display, plan_merge
from registry.snapshots.merge_resolve import apply_resolutions, apply_strategy
from registry.snapshots.merge_write import write_merge_layer
from registry.snapshots.schema import compare_schemas, fingerprint, schema_from_json, schema_to_json
from registry.timeutil import utc_now

__all__ = ["CONFLICT_COLUMNS", "MergeResult", "conflicts_table", "merge"]

CONFLICT_COLUMNS = ["key", "column", "kind", "base", "ours", "theirs", "ours_annotator", "ours_labeled_at",
                    "ours_guideline", "theirs_annotator", "theirs_labeled_at", "theirs_guideline"]


@dataclass(frozen=True)
class MergeResult:
    """What a merge did (or, with ``dry_run``, would do).

    ``outcome``: ``up-to-date`` (the target has the source already), ``fast-forward`` (the target
    moved to the source's snapshot), ``merged`` (a merge snapshot with two parents), or ``dry-run``.
    """

    dataset: str
    source: str
    target: str
    outcome: str
    source_snapshot: str
    target_before: str
    base: str | None
    snapshot_id: str | None
    """The target's head after the merge (None for a dry run)."""
    added: int = 0
    changed: int = 0
    removed: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    """Every conflict found, with how it was resolved (unresolved ones have no ``resolution``)."""
    resolved: int = 0
    gate: dict[str, Any] | None = None
    attempts: int = 1

    @property
    def unresolved(self) -> list[dict[str, Any]]:
        return [c for c in self.conflicts if "resolution" not in c]

    def conflicts_table(self) -> pa.Table:
        """The conflicts as a ``pyarrow.Table`` (``MergeConflicts``)."""
        return conflicts_table(self.conflicts)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def conflicts_table(conflicts: list[dict[str, Any]]) -> pa.Table:
    """``MergeConflicts``: one row per conflict; ``key`` as JSON, every value as text."""
    rows = [{**{c: row.get(c) for c in CONFLICT_COLUMNS}, "key": json.dumps(row["key"], default=str),
             "resolution": (row.get("resolution") or {}).get("take")} for row in conflicts]
    schema = pa.schema([pa.field(c, pa.string()) for c in [*CONFLICT_COLUMNS, "resolution"]])
    return pa.Table.from_pylist(rows, schema=schema)


@dataclass
class _Heads:
    dataset: DatasetRow
    source: SnapshotRow
    target: SnapshotRow
    base: SnapshotRow | None
    outcome: str


def _read_heads(ctx: Context, source_ref: Ref, into: str, expect_target: str | None) -> _Heads:
    with transaction(ctx.engine, readonly=True) as session:
        name = source_ref.dataset
        dataset, source = catalog.resolve_ref(session, source_ref)
        target_ref = catalog.get_ref(session, dataset, into)
        if target_ref is None or target_ref.kind != "branch":
            raise NotFound(f"{name} has no branch {into!r} to merge into; the list of its branches shows their "
                           "names", hint=Hint("command", "branch list", name))
        target = catalog.get_snapshot(session, target_ref.snapshot_id)
        if expect_target is not None and not target.id.startswith(expect_target):
            raise RefConflict(f"{name}@{into} is at {target.id[:12]}, not at {expect_target[:12]}; "
                              "another writer moved it: re-read and merge again")
        graph = load_graph(session, dataset)
        base_id = graph.merge_base(target.id, source.id)
        base = catalog.get_snapshot(session, base_id) if base_id else None
        outcome = ("up-to-date" if base_id == source.id else "fast-forward" if base_id == target.id else "merge")
        if outcome == "merge" and base is None:
            raise InvalidInput(f"{source_ref} and {name}@{into} share no history; nothing to merge against")
        session.expunge_all()
        return _Heads(dataset, source, target, base, outcome)


def _schema(session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> dict[str, str]:
    row = session.get(SchemaVersionRow, (dataset.id, snapshot.schema_version))
    return {c["name"]: c["type"] for c in json.loads(row.arrow_schema)} if row else {}


def _columns(session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> list[dict[str, Any]]:
    row = session.get(SchemaVersionRow, (dataset.id, snapshot.schema_version))
    return schema_from_json(row.arrow_schema) if row else []


def _check_schemas(ctx: Context, heads: _Heads, keys: list[str]) -> None:
    """Refuse a three-way merge whose sides changed the schema in ways that cannot both hold: incompatible
    column types are listed as conflicts; a breaking change on either side (a removed or narrowed column)
    and a column added as not nullable (the other side's rows would need a null) are refused. Compatible
    changes (added nullable columns, widened types) on either or both sides merge."""
    assert heads.base is not None
    fingerprints = {heads.base.schema_fingerprint, heads.target.schema_fingerprint, heads.source.schema_fingerprint}
    if len(fingerprints) == 1:
        return
    with transaction(ctx.engine, readonly=True) as session:
        base, ours, theirs = (_schema(session, heads.dataset, s) for s in (heads.base, heads.target, heads.source))
        columns = [_columns(session, heads.dataset, s) for s in (heads.base, heads.target, heads.source)]
    clashes: list[dict[str, object]] = [
        {"key": None, "column": c, "kind": "schema", "base": base.get(c), "ours": ours[c], "theirs": theirs[c]}
        for c in sorted(set(ours) & set(theirs))
        if ours[c] != theirs[c] and ours[c] != base.get(c) and theirs[c] != base.get(c)]
    if clashes:
        listed = "; ".join(f"{c['column']}: ours {c['ours']}, theirs {c['theirs']}" for c in clashes)
        raise UnresolvedConflicts(f"{heads.dataset.name}: incompatible schema changes on both sides ({listed}); "
                                  "make the column types agree on one branch, then merge again", clashes)
    for side, after in (("the target", columns[1]), ("the source", columns[2])):
        changes = compare_schemas(columns[0], after)
        refused = [c.describe() for c in changes if c.breaking]
        refused += [f"+ {c['name']} {c['type']} not null" for c in after
                    if c["name"] not in base and not c.get("nullable", True)]
        if refused:
            raise InvalidInput(f"{heads.dataset.name}: {side} made a breaking schema change since the merge base "
                               f"({'; '.join(refused)}); a three-way merge takes compatible changes only (added "
                               "nullable columns, widened types): make the change on both branches, or merge "
                               "the other way")


def _schema_version(ctx: Context, dataset: DatasetRow, schema_fp: str, columns: list[dict[str, Any]],
                    snapshot: str, created_at: str) -> tuple[int, SchemaVersionRow | None]:
    """The dataset's schema version with ``schema_fp`` (the merged schema), or the next version number and
    the row to add with the merge (a racing writer's version fails on its primary key)."""
    with transaction(ctx.engine, readonly=True) as session:
        versions = session.exec(select(SchemaVersionRow).where(col(SchemaVersionRow.dataset_id) == dataset.id)).all()
        session.expunge_all()
    same = [v.version for v in versions if v.fingerprint == schema_fp]
    if same:
        return max(same), None
    latest = max(versions, key=lambda v: v.version, default=None)
    version = (latest.version if latest else 0) + 1
    changes = compare_schemas(schema_from_json(latest.arrow_schema), columns) if latest else []
    return version, SchemaVersionRow(dataset_id=catalog.dataset_id(dataset), version=version, fingerprint=schema_fp,
                                     arrow_schema=json.dumps(columns), compatibility="compatible",
                                     changes=json.dumps([asdict(c) for c in changes]), first_snapshot_id=snapshot,
                                     created_at=created_at)


def _resolve(plan: MergePlan, acts: tuple[merge_records.Acts, merge_records.Acts], strategy: str,
             prefer: str | None, resolutions: str | Path | None, limits: InputLimits) -> int:
    resolved = 0
    if resolutions is not None:
        resolved += apply_resolutions(plan.conflicts, resolutions, plan.keys, plan.schema, limits)
    if prefer is not None:
        resolved += merge_records.prefer(plan.conflicts, prefer, *acts)
    return resolved + apply_strategy(plan.conflicts, strategy)


def _conflict_rows(heads: _Heads, source: str, into: str, conflicts: list[Conflict]) -> list[MergeConflictRow]:
    now = utc_now()
    return [MergeConflictRow(
        dataset_id=catalog.dataset_id(heads.dataset), source=source, target=into, source_snapshot=heads.source.id,
        target_snapshot=heads.target.id, base_snapshot=heads.base.id if heads.base else None,
        key=json.dumps(c.key, default=str), column_name=c.column, kind=c.kind, base=display(c.base),
        ours=display(c.ours), theirs=display(c.theirs),
        ours_annotator=(c.ours_by or {}).get("annotator"), ours_labeled_at=(c.ours_by or {}).get("labeled_at"),
        ours_guideline=(c.ours_by or {}).get("guideline"), theirs_annotator=(c.theirs_by or {}).get("annotator"),
        theirs_labeled_at=(c.theirs_by or {}).get("labeled_at"),
        theirs_guideline=(c.theirs_by or {}).get("guideline"), recorded_at=now) for c in conflicts]


def _clear_conflicts(session: Session, dataset: DatasetRow, source: str, into: str) -> None:
    session.execute(delete(MergeConflictRow).where(
        col(MergeConflictRow.dataset_id) == dataset.id, col(MergeConflictRow.source) == source,
        col(MergeConflictRow.target) == into))


def _refuse(ctx: Context, heads: _Heads, source: str, into: str, who: Actor, reason: str,
            details: dict[str, Any], conflicts: list[Conflict] | None = None) -> None:
    """Audit a refused merge (and keep its conflicts for the ``merge_conflicts`` view); the target stays."""
    with transaction(ctx.engine) as session:
        if conflicts is not None:
            _clear_conflicts(session, heads.dataset, source, into)
            session.add_all(_conflict_rows(heads, source, into, conflicts))
            session.flush()
        audit.record(session, ctx, "merge.refused", "ref", f"{heads.dataset.name}@{into}",
                     dataset=heads.dataset.name, snapshot=heads.target.id, actor=who,
                     details={"source": source, "source_snapshot": heads.source.id, "target": into,
                              "reason": reason, **details})


def _evaluate_gate(ctx: Context, dataset: DatasetRow, snapshot: SnapshotRow, who: Actor) -> GateResultRow | None:
    """The target's policy on the merge result (None without a policy: then the QA machinery is not even loaded)."""
    with transaction(ctx.engine, readonly=True) as session:
        if current_policy(session, dataset) is None:
            return None
    return evaluate_result(ctx, dataset.name, snapshot, who.name)


def _decide(session: Session, dataset: DatasetRow, snapshot: SnapshotRow, row: GateResultRow | None) -> Any:
    if row is None:
        return None
    return record_and_decide(session, dataset, snapshot, row)


def _gate_facts(row: GateResultRow | None) -> dict[str, object] | None:
    """The gate result a merge stores, as its audit event records it (verify compares the row with it)."""
    if row is None:
        return None
    return audit_facts(row)


class _GateFailed(Exception):
    def __init__(self, status: Any) -> None:
        super().__init__(status.state)
        self.status = status


def _gate_message(name: str, into: str, status: Any) -> str:
    failed = "; ".join(f"{c['name']}: {c.get('metric')} vs {c.get('threshold')}" for c in status.failed)
    return (f"merge into {name}@{into} refused: the result fails {name}'s QA policy v{status.policy_version} "
            f"({failed or status.state}); the target did not move")


def _fast_forward(ctx: Context, heads: _Heads, source: str, into: str, who: Actor) -> MergeResult:
    name = heads.dataset.name
    gate_row = _evaluate_gate(ctx, heads.dataset, heads.source, who)
    try:
        with transaction(ctx.engine) as session:
            status = _decide(session, heads.dataset, heads.source, gate_row)
            if status is not None and not status.passes:
                raise _GateFailed(status)
            catalog.move_branch(session, heads.dataset, into, heads.target.id, heads.source.id)
            _clear_conflicts(session, heads.dataset, source, into)
            audit.record(session, ctx, "merge", "ref", f"{name}@{into}", dataset=name, snapshot=heads.source.id,
                         actor=who, details={"source": source, "target": into, "ref": into, "moved_ref": into,
                                             "fast_forward": True,
                                             "from": heads.target.id, "to": heads.source.id,
                                             "gate": status.state if status else "no_policy",
                                             "gate_result": _gate_facts(gate_row)})
    except _GateFailed as failed:
        _refuse(ctx, heads, source, into, who, "gate", {"failed": failed.status.failed})
        raise GateBlocked(_gate_message(name, into, failed.status)) from None
    return MergeResult(name, source, into, "fast-forward", heads.source.id, heads.target.id,
                       heads.base.id if heads.base else None, heads.source.id,
                       gate=status.to_dict() if status else None)


def _merge_once(ctx: Context, heads: _Heads, source: str, into: str, who: Actor, *, strategy: str,
                prefer: str | None, resolutions: str | Path | None, dry_run: bool, message: str) -> MergeResult:
    name = heads.dataset.name
    if heads.outcome == "up-to-date":
        return MergeResult(name, source, into, "up-to-date", heads.source.id, heads.target.id,
                           heads.source.id, None if dry_run else heads.target.id)
    if heads.outcome == "fast-forward":
        if dry_run:
            return MergeResult(name, source, into, "dry-run", heads.source.id, heads.target.id, heads.target.id,
                               None)
        return _fast_forward(ctx, heads, source, into, who)
    keys = catalog.key_columns(heads.dataset)
    try:
        _check_schemas(ctx, heads, keys)
    except UnresolvedConflicts as exc:
        if not dry_run:
            _refuse(ctx, heads, source, into, who, "schema", {"conflicts": exc.conflicts})
        raise
    assert heads.base is not None
    with transaction(ctx.engine, readonly=True) as session:
        graph = load_graph(session, heads.dataset)
        plan = plan_merge(ctx, session, graph, heads.base, heads.target, heads.source, keys)
        records = (merge_records.records_of(ctx, session, heads.target),
                   merge_records.records_of(ctx, session, heads.source))
    acts = merge_records.attribute(plan.conflicts, *records)
    resolved = _resolve(plan, acts, strategy, prefer, resolutions, InputLimits.from_settings(ctx.settings.inputs))
    conflicts = [c.to_dict() for c in plan.conflicts]
    base_id = heads.base.id
    if dry_run:
        upserts, delete_kh = plan.result()
        return MergeResult(name, source, into, "dry-run", heads.source.id, heads.target.id, base_id, None,
                           changed=upserts.num_rows, removed=len(delete_kh), conflicts=conflicts, resolved=resolved)
    unresolved = plan.unresolved
    if unresolved:
        _refuse(ctx, heads, source, into, who, "conflicts", {"conflicts": len(unresolved)}, unresolved)
        raise UnresolvedConflicts(
            f"merge of {source} into {name}@{into}: {len(unresolved)} unresolved conflict(s) "
            f"({len(plan.conflicts)} found); nothing changed. Resolve them with a file of resolutions, a preference "
            "(ground-truth, reviewer or majority) or a strategy (ours or theirs)", [c.to_dict() for c in unresolved],
            hint=Hint("option", "resolutions", "FILE"))
    upserts, delete_kh = plan.result()
    layer = write_merge_layer(ctx, plan, upserts, delete_kh)
    delta = merge_records.union_delta(*records)
    annotations_sha = write_delta(ctx, delta).sha256 if delta is not None else None
    created_at = utc_now()
    text = message or f"merge {source} into {into}"
    parents = [heads.target.id, heads.source.id]
    columns = schema_to_json(plan.schema)
    schema_fp = fingerprint(plan.schema) if plan.new_base else heads.target.schema_fingerprint
    new_id = snapshot_id(dataset=name, parents=parents, change_sha256=layer.staged.change_sha256,
                         deletes_sha256=layer.staged.deletes_sha256, schema_fingerprint=schema_fp,
                         author=who.name, message=text, created_at=created_at, annotations_sha256=annotations_sha)
    version, new_version = _schema_version(ctx, heads.dataset, schema_fp, columns, new_id, created_at) \
        if plan.new_base else (heads.target.schema_version, None)
    row = SnapshotRow(id=new_id, dataset_id=catalog.dataset_id(heads.dataset),
                      seq=max(heads.target.seq, heads.source.seq) + 1, parents=json.dumps(parents), author=who.name,
                      message=text, created_at=created_at, schema_version=version, schema_fingerprint=schema_fp,
                      change_sha256=layer.staged.change_sha256, deletes_sha256=layer.staged.deletes_sha256,
                      manifest_sha256=layer.staged.manifest_sha256, rows=layer.rows,
                      bytes_written=layer.staged.bytes_written, added=layer.added, changed=layer.changed,
                      removed=layer.removed, annotations_sha256=annotations_sha,
                      summary=describe_change(layer.added, layer.changed, layer.removed))
    gate_row = _evaluate_gate(ctx, heads.dataset, row, who)
    with transaction(ctx.engine, readonly=True) as session:
        schema = [{"name": k, "type": v} for k, v in _schema(session, heads.dataset, heads.target).items()] \
            if not plan.new_base else [{"name": c["name"], "type": c["type"]} for c in columns]
    run = lineage_emit.begin_commit(ctx, name, lineage_emit.LineageRun(
        job=f"{ctx.settings.lineage.job_namespace}/merge/{name}"))
    try:
        with transaction(ctx.engine) as session:
            if new_version is not None:
                session.add(new_version)
            session.add(row)
            session.flush()
            status = _decide(session, heads.dataset, row, gate_row)
            if status is not None and not status.passes:
                raise _GateFailed(status)
            catalog.move_branch(session, heads.dataset, into, heads.target.id, new_id)
            _clear_conflicts(session, heads.dataset, source, into)
            lineage_emit.enqueue_commit(session, ctx, run, dataset=heads.dataset, snapshot=row, schema=schema,
                                        mode="merge", compatibility="compatible" if plan.new_base else "unchanged",
                                        column_metrics={}, layers=layer.staged.layers)
            audit.record(session, ctx, "merge", "snapshot", new_id, dataset=name, snapshot=new_id, actor=who,
                         details={"source": source, "target": into, "ref": into, "moved_ref": into,
                                  "fast_forward": False,
                                  "parents": parents, "parent": parents[0], "base": base_id, "rows": layer.rows,
                                  "added": layer.added, "changed": layer.changed,
                                  "removed": layer.removed, "conflicts": len(plan.conflicts), "resolved": resolved,
                                  "annotations": annotations_sha, "gate": status.state if status else "no_policy",
                                  "gate_result": _gate_facts(gate_row)})
    except _GateFailed as failed:
        lineage_emit.fail_commit(ctx, run, GateBlocked(failed.status.state))
        _refuse(ctx, heads, source, into, who, "gate", {"failed": failed.status.failed})
        raise GateBlocked(_gate_message(name, into, failed.status)) from None
    except IntegrityError as exc:
        lineage_emit.fail_commit(ctx, run, exc)
        raise RefConflict(f"{name}@{into} was moved by another writer while merging; merge again") from exc
    except Exception as exc:
        lineage_emit.fail_commit(ctx, run, exc)
        raise
    return MergeResult(name, source, into, "merged", heads.source.id, heads.target.id, base_id, new_id,
                       layer.added, layer.changed, layer.removed, conflicts, resolved,
                       status.to_dict() if status else None)


def merge(ctx: Context, source_ref: Ref | str, into: str, *, strategy: str = "fail", prefer: str | None = None,
          resolutions: str | Path | None = None, dry_run: bool = False, message: str = "",
          actor: str | None = None, expect_target: str | None = None, retry: int = 0) -> MergeResult:
    """Merge the snapshot ``source_ref`` (``NAME@BRANCH``, a tag or an id) into branch ``into``.

    ``retry``: how many times to start over when another writer moves the target during the merge.

    Raises:
        NotFound: unknown dataset, source ref or target branch.
        InvalidInput: bad strategy, preference or resolutions file; histories that share nothing;
            a schema change on a branch since the merge base.
        UnresolvedConflicts: conflicts remain (listed); nothing changed.
        GateBlocked: the result fails the target's QA policy (checks named); the target did not move.
        RefConflict: the target moved during the merge (after ``retry`` attempts), or is not at
            ``expect_target``.
    """
    if strategy not in ("fail", "ours", "theirs"):
        raise InvalidInput(f"unknown merge strategy {strategy!r}; use fail, ours or theirs",
                           hint=Hint("value", "strategy", "fail, ours, theirs"))
    if prefer is not None and prefer not in merge_records.PREFERENCES:
        raise InvalidInput(f"unknown preference {prefer!r}; use one of {', '.join(merge_records.PREFERENCES)}",
                           hint=Hint("value", "prefer", ", ".join(merge_records.PREFERENCES)))
    who = resolve_actor(ctx, actor)
    source_ref = Ref.coerce(source_ref)
    source = source_ref.ref_name
    attempt = 0
    while True:
        attempt += 1
        heads = _read_heads(ctx, source_ref, into, expect_target if attempt == 1 else None)
        try:
            result = _merge_once(ctx, heads, source, into, who, strategy=strategy, prefer=prefer,
                                 resolutions=resolutions, dry_run=dry_run, message=message)
        except RefConflict:
            if attempt > retry:
                raise
            continue
        return MergeResult(**{**asdict(result), "attempts": attempt})
