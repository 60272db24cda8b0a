"""Lineage settings (``REGISTRY_LINEAGE_*``) and where events go when OpenLineage is not configured.

OpenLineage's own configuration (``openlineage.yml``, ``OPENLINEAGE__...``, ``OPENLINEAGE_URL``,
``OPENLINEAGE_DISABLED``) picks the transport; these settings cover what is the registry's to
decide: its namespace, when to deliver, how often to retry. :func:`openlineage_configured` checks
the same places the client reads, without importing it, so operations that do not deliver never
pay for that import.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_SCHEMA_BASE_URL", "Delivery", "LineageSettings", "default_namespace", "home_events_file",
           "lineage_settings", "openlineage_configured", "openlineage_disabled"]

Delivery = Literal["auto", "inline", "background", "manual"]

DEFAULT_SCHEMA_BASE_URL = "https://dataset-ledger.invalid"
"""Base of the custom facet's ``_schemaURL`` until a deployment names its API's public URL."""


class LineageSettings(BaseSettings):
    """Configuration read from the environment (prefix ``REGISTRY_LINEAGE_``)."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_LINEAGE_", extra="ignore")

    namespace: str | None = None
    """Namespace of registry datasets in events; default ``registry://<host>/<home folder name>``."""
    job_namespace: str = "registry"
    """Namespace of the registry's own jobs (``commit/<dataset>``, ``qa/<dataset>``, ``read/<dataset>``)."""
    delivery: Delivery = "auto"
    """``auto``: inline to the home's events file, in a background process to a configured transport;
    ``inline``: always before the operation returns; ``background``: always in a detached
    ``registry lineage flush``; ``manual``: only on ``registry lineage flush``."""
    max_attempts: int = 10
    """Automatic delivery attempts before an event is parked as failed (``flush --retry-failed``)."""
    backoff_seconds: float = 1.0
    """First retry delay; it doubles with every failed attempt up to ``backoff_max_seconds``."""
    backoff_max_seconds: float = 600.0
    background_seconds: float = 60.0
    """How long a background deliverer keeps retrying an unreachable backend before it exits."""
    lease_seconds: float = 120.0
    """A deliverer's lease lasts this long unless renewed (it is renewed while sending), so the
    lease of a deliverer that died frees itself after at most this long."""
    schema_base_url: str = DEFAULT_SCHEMA_BASE_URL
    """Public URL of the registry API, which serves the custom facet's JSON Schema."""
    metrics_max_rows: int = 1_000_000
    """Distinct counts per column are computed for commits of at most this many rows (0: never)."""


def lineage_settings() -> LineageSettings:
    """The current settings; re-read only when a ``REGISTRY_LINEAGE_*`` variable changed (commits ask several times)."""
    return _settings(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("REGISTRY_LINEAGE_"))))


@lru_cache(maxsize=8)
def _settings(_environment: tuple[tuple[str, str], ...]) -> LineageSettings:
    return LineageSettings()


def default_namespace(home: Path) -> str:
    """``registry://<host>/<home folder name>``."""
    return f"registry://{socket.gethostname()}/{home.name}"


def home_events_file(home: Path) -> Path:
    """The JSON-lines file events go to when OpenLineage is not configured."""
    return home / "lineage" / "events.jsonl"


def openlineage_disabled() -> bool:
    """``OPENLINEAGE_DISABLED=true``: the client sends nothing, so the registry queues nothing."""
    return os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true"


def openlineage_configured() -> bool:
    """Whether the user configured an OpenLineage transport, in any place the client looks."""
    if os.environ.get("OPENLINEAGE_URL") or any(k.startswith("OPENLINEAGE__") for k in os.environ):
        return True
    candidates = [os.environ.get("OPENLINEAGE_CONFIG"), os.path.join(os.getcwd(), "openlineage.yml"),
                  os.path.join(os.path.expanduser("~/.openlineage"), "openlineage.yml")]
    return any(path and os.path.isfile(path) for path in candidates)
