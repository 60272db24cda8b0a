"""Accepting OpenLineage RunEvents from other systems (Airflow, Spark, dbt, training code).

When an incoming event lists, as an input, a dataset in this registry's namespace with a
``version`` facet naming one of its snapshots, the run is recorded as a consumer of that snapshot
(``consume`` edge), and the run's outputs as what it produced (``produce`` edges). A pipeline that
already emits OpenLineage then shows up downstream of the snapshots it read without code changes.
The HTTP API exposes :func:`ingest_run_event`; ``registry lineage ingest FILE`` reads files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import Session

from registry import catalog
from registry.audit import log as audit
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput, RegistryError
from registry.lineage.emit import registry_namespace
from registry.lineage.events import JobRef, check_run_id
from registry.lineage.graph import Node, record_edge

__all__ = ["IngestResult", "ingest_run_event", "ingest_text", "parse_events"]


@dataclass(frozen=True)
class IngestResult:
    """What one incoming event added to the graph, and the inputs it could not place."""

    job: str
    run_id: str
    event_type: str | None
    consumed: list[str] = field(default_factory=list)
    """``DATASET@SNAPSHOT_ID`` of each registry snapshot the run read (edges new or already known)."""
    produced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Datasets in our namespace that name no snapshot, with the reason."""
    new_edges: int = 0
    other_namespaces: list[str] = field(default_factory=list)
    """Inputs in another namespace, as ``NAMESPACE/NAME``: not this registry's, so no edge (is the
    producer configured with another registry's namespace?)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"run event: {where} must be a non-empty string")
    return value


def _datasets(event: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = event.get(key) or []
    if not isinstance(value, list) or not all(isinstance(d, dict) for d in value):
        raise InvalidInput(f"run event: {key} must be a list of datasets")
    for i, dataset in enumerate(value):
        _text(dataset.get("namespace"), f"{key}[{i}].namespace")
        _text(dataset.get("name"), f"{key}[{i}].name")
    return value


def _version(dataset: dict[str, Any]) -> str | None:
    facets = dataset.get("facets")
    version = facets.get("version") if isinstance(facets, dict) else None
    value = version.get("datasetVersion") if isinstance(version, dict) else None
    return value if isinstance(value, str) and value else None


def ingest_run_event(ctx: Context, event: Any) -> IngestResult:
    """Record the consumer and produced edges an incoming RunEvent implies; audited as ``lineage.ingest``.

    Validation is minimal: an object with ``eventTime``, ``run.runId`` (a UUID), ``job.namespace``
    and ``job.name``, and ``inputs``/``outputs`` lists of datasets with namespace and name.

    Raises:
        InvalidInput: the event is malformed (the message names the field).
    """
    if not isinstance(event, dict):
        raise InvalidInput("run event: expected a JSON object")
    _text(event.get("eventTime"), "eventTime")
    run = event.get("run")
    job_part = event.get("job")
    if not isinstance(run, dict) or not isinstance(job_part, dict):
        raise InvalidInput("run event: needs run and job objects (is this a DatasetEvent or JobEvent?)")
    run_id = check_run_id(_text(run.get("runId"), "run.runId"), "run.runId")
    job = JobRef(_text(job_part.get("namespace"), "job.namespace"), _text(job_part.get("name"), "job.name"))
    inputs, outputs = _datasets(event, "inputs"), _datasets(event, "outputs")
    event_type = event.get("eventType") if isinstance(event.get("eventType"), str) else None
    ours = registry_namespace(ctx)
    run_node = Node("run", job.name, run_id, job.namespace)
    consumed: list[str] = []
    produced: list[str] = []
    skipped: list[str] = []
    others = [f"{d['namespace']}/{d['name']}" for d in inputs if d["namespace"] != ours]
    new_edges = 0
    with transaction(ctx.engine) as session:
        for dataset in inputs:
            if dataset["namespace"] != ours:
                continue
            snapshot_id, reason = _snapshot(session, dataset["name"], _version(dataset))
            if snapshot_id is None:
                skipped.append(reason)
                continue
            consumed.append(f"{dataset['name']}@{snapshot_id}")
            new_edges += record_edge(session, "consume", Node("snapshot", dataset["name"], snapshot_id), run_node,
                                     run_id)
        for dataset in outputs if consumed else []:
            node = Node("dataset", dataset["name"], "", dataset["namespace"])
            if dataset["namespace"] == ours:
                snapshot_id, reason = _snapshot(session, dataset["name"], _version(dataset))
                if snapshot_id is None:
                    skipped.append(reason)
                    continue
                node = Node("snapshot", dataset["name"], snapshot_id)
            produced.append(node.key)
            new_edges += record_edge(session, "produce", run_node, node, run_id)
        result = IngestResult(str(job), run_id, event_type, consumed, produced, skipped, new_edges, others)
        if new_edges:
            audit.record(session, ctx, "lineage.ingest", "run", run_id, details=result.to_dict())
    return result


def _snapshot(session: Session, name: str, version: str | None) -> tuple[str | None, str]:
    """The full id of the snapshot ``name@version``, or None and why it cannot be placed."""
    if version is None:
        return None, f"{name}: no version facet naming a snapshot"
    try:
        return catalog.resolve(session, catalog.get_dataset(session, name), version).id, ""
    except RegistryError as exc:
        return None, f"{name}@{version}: {exc.message}"


def parse_events(text: str) -> list[Any]:
    """Events from JSON (one object or a list) or JSON lines.

    Raises:
        InvalidInput: neither parses (the message names the line).
    """
    try:
        value = json.loads(text)
        return value if isinstance(value, list) else [value]
    except json.JSONDecodeError:
        pass
    except RecursionError as exc:
        raise InvalidInput("the events nest too deeply to be OpenLineage events") from exc
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"line {number}: not JSON ({exc.msg}); give a JSON event, a list or JSON lines") \
                    from exc
            except RecursionError as exc:
                raise InvalidInput(f"line {number}: nests too deeply to be an OpenLineage event") from exc
    return events


def ingest_text(ctx: Context, text: str) -> list[IngestResult]:
    """Ingest every event of a JSON or JSON-lines document, each in its own transaction.

    Raises:
        InvalidInput: the document or an event is malformed (events before it are kept).
    """
    return [ingest_run_event(ctx, event) for event in parse_events(text)]
