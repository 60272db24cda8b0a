"""OpenLineage RunEvents and facets as plain JSON-ready dicts.

Events are built here without importing the OpenLineage client (a few hundred milliseconds of
import that every commit would pay); the client sends them later from the outbox. Each facet names
the schema version the ``openlineage-python`` 1.5x client itself emits, and tests validate every
event and facet against the official JSON Schemas.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from registry.distribution import DISTRIBUTION, VERSION
from registry.errors import InvalidInput

__all__ = ["CUSTOM_FACET", "CUSTOM_FACET_SCHEMA_PATH", "PRODUCER", "RUN_EVENT_SCHEMA", "DatasetRef", "JobRef",
           "ParentRef", "check_run_id", "custom_facet", "custom_facet_schema", "dataset_dict", "error_facet", "facet",
           "new_run_id", "run_event"]

PRODUCER = f"https://pypi.org/project/{DISTRIBUTION}/{VERSION}"
RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACETS = "https://openlineage.io/spec/facets"
CUSTOM_FACET = "datasetRegistry_commit"
"""Key of the registry's own output dataset facet (change and provenance summary)."""
CUSTOM_FACET_SCHEMA_PATH = "/schemas/openlineage/RegistryChangeSummaryFacet/1-0-0.json"
"""Where the HTTP API serves ``registry/lineage/schemas/RegistryChangeSummaryFacet.json``."""

# facet key -> (schema version, schema name), as the openlineage-python 1.5x client emits them
_SCHEMAS: dict[str, tuple[str, str]] = {
    "version": ("1-0-1", "DatasetVersionDatasetFacet"),
    "schema": ("1-2-0", "SchemaDatasetFacet"),
    "dataSource": ("1-0-1", "DatasourceDatasetFacet"),
    "lifecycleStateChange": ("1-0-1", "LifecycleStateChangeDatasetFacet"),
    "dataQualityMetrics": ("1-0-1", "DataQualityMetricsDatasetFacet"),
    "inputDataQualityMetrics": ("1-0-3", "DataQualityMetricsInputDatasetFacet"),
    "dataQualityAssertions": ("1-1-0", "DataQualityAssertionsDatasetFacet"),
    "ownership": ("1-0-1", "OwnershipDatasetFacet"),
    "documentation": ("1-1-0", "DocumentationDatasetFacet"),
    "parent": ("1-2-0", "ParentRunFacet"),
    "errorMessage": ("1-0-1", "ErrorMessageRunFacet"),
}


def new_run_id() -> str:
    """A UUIDv7 (time-ordered, as OpenLineage recommends for run ids)."""
    value = (int(time.time() * 1000) & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def check_run_id(text: str, what: str = "run id") -> str:
    """``text`` as a canonical UUID string.

    Raises:
        InvalidInput: it is not a UUID.
    """
    try:
        return str(uuid.UUID(text))
    except (ValueError, AttributeError, TypeError) as exc:
        raise InvalidInput(f"{what} {text!r} is not a UUID (OpenLineage run ids are UUIDs)") from exc


@dataclass(frozen=True)
class JobRef:
    """An OpenLineage job: namespace and name."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> JobRef:
        """``NAMESPACE/NAME`` (the name may hold more slashes).

        Raises:
            InvalidInput: no slash, or an empty part.
        """
        namespace, _, name = text.partition("/")
        if not namespace.strip() or not name.strip():
            raise InvalidInput(f"job {text!r}: write NAMESPACE/NAME, e.g. airflow/train_resnet")
        return cls(namespace.strip(), name.strip())

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ParentRef:
    """The run an operation's run belongs to (the OpenLineage ``parent`` run facet)."""

    job: JobRef
    run_id: str

    @classmethod
    def parse(cls, text: str) -> ParentRef:
        """``NAMESPACE/NAME/RUN_ID``, the form of ``OPENLINEAGE_PARENT_ID``.

        Raises:
            InvalidInput: malformed (no job, or the run id is not a UUID).
        """
        head, sep, tail = text.rpartition("/")
        if not sep:
            raise InvalidInput(f"parent run {text!r}: write NAMESPACE/NAME/RUN_ID (e.g. airflow/nightly/<uuid>)")
        return cls(JobRef.parse(head), check_run_id(tail, "parent run id"))

    def facet(self) -> dict[str, Any]:
        return facet("parent", run={"runId": self.run_id},
                     job={"namespace": self.job.namespace, "name": self.job.name})


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as an event names it, with its facets."""

    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)
    input_facets: dict[str, Any] = field(default_factory=dict)


def facet(key: str, **fields: Any) -> dict[str, Any]:
    """A standard facet ``key`` with ``_producer``, ``_schemaURL`` and the non-None ``fields``."""
    version, name = _SCHEMAS[key]
    return {"_producer": PRODUCER, "_schemaURL": f"{_FACETS}/{version}/{name}.json#/$defs/{name}",
            **{k: v for k, v in fields.items() if v is not None}}


def custom_facet(base_url: str, **fields: Any) -> dict[str, Any]:
    """The registry's change-and-provenance facet, pointing at the JSON Schema the package ships."""
    url = f"{base_url.rstrip('/')}{CUSTOM_FACET_SCHEMA_PATH}#/$defs/RegistryChangeSummaryFacet"
    return {"_producer": PRODUCER, "_schemaURL": url, **fields}


def custom_facet_schema(base_url: str) -> dict[str, Any]:
    """The custom facet's JSON Schema as shipped in the package, its ``$id`` at ``base_url``
    (what the HTTP API serves at :data:`CUSTOM_FACET_SCHEMA_PATH`)."""
    schema: dict[str, Any] = json.loads(
        files("registry.lineage").joinpath("schemas/RegistryChangeSummaryFacet.json").read_text(encoding="utf-8"))
    schema["$id"] = f"{base_url.rstrip('/')}{CUSTOM_FACET_SCHEMA_PATH}"
    return schema


def dataset_dict(ref: DatasetRef, role: str) -> dict[str, Any]:
    """An input (``role="input"``) or output dataset of a RunEvent."""
    data: dict[str, Any] = {"namespace": ref.namespace, "name": ref.name, "facets": dict(ref.facets)}
    if role == "input" and ref.input_facets:
        data["inputFacets"] = dict(ref.input_facets)
    return data


def run_event(event_type: str, event_time: str, run_id: str, job: JobRef, *, inputs: list[DatasetRef] | None = None,
              outputs: list[DatasetRef] | None = None, run_facets: dict[str, Any] | None = None) -> dict[str, Any]:
    """One RunEvent as the OpenLineage spec (2-0-2) shapes it."""
    return {
        "eventType": event_type,
        "eventTime": event_time,
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": {"runId": run_id, "facets": dict(run_facets or {})},
        "job": {"namespace": job.namespace, "name": job.name, "facets": {}},
        "inputs": [dataset_dict(d, "input") for d in inputs or []],
        "outputs": [dataset_dict(d, "output") for d in outputs or []],
    }


def error_facet(exc: BaseException) -> dict[str, Any]:
    """``errorMessage`` run facet of a failed operation (message and exception type, no stack)."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return facet("errorMessage", message=f"{type(exc).__name__}: {message}", programmingLanguage="PYTHON")
