"""The wire models: one pydantic model per JSON body the registry's API (``/api/v1``) answers with.

The server declares them on its routes (so ``/api/v1/openapi.json`` describes every body) and
validates what it sends against them; the client returns them. Field names and order are exactly
the JSON keys ``registry ... --json`` prints. A list endpoint answers ``{"data": [...], "count": N}``
(a ``<Noun>sPublic`` model).

Models ignore keys they do not know (``extra="ignore"``), so a newer server does not break an older
client; the contract tests validate the server's answers with ``extra="forbid"``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdmissionPublic",
    "AuditCheckpointPublic",
    "AuditEventPublic",
    "AuditEventsPublic",
    "AuditVerifyPublic",
    "BlamePublic",
    "BranchPublic",
    "BranchesPublic",
    "CheckOutcomePublic",
    "ColumnPublic",
    "CommitPublic",
    "ConflictPublic",
    "ConflictResolutionPublic",
    "DatasetPublic",
    "DatasetsPublic",
    "DiffExamplePublic",
    "DiffPublic",
    "FailedCheckPublic",
    "GateResultPublic",
    "GateResultsPublic",
    "GateStatusPublic",
    "GateWaiverPublic",
    "HealthPublic",
    "HistoryEntriesPublic",
    "HistoryEntryPublic",
    "HookSyncPublic",
    "ImportPublic",
    "LabelChangePublic",
    "LabelDiffPublic",
    "LabelDiffRowsPublic",
    "LineageEdgePublic",
    "LineageGraphPublic",
    "LineageIngestPublic",
    "LineageNodePublic",
    "ListPublic",
    "LockEntryPublic",
    "MergeConflictsPublic",
    "MergePublic",
    "PolicyPublic",
    "QueryResultPublic",
    "ReadTaskPublic",
    "ResolvedRefPublic",
    "ScanPlanPublic",
    "SchemaChangePublic",
    "SchemaVersionPublic",
    "SchemaVersionsPublic",
    "SnapshotPublic",
    "SnapshotsPublic",
    "VerifyReportPublic",
    "WaiverPublic",
    "WhoamiPublic",
    "WireModel",
]


class WireModel(BaseModel):
    """Base of every wire model: unknown keys are ignored (a newer server may send more)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)
    """Dumps use the JSON names (``schema``, ``from``) of the fields whose Python names differ
    (``schema_``, ``from_``)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object as the server sent it (keys it sent, in the documented order)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class ListPublic(WireModel):
    """Base of the list wrappers ``{"data": [...], "count": N}``: each declares ``data`` (the items) and
    ``count`` (how many), in that order."""


# --- identity and health ---------------------------------------------------------------------------------


class HealthPublic(WireModel):
    """``GET /healthz`` and ``GET /readyz``: ``ok`` / ``ready``."""

    status: str


class WhoamiPublic(WireModel):
    """``GET /whoami``: the token's name, role, dataset scope (empty: every dataset) and allowed actions."""

    name: str
    role: str
    datasets: list[str]
    actions: list[str]


# --- datasets, commits, snapshots ------------------------------------------------------------------------


class DatasetPublic(WireModel):
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


class DatasetsPublic(ListPublic):
    data: list[DatasetPublic]
    count: int


class CommitPublic(WireModel):
    """What a commit did; ``created`` is False when the input changed nothing (``id`` = ``snapshot_id``)."""

    id: str
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


class ColumnPublic(WireModel):
    """One column of a schema."""

    name: str
    type: str
    nullable: bool


class SnapshotPublic(WireModel):
    """One snapshot with its tags, branches and schema."""

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
    tags: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)
    schema_: list[ColumnPublic] = Field(default_factory=list, alias="schema")
    summary: str = ""
    annotations_sha256: str | None = None


class SnapshotsPublic(ListPublic):
    data: list[SnapshotPublic]
    count: int


class ResolvedRefPublic(WireModel):
    """What ``NAME[@REF]`` names now: the dataset, the ref as written (``main`` by default) and the full id."""

    dataset: str
    ref: str
    snapshot_id: str


class SchemaChangePublic(WireModel):
    """One column-level difference between two schemas (``kind``: column_added, column_removed,
    type_changed, nullability_changed, columns_reordered)."""

    kind: str
    column: str
    before: str | None
    after: str | None
    breaking: bool


class SchemaVersionPublic(WireModel):
    """One schema version of a dataset and how it relates to the one before."""

    version: int
    fingerprint: str
    compatibility: str
    columns: list[ColumnPublic]
    changes: list[SchemaChangePublic]
    first_snapshot_id: str
    created_at: str


class SchemaVersionsPublic(ListPublic):
    data: list[SchemaVersionPublic]
    count: int


class DiffExamplePublic(WireModel):
    """One example row of a diff: ``kind`` changed (with ``columns``), added or removed."""

    kind: str
    key: Any
    """The key value (a JSON object of the key columns when the dataset has several)."""
    columns: list[str] | None = None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class DiffPublic(WireModel):
    """Counts, per-column changed cells, schema changes and example rows from ``a`` to ``b``."""

    dataset: str
    a: str
    b: str
    added: int
    removed: int
    changed: int
    unchanged: int
    changed_cells: dict[str, int]
    schema_changes: list[SchemaChangePublic]
    examples: list[DiffExamplePublic] = Field(default_factory=list)


class LabelChangePublic(WireModel):
    """One relabeled row: its key, the labels before and after, and who gave the new one."""

    key: str
    from_: str | None = Field(alias="from")
    to: str | None
    annotator: str | None
    annotator_id: str | None
    guideline_version: str | None
    labeled_at: str | None


class LabelDiffPublic(WireModel):
    """The label change matrix (``matrix[from][to]``) and what surrounds it."""

    a: str
    b: str
    column: str
    rows_a: int
    rows_b: int
    rows_in_both: int
    relabeled: int
    matrix: dict[str, dict[str, int]] = Field(default_factory=dict)
    net_change: dict[str, int] = Field(default_factory=dict)
    distribution_a: dict[str, int] = Field(default_factory=dict)
    distribution_b: dict[str, int] = Field(default_factory=dict)
    total_variation: float | int = 0.0
    by_annotator: dict[str, int] = Field(default_factory=dict)
    by_guideline: dict[str, int] = Field(default_factory=dict)
    changes: list[LabelChangePublic] = Field(default_factory=list)


class LabelDiffRowsPublic(WireModel):
    """A page of relabeled rows (the console's ``GET /diff/labels/rows``); ``total`` relabeled in all."""

    total: int
    offset: int
    rows: list[LabelChangePublic]


# --- annotations and provenance --------------------------------------------------------------------------


class ImportPublic(CommitPublic):
    """An import: the commit it made (its fields flat) and what it read."""

    source_format: str
    batch_id: str
    samples: int
    records: int
    warnings: list[str] = Field(default_factory=list)
    dataset_created: bool = False


class HistoryEntryPublic(WireModel):
    """One event in a sample's life: a labeling act (``kind='label'``) or a snapshot that changed it."""

    kind: str
    time: str | None
    snapshot_id: str
    message: str
    value: str | None = None
    annotator: str | None = None
    source_kind: str | None = None
    guideline_version: str | None = None
    change: str | None = None
    annotation_id: str | None = None
    annotator_id: str | None = None
    model_version: str | None = None


class HistoryEntriesPublic(ListPublic):
    data: list[HistoryEntryPublic]
    count: int


class BlamePublic(ListPublic):
    """Per row (in key order): its key columns, the column's value, the snapshot that last changed it and
    who labeled it (the key columns depend on the dataset, so each row is a JSON object)."""

    data: list[dict[str, Any]]
    count: int


# --- quality: policies, gates, waivers, pins -------------------------------------------------------------


class PolicyPublic(WireModel):
    """One stored QA policy version; ``created`` is False when ``set`` stored nothing new."""

    dataset: str
    version: int
    policy_hash: str
    maintainers: list[str]
    checks: list[dict[str, Any]]
    """The policy's checks in canonical form (each check's own parameters)."""
    document: str
    created_at: str
    created_by: str
    created: bool = True


class FailedCheckPublic(WireModel):
    """A failed check of a gate: its name, check, metric and threshold, and the error if it could not run."""

    name: str
    check: str
    metric: float | int | None
    threshold: str
    error: str | None


class GateWaiverPublic(WireModel):
    """The waiver a gate passes by."""

    id: str
    reason: str
    checks: list[str] | None
    expires_at: str | None
    created_by: str
    created_at: str


class GateStatusPublic(WireModel):
    """The gate of one snapshot under the current policy: ``passes``, and why (``message``)."""

    dataset: str
    snapshot_id: str
    state: Literal["passed", "waived", "failed", "stale", "never_evaluated", "no_policy"]
    policy_version: int | None
    policy_hash: str | None
    result_id: str | None
    evaluated_at: str | None
    failed: list[FailedCheckPublic] = Field(default_factory=list)
    warnings: list[FailedCheckPublic] = Field(default_factory=list)
    waiver: GateWaiverPublic | None = None
    passes: bool
    message: str


class CheckOutcomePublic(WireModel):
    """One check of a stored gate result (its keys in the sorted order they are stored in)."""

    check: str
    details: dict[str, Any]
    metric: float | int | None
    name: str
    passed: bool
    severity: str
    threshold: str


class GateResultPublic(WireModel):
    """One stored evaluation of a policy on a snapshot, and the snapshot's gate right after it."""

    id: str
    dataset: str
    snapshot_id: str
    policy_version: int
    policy_hash: str
    status: str
    checks: list[CheckOutcomePublic]
    created_at: str
    created_by: str
    duration_ms: int
    gate: GateStatusPublic | None = None


class GateResultsPublic(ListPublic):
    data: list[GateResultPublic]
    count: int


class WaiverPublic(WireModel):
    """A waiver: the snapshot passes its gate despite failed ``checks`` (null: every check)."""

    id: str
    dataset: str
    snapshot_id: str
    checks: list[str] | None
    reason: str
    expires_at: str | None
    created_at: str
    created_by: str


class LockEntryPublic(WireModel):
    """One pinned snapshot: the lockfile entry to write."""

    dataset: str
    job: str | None
    ref: str
    snapshot_id: str
    content_hash: str
    gate_result_id: str | None
    waiver_id: str | None
    pinned_at: str
    pinned_by: str | None = None
    registry: str | None = None
    namespace: str | None = None


# --- training reads --------------------------------------------------------------------------------------


class ReadTaskPublic(WireModel):
    """Rows ``[offset, offset + length)`` of row group ``row_group`` of the Parquet object ``object``,
    minus the positions in ``hidden``; ``rows`` visible rows."""

    object: str
    row_group: int
    offset: int
    length: int
    hidden: list[int]
    rows: int


class ScanPlanPublic(WireModel):
    """A snapshot's scan plan: read tasks in shards, the Arrow schema (base64 IPC) and the columns read."""

    dataset: str
    snapshot_id: str
    key_columns: list[str]
    rows: int
    schema_: str = Field(alias="schema")
    columns: list[str] | None
    shards: list[list[ReadTaskPublic]]


class AdmissionPublic(WireModel):
    """An admitted training read: its plan, lineage run, job and gate state."""

    plan: ScanPlanPublic
    run_id: str
    job: str | None
    gate: str


# --- branches and merges ---------------------------------------------------------------------------------


class BranchPublic(WireModel):
    """One branch: where it points, whether it is protected, whether ``main`` has its head (``merged``)."""

    dataset: str
    name: str
    snapshot_id: str
    protected: bool
    updated_at: str
    merged: bool


class BranchesPublic(ListPublic):
    data: list[BranchPublic]
    count: int


class ConflictResolutionPublic(WireModel):
    """How a conflict was resolved: ``take`` ours, theirs or value, and what decided it."""

    take: str
    value: str | None
    by: str | None


class ConflictPublic(WireModel):
    """One merge conflict (values as text), who set each side, and the resolution if any."""

    key: dict[str, Any]
    column: str
    kind: str
    base: str | None
    ours: str | None
    theirs: str | None
    ours_annotator: str | None
    ours_labeled_at: str | None
    ours_guideline: str | None
    theirs_annotator: str | None
    theirs_labeled_at: str | None
    theirs_guideline: str | None
    resolution: ConflictResolutionPublic | None = None


class MergePublic(WireModel):
    """What a merge did (``outcome``: up-to-date, fast-forward, merged, or dry-run)."""

    dataset: str
    source: str
    target: str
    outcome: str
    source_snapshot: str
    target_before: str
    base: str | None
    snapshot_id: str | None
    added: int = 0
    changed: int = 0
    removed: int = 0
    conflicts: list[ConflictPublic] = Field(default_factory=list)
    resolved: int = 0
    gate: GateStatusPublic | None = None
    attempts: int = 1


class MergeConflictsPublic(WireModel):
    """Every conflict merging ``source`` into ``target`` would meet now."""

    dataset: str
    source: str
    target: str
    base: str | None
    conflicts: list[ConflictPublic]


# --- audit, query, lineage, verification -----------------------------------------------------------------


class AuditEventPublic(WireModel):
    """One event of the hash-chained audit log."""

    seq: int
    event_id: str
    time: str
    actor: str
    actor_kind: str
    action: str
    object_type: str
    object_id: str
    dataset: str | None
    snapshot: str | None
    details: dict[str, Any]
    client: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEventsPublic(ListPublic):
    data: list[AuditEventPublic]
    count: int


class AuditCheckpointPublic(WireModel):
    """A (sequence, hash, time) of the audit chain, for an auditor to keep outside the registry."""

    format: str
    """``registry-audit-checkpoint/1``."""
    seq: int
    hash: str
    time: str
    home: str


class AuditVerifyPublic(WireModel):
    """What the audit chain's verification checked, and the first problem if any (``ok``)."""

    ok: bool
    events: int = 0
    segments: int = 0
    head_seq: int = 0
    head_hash: str = ""
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoint: AuditCheckpointPublic | None = None


class VerifyReportPublic(WireModel):
    """What the store's verification checked, and every mismatch found (``ok``)."""

    datasets: int = 0
    snapshots: int = 0
    objects: int = 0
    bytes: int = 0
    problems: list[str] = Field(default_factory=list)
    bad_objects: dict[str, list[str]] = Field(default_factory=dict)
    ok: bool


class QueryResultPublic(WireModel):
    """A read-only query's answer: its column names and its rows as JSON objects."""

    columns: list[str]
    rows: list[dict[str, Any]]


class LineageNodePublic(WireModel):
    """One vertex of the lineage graph (``namespace`` ``""`` for this registry's snapshots) and its distance."""

    kind: str
    name: str
    version: str
    namespace: str
    key: str
    distance: int


class LineageEdgePublic(WireModel):
    """One edge (``src`` and ``dst`` are node keys)."""

    kind: str
    src: str
    dst: str
    run_id: str | None
    created_at: str


class LineageGraphPublic(WireModel):
    """The lineage graph within ``depth`` steps of the snapshot ``root``."""

    root: str
    direction: str
    depth: int
    nodes: list[LineageNodePublic]
    edges: list[LineageEdgePublic]


class LineageIngestPublic(WireModel):
    """What one OpenLineage RunEvent added to the graph, and the inputs it could not place."""

    job: str
    run_id: str
    event_type: str | None
    consumed: list[str] = Field(default_factory=list)
    produced: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    new_edges: int = 0
    other_namespaces: list[str] = Field(default_factory=list)


class HookSyncPublic(WireModel):
    """A Label Studio webhook's answer: the sync of ``dataset`` was ``started`` or ``queued``."""

    dataset: str
    sync: str
