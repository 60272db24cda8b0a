"""Lineage settings (``ctx.settings.lineage``, flat names ``REGISTRY_LINEAGE_*``) and where events go when
OpenLineage is not configured.

OpenLineage's own configuration (``openlineage.yml``, ``OPENLINEAGE__...``, ``OPENLINEAGE_URL``,
``OPENLINEAGE_DISABLED``) picks the transport; the registry's settings cover what is the registry's to
decide: its namespace, when to deliver, how often to retry. They are part of
:class:`registry.config.Settings`, resolved once when the context opens;
:meth:`~registry.config.OpenLineageSettings.configured` checks the same places the client reads,
without importing it, so operations that do not deliver never pay for that import.
"""

from __future__ import annotations

import socket
from pathlib import Path

from registry.config import DEFAULT_SCHEMA_BASE_URL, Delivery, LineageSettings, OpenLineageSettings

__all__ = ["DEFAULT_SCHEMA_BASE_URL", "Delivery", "LineageSettings", "OpenLineageSettings", "default_namespace",
           "home_events_file"]


def default_namespace(home: Path) -> str:
    """``registry://<host>/<home folder name>``."""
    return f"registry://{socket.gethostname()}/{home.name}"


def home_events_file(home: Path) -> Path:
    """The JSON-lines file events go to when OpenLineage is not configured."""
    return home / "lineage" / "events.jsonl"
