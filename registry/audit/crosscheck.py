"""Cross-checking the catalog against the audit chain (design invariant 5).

The chain records every create, commit, tag, compaction and token change with what it set. Replaying
it gives what the catalog must hold: every dataset's key columns, owner and description, every
snapshot's counts, parent and schema version, every ref's position and kind (tags never move), every
schema version, every token's role and scope, every branch protection and labeling-sync resume point
(:mod:`registry.audit.state_check`). A row edited, added or removed behind the registry's
back (``sqlite3``, ``psql``) disagrees with the replay, and the mismatch is named.

Contract for code that creates snapshots or moves refs (docs/security.md): the event creating a
snapshot has ``object_type`` ``snapshot`` and ``details`` with ``rows`` and ``added`` (a merge snapshot
too, with ``parent`` its first parent) and ``annotations`` (its records object's SHA-256, or null);
``branch.delete`` (``details.branch``) removes a ref; the event that creates or moves a ref carries
``dataset``, ``snapshot`` (the target) and ``details.moved_ref`` (the ref's name), and ``details.kind``
when it is not a branch. Every other action is listed in :data:`MOVES_NO_REF` (a test holds that each
action the code records is one or the other).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlmodel import Session, col, select

from registry.audit.compare import CLOCK_SKEW_SECONDS
from registry.audit.compare import compare as _compare
from registry.audit.compare import differs as _differs
from registry.audit.compare import time_problem as _time_problem
from registry.audit.governance_check import check_governance, read_governance
from registry.audit.models import AuditSegmentRow
from registry.audit.segments import unsealed_events
from registry.audit.state_check import StateReplay, check_state, read_state
from registry.auth.models import ApiTokenRow
from registry.context import Context
from registry.db import transaction
from registry.models import DatasetRow, RefRow, SchemaVersionRow, SnapshotRow
from registry.snapshots.manifest import Manifest, canonical_json
from registry.snapshots.schema import compare_schemas

__all__ = ["CLOCK_SKEW_SECONDS", "MOVES_NO_REF", "crosscheck"]


_READ = ("seq", "time", "actor", "action", "object_type", "object_id", "dataset", "snapshot", "details")


MOVES_NO_REF = frozenset({
    "audit.seal", "branch.delete", "branch.protect", "commit.denied", "dataset.create", "gate.evaluate", "gate.refuse",
    "gate.waive", "labeling.requeue", "lineage.ingest", "lineage.namespace", "merge.refused", "pin.create",
    "pin.refuse", "policy.set", "read.training", "read.unverified", "request.denied",
    "snapshot.compact", "store.gc", "store.migrate", "sync.hook", "sync.state", "token.create", "token.revoke",
})
"""Audit actions that move no ref (reads, pins and QA runs name a ref in ``details.ref`` and move none;
``branch.delete`` removes one, by ``details.branch``). An action that moves a ref says so itself, with
``details.moved_ref``."""

_LEGACY_MOVES_REFS = frozenset({"snapshot.commit", "snapshot.import", "snapshot.sync", "merge", "branch.create"})
"""Actions whose ``details.ref`` named the ref they moved in events written before events carried
``details.moved_ref`` (chains written then are replayed by this rule; tags by ``details.tag``)."""


@dataclass
class _Replay:
    """What the chain says the catalog holds."""

    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    manifests: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    gate_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    waivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    pins: dict[str, dict[str, Any]] = field(default_factory=dict)
    reads: dict[str, dict[str | None, dict[str, Any]]] = field(default_factory=dict)
    """Snapshot id -> lineage run id of each of its training reads and pins -> the first such event (run id
    None: events from before they were recorded)."""
    ingests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Run id -> its ``lineage.ingest`` events."""
    unrecorded_merge_gates: set[str] = field(default_factory=set)
    """Snapshots a gated merge moved a branch to before merge events recorded their gate result."""
    state: StateReplay = field(default_factory=StateReplay)
    """Branch protections and labeling-sync state."""

    def apply(self, event: dict[str, Any]) -> None:
        action, details, dataset, snapshot = event["action"], event["details"], event["dataset"], event["snapshot"]
        self._apply_governance(event)
        self.state.apply(event)
        if action == "dataset.create":
            self.datasets[event["object_id"]] = event
        elif action == "snapshot.compact" and snapshot:
            self.manifests[snapshot] = details.get("manifest_after")
        elif event["object_type"] == "snapshot" and snapshot and "rows" in details and "added" in details:
            self.snapshots[snapshot] = event
        elif action == "token.create":
            self.tokens[event["object_id"]] = {**event, "revoked": None}
        elif action == "token.revoke" and event["object_id"] in self.tokens:
            self.tokens[event["object_id"]]["revoked"] = event
        elif action == "branch.delete" and dataset and isinstance(details.get("branch"), str):
            self.refs.pop((dataset, details["branch"]), None)
            return
        if not (dataset and snapshot):
            return
        moved = details.get("moved_ref")
        if "moved_ref" not in details:  # an event written before events named the ref they move
            legacy = "tag" if action == "ref.tag" else "ref" if action in _LEGACY_MOVES_REFS else None
            moved = details.get(legacy) if legacy else None
            details = {**details, "kind": "tag"} if action == "ref.tag" else details
        if isinstance(moved, str):
            self.refs[dataset, moved] = {**event, "kind": details.get("kind", "branch")}

    def _apply_governance(self, event: dict[str, Any]) -> None:
        """Policies, gate results, waivers, pins and the lineage records the chain holds."""
        action, details, snapshot = event["action"], event["details"], event["snapshot"]
        if action == "policy.set" and event["dataset"] and type(details.get("version")) is int:
            self.policies[event["dataset"], details["version"]] = event
        elif action == "gate.evaluate":
            self.gate_results[event["object_id"]] = event
        elif action == "merge" and isinstance(details.get("gate_result"), dict):
            facts = details["gate_result"]
            self.gate_results[str(facts.get("gate_result"))] = {**event, "details": facts}
        elif action == "merge" and "gate_result" not in details and details.get("gate") not in (None, "no_policy"):
            self.unrecorded_merge_gates.add(str(snapshot))
        elif action == "gate.waive":
            self.waivers[event["object_id"]] = event
        elif action == "lineage.ingest":
            self.ingests.setdefault(str(details.get("run_id")), []).append(event)
        if action == "pin.create":
            self.pins[event["object_id"]] = event
        if action in ("pin.create", "read.training", "read.unverified") and snapshot:
            run = details.get("lineage_run_id")
            self.reads.setdefault(snapshot, {}).setdefault(run if isinstance(run, str) else None, event)


def _events(ctx: Context, session: Session) -> Iterator[dict[str, Any]]:
    """Every readable event in sequence order (a damaged segment is skipped: ``audit verify`` names it)."""
    tables = []
    for sha in session.exec(select(AuditSegmentRow.sha256).order_by(col(AuditSegmentRow.first_seq))).all():
        try:
            tables.append(pq.read_table(pa.BufferReader(ctx.store.read_bytes(sha)), columns=list(_READ)))
        except Exception:  # noqa: BLE001 - a damaged segment is audit verify's to report
            continue
    tables.append(unsealed_events(session).select(list(_READ)))
    for table in tables:
        try:
            rows = table.sort_by("seq").to_pylist()
        except (pa.ArrowException, UnicodeDecodeError, ValueError):
            continue
        for row in rows:
            try:
                details = json.loads(row["details"]) if row["details"] else {}
            except (TypeError, ValueError):
                details = {}
            yield {**row, "details": details if isinstance(details, dict) else {}}


def crosscheck(ctx: Context, name: str | None = None) -> list[str]:
    """Every disagreement between the catalog and the chain's replay (of dataset ``name``, or of all
    datasets and the tokens), each naming the object and the column."""
    replay = _Replay()
    with transaction(ctx.engine, readonly=True) as session:
        for event in _events(ctx, session):
            replay.apply(event)
        datasets = list(session.exec(select(DatasetRow)).all())
        snapshots = list(session.exec(select(SnapshotRow)).all())
        refs = list(session.exec(select(RefRow)).all())
        versions = list(session.exec(select(SchemaVersionRow)).all())
        tokens = list(session.exec(select(ApiTokenRow)).all()) if name is None else []
        governance = read_governance(session)
        state = read_state(session)
    names = {d.id: d.name for d in datasets}
    wanted = (lambda n: n == name) if name is not None else (lambda _n: True)
    problems = _check_datasets(replay, [d for d in datasets if wanted(d.name)], wanted)
    problems += _check_snapshots(ctx, replay, snapshots, names, wanted)
    problems += _check_refs(replay, refs, names, wanted)
    problems += _check_schema_versions(replay, versions, snapshots, names, wanted)
    if name is None:
        problems += _check_tokens(replay, tokens)
    problems += check_governance(replay, governance, names, wanted)
    problems += check_state(replay.state, state, names, wanted)
    return problems


def _check_datasets(replay: _Replay, datasets: list[DatasetRow], wanted: Any) -> list[str]:
    problems = []
    for dataset in datasets:
        what = f"dataset {dataset.name!r}"
        event = replay.datasets.get(dataset.name)
        if event is None:
            problems.append(f"{what} has no dataset.create event in the audit chain (created or renamed outside "
                            "the registry)")
            continue
        details = event["details"]
        problems += _compare(what, event, dataset.created_at, (
            ("key columns", _json(dataset.key_columns), details.get("key_columns")),
            ("owner", dataset.owner, details.get("owner")),
            ("description", dataset.description, details.get("description")),
            ("created_by", dataset.created_by, event["actor"])))
    present = {d.name for d in datasets}
    problems += [f"dataset {n!r} recorded by the audit chain (event {e['seq']}) is missing from the catalog"
                 for n, e in replay.datasets.items() if wanted(n) and n not in present]
    return problems


_COUNTS = ("rows", "added", "changed", "removed", "schema_version", "bytes_written", "summary", "message")


def _of_datasets(rows: list[Any], names: dict[int | None, str], wanted: Any, problems: list[str],
                 label: Any) -> Iterator[tuple[Any, str]]:
    """``(row, dataset name)`` of each row whose dataset is checked; a row whose ``dataset_id`` names no
    dataset is a problem (the dataset's id was changed, or the row moved)."""
    for row in rows:
        dataset = names.get(row.dataset_id)
        if dataset is None:
            problems.append(f"{label(row)} belongs to no dataset (dataset_id {row.dataset_id})")
        elif wanted(dataset):
            yield row, dataset


def _tops_manifest(ctx: Context, snap: SnapshotRow) -> bool:
    """Whether the snapshot's manifest ends with its own change (as every commit writes it); an unreadable
    manifest counts as fine here, since verify reports it as such."""
    try:
        manifest = Manifest.from_bytes(ctx.store.read_bytes(snap.manifest_sha256), f"manifest of {snap.id}")
    except Exception:  # noqa: BLE001 - verify names an unreadable manifest itself
        return True
    top = manifest.layers[-1] if manifest.layers else None
    return top is not None and top.rows == snap.change_sha256 and top.deletes == snap.deletes_sha256


def _check_snapshots(ctx: Context, replay: _Replay, snapshots: list[SnapshotRow], names: dict[int | None, str],
                     wanted: Any) -> list[str]:
    problems: list[str] = []
    by_id = {s.id: s for s in snapshots}
    for snap, dataset in _of_datasets(snapshots, names, wanted, problems, lambda s: f"snapshot {s.id[:12]}"):
        what = f"snapshot {dataset}@{snap.id[:12]}"
        event = replay.snapshots.get(snap.id)
        if event is None:
            problems.append(f"{what} has no commit event in the audit chain (inserted outside the registry)")
            continue
        details = event["details"]
        if event["dataset"] != dataset:
            problems.append(_differs(what, "dataset", dataset, event["dataset"]))
        for column in _COUNTS:
            if column in details and getattr(snap, column) != details[column]:
                problems.append(_differs(what, column, getattr(snap, column), details[column]))
        parents = _json(snap.parents)
        first_parent = parents[0] if isinstance(parents, list) and parents else None
        if "parent" in details and first_parent != details["parent"]:
            problems.append(_differs(what, "parent", first_parent, details["parent"]))
        if _records_hash_recorded(event) and snap.annotations_sha256 != details["annotations"]:
            problems.append(_differs(what, "annotations_sha256", snap.annotations_sha256, details["annotations"]))
        parent_seqs = [by_id[p].seq for p in parents if p in by_id] if isinstance(parents, list) else []
        allowed = {parent_seqs[0] + 1, max(parent_seqs) + 1} if parent_seqs else {1}  # a merge: either rule
        if snap.seq not in allowed:
            problems.append(f"{what}: seq is {snap.seq} in the catalog, but its parents make it "
                            f"{' or '.join(map(str, sorted(allowed)))}")
        if snap.id in replay.manifests:
            if snap.manifest_sha256 != replay.manifests[snap.id]:
                problems.append(_differs(what, "manifest_sha256", snap.manifest_sha256, replay.manifests[snap.id]))
        elif len(parents) <= 1 and not _tops_manifest(ctx, snap):
            problems.append(f"{what}: manifest_sha256 {snap.manifest_sha256[:12]} names a manifest whose top layer "
                            "is not this snapshot's change, and the audit chain records no compaction of it")
        problem = _time_problem(what, "created_at", snap.created_at, event)
        if problem:
            problems.append(problem)
    problems += [f"snapshot {e['dataset']}@{sid[:12]} recorded by the audit chain (event {e['seq']}) is missing "
                 "from the catalog" for sid, e in replay.snapshots.items() if wanted(e["dataset"]) and sid not in by_id]
    return problems


def _records_hash_recorded(event: dict[str, Any]) -> bool:
    """Whether the event's ``details.annotations`` is the snapshot's records SHA-256 (or null: none). A sync
    event written before the count moved to ``annotation_count`` holds the count there instead."""
    details = event["details"]
    if "annotations" not in details:
        return False
    legacy_count = event["action"] == "snapshot.sync" and "annotation_count" not in details
    return not (legacy_count and type(details["annotations"]) is int)


def _check_refs(replay: _Replay, refs: list[RefRow], names: dict[int | None, str], wanted: Any) -> list[str]:
    problems: list[str] = []
    seen = set()
    for ref, dataset in _of_datasets(refs, names, wanted, problems, lambda r: f"ref {r.name!r}"):
        seen.add((dataset, ref.name))
        what = f"{ref.kind} {dataset}@{ref.name}"
        event = replay.refs.get((dataset, ref.name))
        if event is None:
            problems.append(f"{what} has no event in the audit chain that set it (created outside the registry)")
            continue
        if ref.snapshot_id != event["snapshot"]:
            moved = "tags never move" if event["kind"] == "tag" else f"event {event['seq']} last moved it"
            problems.append(f"{what} points at {ref.snapshot_id[:12]} in the catalog, but the audit chain has it "
                            f"at {event['snapshot'][:12]} ({moved})")
        if ref.kind != event["kind"]:
            problems.append(_differs(f"ref {dataset}@{ref.name}", "kind", ref.kind, event["kind"]))
        problem = _time_problem(what, "updated_at", ref.updated_at, event)
        if problem:
            problems.append(problem)
    problems += [f"{e['kind']} {d}@{n} recorded by the audit chain (event {e['seq']}) is missing from the catalog"
                 for (d, n), e in replay.refs.items() if wanted(d) and (d, n) not in seen]
    return problems


def _check_schema_versions(replay: _Replay, versions: list[SchemaVersionRow], snapshots: list[SnapshotRow],
                           names: dict[int | None, str], wanted: Any) -> list[str]:
    problems = []
    by_id = {s.id: s for s in snapshots}
    ordered = sorted(versions, key=lambda v: (v.dataset_id, v.version))
    previous: dict[int, SchemaVersionRow] = {}
    for version in ordered:
        dataset = names.get(version.dataset_id)
        if dataset is None or not wanted(dataset):
            continue
        what = f"schema version {dataset}#{version.version}"
        before = previous.get(version.dataset_id)
        previous[version.dataset_id] = version
        columns = _json(version.arrow_schema)
        if not isinstance(columns, list) or _fingerprint(columns) != version.fingerprint:
            problems.append(f"{what}: arrow_schema does not hash to its fingerprint {version.fingerprint[:12]}")
            continue
        first = by_id.get(version.first_snapshot_id)
        if first is None or first.schema_version != version.version:
            problems.append(f"{what}: first_snapshot_id {version.first_snapshot_id[:12]} is not a snapshot of "
                            "that version")
            continue
        if first.schema_fingerprint != version.fingerprint:
            problems.append(_differs(what, "fingerprint", version.fingerprint[:12], first.schema_fingerprint[:12]))
        event = replay.snapshots.get(first.id)
        if event is not None:
            compatibility = event["details"].get("compatibility")
            if compatibility is not None and version.compatibility != compatibility:
                problems.append(_differs(what, "compatibility", version.compatibility, compatibility))
            problem = _time_problem(what, "created_at", version.created_at, event)
            if problem:
                problems.append(problem)
        try:
            expected_changes = [asdict(c) for c in compare_schemas(_json(before.arrow_schema), columns)] \
                if before is not None else []
        except (KeyError, TypeError):
            expected_changes = None
        if expected_changes is not None and _json(version.changes) != expected_changes:
            problems.append(f"{what}: changes differ from the difference of its schema and the previous version's")
    return problems


def _check_tokens(replay: _Replay, tokens: list[ApiTokenRow]) -> list[str]:
    problems = []
    for token in tokens:
        what = f"token {token.name!r}"
        event = replay.tokens.get(token.name)
        if event is None:
            problems.append(f"{what} has no token.create event in the audit chain (created outside the registry)")
            continue
        details = event["details"]
        problems += _compare(what, event, token.created_at, (
            ("role", token.role, details.get("role")),
            ("datasets", _json(token.datasets), details.get("datasets")),
            ("expires_at", token.expires_at, details.get("expires_at")),
            ("created_by", token.created_by, event["actor"]),
            ("secret_sha256", token.secret_sha256, details.get("secret_sha256", token.secret_sha256))))
        revoked = event["revoked"]
        if revoked is None and token.revoked_at is not None:
            problems.append(f"{what}: revoked_at is {token.revoked_at!r} in the catalog, but the audit chain has "
                            "no token.revoke event")
        elif revoked is not None:
            problem = _time_problem(what, "revoked_at", token.revoked_at, revoked)
            if problem:
                problems.append(problem)
    present = {t.name for t in tokens}
    problems += [f"token {n!r} recorded by the audit chain (event {e['seq']}) is missing from the catalog"
                 for n, e in replay.tokens.items() if n not in present]
    return problems


def _fingerprint(columns: list[Any]) -> str:
    """What :func:`registry.snapshots.schema.fingerprint` gives for a schema of these columns."""
    return hashlib.sha256(canonical_json(columns)).hexdigest()


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return text
