"""``registry sync label-studio``: read what changed in a Label Studio project through its REST API
and commit it as one snapshot (action ``snapshot.sync``), or nothing when nothing changed.

What is fetched: in full (data, annotations, predictions) only the tasks whose ``updated_at`` is
newer than the saved resume point (Label Studio moves it on every annotation or prediction change),
plus the project (labeling config, task count) and users; the task ids are listed only when the
count says a task was deleted. Those tasks go through the JSON importer
(:func:`~registry.provenance.importers.read_label_studio`); their rows are upserted, rows of deleted
tasks removed, and the records of touched samples replaced, so a removed annotation becomes a
tombstone. Everything is read before the commit: a failure on the way commits nothing and leaves the
resume point where it was. See ``docs/labeling-loop.md``.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.errors import NotFound
from registry.lineage.emit import LineageRun
from registry.provenance.identity import Person, apply_users, person_of
from registry.provenance.importers import ImportBatch, read_label_studio
from registry.provenance.records import empty_records
from registry.provenance.service import ensure_dataset
from registry.provenance.store import records_at
from registry.quality.evaluate import qa_run
from registry.refs import Ref
from registry.snapshots.commit import AnnotationInput, CommitResult, commit
from registry.sync.client import API_TASK_FIELDS, LabelStudioClient, server_namespace
from registry.sync.lease import hold_lease
from registry.sync.state import SyncState, load_state, save_state

__all__ = ["SyncResult", "project_dataset_name", "sync_label_studio"]

Progress = Callable[[str], None]


def project_dataset_name(project: int) -> str:
    """The OpenLineage dataset name of a Label Studio project within its server's namespace."""
    return f"projects/{project}"


@dataclass
class SyncResult:
    """What one sync read and committed."""

    dataset: str
    server: str
    project: int
    commit: CommitResult | None
    tasks: int
    tasks_changed: int
    tasks_deleted: int
    annotations: int
    predictions: int
    dataset_created: bool = False
    gate: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def snapshot_id(self) -> str | None:
        return self.commit.snapshot_id if self.commit is not None and self.commit.created else None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "commit"}
        data["snapshot"] = self.commit.to_dict() if self.commit is not None else None
        data["snapshot_id"] = self.snapshot_id
        return data

    def line(self) -> str:
        """One line for a person: what changed and the snapshot it made (or that nothing changed)."""
        head = f"{self.dataset} <- project {self.project} at {self.server}"
        if self.snapshot_id is None:
            return f"{head}: no change ({self.tasks} tasks)"
        gate = f", gate {self.gate['status']}" if self.gate else ""
        return (f"{head}: snapshot {self.snapshot_id[:12]} ({self.tasks_changed} task(s) changed, "
                f"{self.tasks_deleted} deleted, {self.annotations} annotation(s), {self.predictions} "
                f"prediction(s){gate})")


def _earlier(stamp: str) -> str | None:
    """``stamp`` minus one millisecond (the lower bound of a fetch), or None if it does not parse."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment - timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _users(client: LabelStudioClient) -> dict[str, Person]:
    return {str(user["id"]): person_of(user) for user in client.users() if user.get("id") is not None}


def _fetch(client: LabelStudioClient, state: SyncState) -> list[dict[str, Any]]:
    """The tasks changed since the resume point, in full (every field the API gave): filtered on the server
    by ``updated_at`` (all tasks on the first sync), then kept if their ``updated_at`` differs from the one
    committed."""
    since = _earlier(state.last_updated_at) if state.tasks and state.last_updated_at else None
    wanted = []
    for task in client.tasks_since(state.project, since):
        known = state.tasks.get(int(task["id"]))
        if known is None or known[1] != str(task.get("updated_at")):
            wanted.append(task)
    return wanted


def _deleted(client: LabelStudioClient, state: SyncState, count: Any, tasks: list[dict[str, Any]]) -> set[int]:
    """Tasks of the resume point no longer in the project. The project's task count tells whether any
    went (committed tasks + new ones fetched now = count); only then are all task ids listed."""
    new = sum(1 for t in tasks if int(t["id"]) not in state.tasks)
    if not state.tasks or (isinstance(count, int) and count == len(state.tasks) + new):
        return set()
    listed = client.task_versions(state.project)
    return set(state.tasks) - set(listed)


def _read(tasks: list[dict[str, Any]], state: SyncState, config: str, tool_version: str | None,
          users: dict[str, Person], workdir: Path) -> ImportBatch:
    """The fetched tasks as rows and records, through the JSON importer, which knows the API's task shape
    (:data:`~registry.sync.client.API_TASK_FIELDS`) and keeps any other field raw in the records' ``extra``."""
    export, config_path = workdir / "tasks.json", workdir / "config.xml"
    export.write_text(json.dumps(tasks))
    config_path.write_text(config)
    batch = read_label_studio(export, key=state.key, guideline_version=state.guideline_version,
                              config=config_path if config.strip() else None, batch_id=uuid.uuid4().hex,
                              tool_version=tool_version, task_fields=API_TASK_FIELDS)
    return ImportBatch(batch.rows, apply_users(batch.records, users), batch.key_column, batch.label_column,
                       batch.warnings, "label-studio-api", batch.config_text)


def _parent(ctx: Context, name: str) -> tuple[str | None, pa.Table]:
    """The head of ``name``'s main branch and its full record set."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, name)
        ref = catalog.get_ref(session, dataset, "main")
        if ref is None:
            return None, empty_records()
        return ref.snapshot_id, records_at(ctx, session, catalog.get_snapshot(session, ref.snapshot_id))


def _records(parent: pa.Table, batch: ImportBatch, touched: Iterable[str]) -> pa.Table:
    """The parent's records with those of ``touched`` samples replaced by the batch's."""
    keep = pc.invert(pc.is_in(parent.column("sample_key"), pa.array(list(touched), pa.string())))
    return pa.concat_tables([parent.filter(keep), batch.records.select(parent.column_names)])


def sync_label_studio(ctx: Context, name: str, *, url: str, project: int, token: str | None,
                      key: str | None = None, guideline_version: str | None = None, author: str | None = None,
                      evaluate: bool = False, progress: Progress | None = None) -> SyncResult:
    """Bring dataset ``name`` up to date with Label Studio project ``project`` at ``url``.

    Creates the dataset (keyed by ``key``, default the task id) on the first sync. ``evaluate``
    runs the dataset's QA gate on the new snapshot and reports the verdict. One sync of a dataset
    runs at a time across processes (the catalog's sync lease, :mod:`registry.sync.lease`).

    Raises:
        InvalidInput: no token; a bad URL; the dataset syncs from another source or key.
        UpstreamError: the server is unreachable, refuses the token or fails (nothing committed).
        RefConflict: another writer moved the dataset during the sync (nothing committed; retry).
        Conflict: another process is syncing ``name`` now (nothing done).
    """
    with hold_lease(ctx, name):
        return _sync(ctx, name, url=url, project=project, token=token, key=key,
                     guideline_version=guideline_version, author=author, evaluate=evaluate, progress=progress)


def _sync(ctx: Context, name: str, *, url: str, project: int, token: str | None, key: str | None,
          guideline_version: str | None, author: str | None, evaluate: bool, progress: Progress | None) -> SyncResult:
    note = progress or (lambda _msg: None)
    with LabelStudioClient(url, token) as client:
        state = load_state(ctx, name, client.url, project, key)
        if guideline_version is not None:
            state.guideline_version = guideline_version
        note(f"reading project {project} at {client.url}")
        about = client.project(project)
        config = str(about.get("label_config") or "")
        tasks = _fetch(client, state)
        note(f"{len(tasks)} changed task(s) fetched")
        deleted = _deleted(client, state, about.get("task_number"), tasks)
        total = len(state.tasks) + sum(1 for t in tasks if int(t["id"]) not in state.tasks) - len(deleted)
        note(f"{total} task(s): {len(tasks)} changed, {len(deleted)} deleted")
        fetched = {int(t["id"]) for t in tasks}
        users = _users(client) if tasks else {}
        tool_version = client.version() if tasks else None
    result = SyncResult(name, client.url, project, None, total, len(tasks), len(deleted), 0, 0)
    if not tasks and not deleted and state.exists:
        return result
    with tempfile.TemporaryDirectory(prefix="registry-sync-") as workdir:
        batch = _read(tasks, state, config, tool_version, users, Path(workdir))
    result.warnings = batch.warnings
    result.dataset_created = ensure_dataset(ctx, name, batch, author)
    kinds = batch.records.column("source_kind").to_pylist()
    result.annotations, result.predictions = kinds.count("human"), kinds.count("model")
    new_keys = dict(zip(batch.rows.column("task_id").to_pylist(), batch.rows.column(0).to_pylist(), strict=True))
    gone = {state.tasks[t][0] for t in deleted}
    gone |= {state.tasks[t][0] for t in fetched if t in state.tasks and state.tasks[t][0] != new_keys.get(str(t))}
    head, parent_records = _parent(ctx, name)
    if tasks or gone:
        result.commit = _commit(ctx, name, batch, gone, head, parent_records, config, result, author)
    for task_id in deleted:
        state.tasks.pop(task_id, None)
    for task in tasks:
        state.tasks[int(task["id"])] = (new_keys[str(task["id"])], str(task.get("updated_at")))
    stamps = [v[1] for v in state.tasks.values()]
    state.last_updated_at = max(stamps) if stamps else state.last_updated_at
    if result.commit is not None:
        state.last_snapshot_id = result.commit.snapshot_id
    save_state(ctx, name, state, actor=author)
    if evaluate and result.snapshot_id is not None:
        result.gate = _evaluate(ctx, name, result.snapshot_id, author)
    return result


def _commit(ctx: Context, name: str, batch: ImportBatch, gone: set[str], head: str | None, parent_records: pa.Table,
            config: str, result: SyncResult, author: str | None) -> CommitResult:
    touched = set(batch.rows.column(0).to_pylist()) | gone
    records = _records(parent_records, batch, touched)
    key_column = batch.key_column
    deletes = pa.table({key_column: pa.array(sorted(gone), pa.string())}) if gone else None
    config_sha = ctx.store.put_bytes(config.encode()).sha256 if config.strip() else None
    details: dict[str, object] = {
        "server": result.server, "project": result.project, "tasks": result.tasks,
        "tasks_changed": result.tasks_changed, "tasks_deleted": result.tasks_deleted,
        "annotation_count": result.annotations, "predictions": result.predictions,
        "import_batch": batch.records.column("import_batch")[0].as_py() if batch.records.num_rows else None,
        "guideline_version": batch.records.column("guideline_version")[0].as_py() if batch.records.num_rows else None,
        "config_sha256": config_sha, "warnings": batch.warnings}
    source = f"{server_namespace(result.server)}:{project_dataset_name(result.project)}"
    return commit(ctx, name, batch.rows if batch.rows.num_rows else None,
                  message=f"sync label-studio project {result.project}: {result.tasks_changed} task(s) changed, "
                          f"{result.tasks_deleted} deleted",
                  author=author, mode="upsert", delete_keys=deletes, expect_parent=head,
                  lineage=LineageRun(sources=(source,)),
                  annotations=AnnotationInput(records, batch.label_column, replace=True,
                                              audit_action="snapshot.sync", audit_details=details))


def _evaluate(ctx: Context, name: str, snapshot_id: str, author: str | None) -> dict[str, Any]:
    try:
        verdict = qa_run(ctx, Ref(name, snapshot_id), actor=author)
    except NotFound as exc:
        return {"status": "no policy", "detail": str(exc)}
    return {"status": "passed" if verdict.passed else "failed", **verdict.to_dict()}
