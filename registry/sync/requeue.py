"""``registry requeue``: send the samples a model gets wrong back to Label Studio with the model's
prediction attached, so annotators correct instead of starting over.

Samples whose task already exists in the project (a dataset synced from it keeps ``task_id``) get a
new prediction and ``meta.registry_requeue`` (the relabeling mark annotators filter on); the others
become new tasks, with their prediction, through the project's import API. Audited
(``labeling.requeue``) with a lineage run from the snapshot to the project.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from registry.audit import log as audit_log
from registry.context import Context
from registry.db import transaction
from registry.errors import Hint, InvalidInput
from registry.lineage.emit import enqueue_export_run
from registry.lineage.events import DatasetRef
from registry.provenance.importers.ls_results import read_config
from registry.query import run_query
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.sync.client import LabelStudioClient, server_namespace
from registry.sync.service import project_dataset_name
from registry.sync.state import sync_row

__all__ = ["MAX_REQUEUE", "RequeueResult", "requeue"]

MAX_REQUEUE = 10_000
"""Most samples one requeue sends (``--limit`` defaults to it)."""


@dataclass
class RequeueResult:
    """What a requeue sent (or, in a dry run, would send)."""

    dataset: str
    snapshot_id: str
    server: str
    project: int
    dry_run: bool
    matched: int
    created: list[int] = field(default_factory=list)
    """Ids of the tasks made (empty in a dry run)."""
    predicted: list[int] = field(default_factory=list)
    """Ids of existing tasks that got a prediction and the relabel mark."""
    tasks: list[dict[str, Any]] = field(default_factory=list)
    """What is sent: per sample its key, existing task id (or None) and prediction."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _control(config: str) -> tuple[str, str, str]:
    """The first control tag of the labeling config: (name, toName, result type)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.xml"
        path.write_text(config)
        parsed = read_config(path)
    assert parsed is not None
    for name, kind in parsed.controls.items():
        return name, parsed.targets[name], kind
    raise InvalidInput("the project's labeling config has no control tag (e.g. <Choices name=... toName=...>)")


def _result(value: Any, control: tuple[str, str, str]) -> list[dict[str, Any]]:
    """A prediction's ``result``: a Label Studio result list as given, else a label in the first control."""
    if isinstance(value, str) and value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    name, to_name, kind = control
    return [{"from_name": name, "to_name": to_name, "type": kind, "value": {kind: [str(value)]}}]


def _data(row: dict[str, Any]) -> dict[str, Any]:
    """A new task's data: the row's ``data`` column (a synced dataset's task data) or its plain columns."""
    if isinstance(row.get("data"), str):
        try:
            data = json.loads(row["data"])
            if isinstance(data, dict):
                return data
        except ValueError:
            pass
    return {k: v for k, v in row.items() if isinstance(v, str | int | float | bool) or v is None}


def _select(ctx: Context, ref: Ref, where: str, limit: int, columns: list[str | None]) -> pa.Table:
    if ";" in where:
        raise InvalidInput("the filter is one SQL predicate over the snapshot's rows; ';' is not allowed",
                           hint=Hint("option", "where"))
    table = run_query(ctx, f"SELECT * FROM data WHERE ({where}) LIMIT {int(limit)}", dataset_ref=str(ref))
    for column in columns:
        if column is not None and column not in table.column_names:
            raise InvalidInput(f"{ref} has no column {column!r} (columns: {', '.join(table.column_names)})")
    return table


def requeue(ctx: Context, ref: Ref | str, *, url: str, project: int, token: str | None, where: str,
            prediction_column: str | None = None, score_column: str | None = None, model_version: str | None = None,
            limit: int = MAX_REQUEUE, dry_run: bool = False, actor: str | None = None) -> RequeueResult:
    """Send the rows of ``ref`` matching ``where`` to Label Studio project ``project`` for relabeling.

    Raises:
        InvalidInput: a bad predicate, limit or column; no token; a config without a control tag.
        NotFound: ``ref`` names no snapshot.
        UpstreamError: Label Studio is unreachable or refused a call (tasks already sent stay sent;
            the audit event is written only for a complete requeue).
    """
    if not 1 <= limit <= MAX_REQUEUE:
        raise InvalidInput(f"the limit must be between 1 and {MAX_REQUEUE}", hint=Hint("option", "limit"))
    ref = Ref.coerce(ref)
    with LabelStudioClient(url, token) as client:
        with transaction(ctx.engine, readonly=True) as session:
            dataset, snapshot = resolve_ref(session, ref)
            synced = sync_row(session, dataset.name)
        same_project = synced is not None and (synced.server_url, synced.project_id) == (client.url, project)
        table = _select(ctx, ref, where, limit, [prediction_column, score_column])
        control = _control(str(client.project(project).get("label_config") or "")) if prediction_column else None
        result = RequeueResult(dataset.name, snapshot.id, client.url, project, dry_run, table.num_rows)
        new_tasks: list[dict[str, Any]] = []
        for row in table.to_pylist():
            prediction = None
            if prediction_column is not None and row.get(prediction_column) is not None:
                assert control is not None
                prediction = {"result": _result(row[prediction_column], control), "model_version": model_version,
                              "score": float(row[score_column]) if score_column and row.get(score_column) is not None
                              else None}
            task_id = int(row["task_id"]) if same_project and row.get("task_id") is not None else None
            result.tasks.append({"key": row[table.column_names[0]], "task_id": task_id, "prediction": prediction})
            if dry_run:
                continue
            if task_id is not None:
                if prediction is not None:
                    client.call("POST", "/api/predictions/", body={"task": task_id, **prediction})
                client.call("PATCH", f"/api/tasks/{task_id}/", body={"meta": {"registry_requeue": {
                    "snapshot": snapshot.id, "model_version": model_version}}})
                result.predicted.append(task_id)
            else:
                new_tasks.append({"data": _data(row), "predictions": [prediction] if prediction else []})
        if new_tasks:
            answer = client.call("POST", f"/api/projects/{project}/import", params={"return_task_ids": "true"},
                                 body=new_tasks)
            result.created = [int(t) for t in (answer or {}).get("task_ids") or []]
    if not dry_run:
        _record(ctx, result, where)
    return result


def _record(ctx: Context, result: RequeueResult, where: str) -> None:
    output = DatasetRef(server_namespace(result.server), project_dataset_name(result.project))
    with transaction(ctx.engine) as session:
        _dataset, snapshot = resolve_ref(session, Ref(result.dataset, result.snapshot_id))
        run = enqueue_export_run(session, ctx, snapshot, output, "requeue")
        audit_log.record(session, ctx, "labeling.requeue", "dataset", result.dataset, dataset=result.dataset,
                         snapshot=result.snapshot_id, details={
                             "server": result.server, "project": result.project, "where": where,
                             "matched": result.matched, "created": len(result.created),
                             "predicted": len(result.predicted), **run.to_dict()})
