"""Sending stored events with the real OpenLineage client.

The client resolves its transport the OpenLineage way (``OPENLINEAGE_DISABLED``, ``openlineage.yml``
at ``OPENLINEAGE_CONFIG``, the working directory or ``~/.openlineage``, ``OPENLINEAGE__...``
variables, ``OPENLINEAGE_URL``). With none of them set, the registry hands the client a file
transport that appends JSON lines to ``<home>/lineage/events.jsonl``, so the embedded default keeps
a lineage record. The client is imported here only, on first delivery.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

from registry.lineage.settings import home_events_file, openlineage_configured

__all__ = ["Sender", "describe_sink", "to_client_event"]


def describe_sink(home: Path) -> str:
    """Where events go, for ``registry lineage status``."""
    if openlineage_configured():
        return "the configured OpenLineage transport"
    return f"file {home_events_file(home)}"


def to_client_event(payload: dict[str, Any]) -> Any:
    """The client's ``RunEvent`` for a stored event dict (facets stay plain dicts, which it serialises as is)."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

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


class Sender:
    """One OpenLineage client for a delivery pass.

    Raises (on creation): whatever the client raises for a broken configuration; the deliverer
    records it as the events' last error.
    """

    def __init__(self, home: Path) -> None:
        from openlineage.client import OpenLineageClient

        if openlineage_configured():
            self.client = OpenLineageClient()
        else:
            path = home_events_file(home)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.client = OpenLineageClient(
                config={"transport": {"type": "file", "log_file_path": str(path), "append": True}})

    def send(self, payload: dict[str, Any]) -> None:
        """Emit one event; raises if the transport fails (the client's transports raise on errors)."""
        self.client.emit(to_client_event(payload))

    def close(self) -> None:
        with suppress(Exception):  # closing is best effort
            self.client.close(timeout=5.0)
