"""Sending stored events with the real OpenLineage client.

The client resolves its transport the OpenLineage way (``OPENLINEAGE_DISABLED``, ``openlineage.yml``
at ``OPENLINEAGE_CONFIG``, the working directory or ``~/.openlineage``, ``OPENLINEAGE__...``
variables, ``OPENLINEAGE_URL``). With none of them set, events are appended as JSON lines to
``<home>/lineage/events.jsonl``, exactly as the client's file transport writes them, so the embedded
default keeps a lineage record without paying for the client's import. The client is imported
here only, on first delivery to a configured transport.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

from registry.lineage.settings import LineageSettings, home_events_file

__all__ = ["FileSender", "Sender", "describe_sink", "file_line", "open_sender", "to_client_event"]


def describe_sink(home: Path, settings: LineageSettings) -> str:
    """Where events go, for ``registry lineage status``."""
    if settings.openlineage.configured():
        return "the configured OpenLineage transport"
    return f"file {home_events_file(home)}"


def to_client_event(payload: dict[str, Any]) -> Any:
    """The client's ``RunEvent`` for a stored event dict (facets stay plain dicts, which it serialises as is)."""
    from openlineage.client.event_v2 import (  # lazy: openlineage loads only when events go to a transport
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )

    def facets(value: Any) -> dict[str, Any]:
        return dict(value or {})

    return RunEvent(
        eventType=RunState(payload["eventType"]), eventTime=payload["eventTime"], producer=payload["producer"],
        run=Run(runId=payload["run"]["runId"], facets=facets(payload["run"].get("facets"))),
        job=Job(namespace=payload["job"]["namespace"], name=payload["job"]["name"],
                facets=facets(payload["job"].get("facets"))),
        inputs=[InputDataset(namespace=d["namespace"], name=d["name"], facets=facets(d.get("facets")),
                             inputFacets=facets(d.get("inputFacets"))) for d in payload.get("inputs") or []],
        outputs=[OutputDataset(namespace=d["namespace"], name=d["name"], facets=facets(d.get("facets")),
                               outputFacets=facets(d.get("outputFacets"))) for d in payload.get("outputs") or []],
    )


BASE_EVENT_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/BaseEvent"
"""The ``schemaURL`` the client gives a ``RunEvent`` (a test holds :func:`file_line` equal to the client's output)."""


def _without_nulls(value: Any) -> Any:
    """What the client's serialiser drops: ``None`` values in objects, ``None`` and ``{}`` items in lists."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None and v != {}]
    return value


def file_line(payload: dict[str, Any]) -> str:
    """The JSON line the client's file transport writes for a stored event, without importing the client."""
    def dataset(d: dict[str, Any], kind: str) -> dict[str, Any]:
        return {"namespace": d["namespace"], "name": d["name"], "facets": dict(d.get("facets") or {}),
                kind: dict(d.get(kind) or {})}

    event = {
        "eventTime": payload["eventTime"], "producer": payload["producer"],
        "schemaURL": payload.get("schemaURL") or BASE_EVENT_SCHEMA_URL,
        "run": {"runId": payload["run"]["runId"], "facets": dict(payload["run"].get("facets") or {})},
        "job": {"namespace": payload["job"]["namespace"], "name": payload["job"]["name"],
                "facets": dict(payload["job"].get("facets") or {})},
        "eventType": payload["eventType"],
        "inputs": [dataset(d, "inputFacets") for d in payload.get("inputs") or []],
        "outputs": [dataset(d, "outputFacets") for d in payload.get("outputs") or []],
    }
    return json.dumps(_without_nulls(event), sort_keys=True)


class FileSender:
    """The default sink: JSON lines appended to ``<home>/lineage/events.jsonl``, byte for byte what the
    client's file transport writes, without importing the client (about half a second of every CLI
    command that delivers)."""

    def __init__(self, home: Path) -> None:
        self.path = home_events_file(home)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, payload: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(file_line(payload) + "\n")

    def close(self) -> None:
        """Nothing to close: every event is appended and the file closed at once."""


class Sender:
    """One OpenLineage client for a delivery pass over a configured transport.

    Raises (on creation): whatever the client raises for a broken configuration; the deliverer
    records it as the events' last error.
    """

    def __init__(self) -> None:
        from openlineage.client import OpenLineageClient  # lazy: openlineage loads only when events go to a transport

        self.client = OpenLineageClient()

    def send(self, payload: dict[str, Any]) -> None:
        """Emit one event; raises if the transport fails (the client's transports raise on errors)."""
        self.client.emit(to_client_event(payload))

    def close(self) -> None:
        with suppress(Exception):  # closing is best effort
            self.client.close(timeout=5.0)


def open_sender(home: Path, settings: LineageSettings) -> Sender | FileSender:
    """The configured OpenLineage transport through the client, else the home's JSON-lines file."""
    return Sender() if settings.openlineage.configured() else FileSender(home)
