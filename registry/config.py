"""Settings from ``REGISTRY_*`` environment variables, and locating the registry home.

The home is the folder that holds the embedded catalog (``catalog.db``), the object store
(``objects/``) and local caches. It is found the way git finds ``.git``: ``--home``, else
``REGISTRY_HOME``, else the nearest ``.registry`` folder walking up from the working directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.errors import Hint, HomeNotFound

__all__ = ["HOME_CONFIG", "HOME_DIRNAME", "RegistryPaths", "Settings", "default_storage_url", "find_home",
           "read_home_config", "write_home_config"]

HOME_DIRNAME = ".registry"


class Settings(BaseSettings):
    """Configuration read from the environment (prefix ``REGISTRY_``)."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    home: Path | None = None
    database_url: str | None = None
    """SQLAlchemy URL of the catalog; default a SQLite file in the home."""
    storage_url: str | None = None
    """Where objects live; default ``file://<home>/objects``."""
    max_layers: int = 8
    """Automatic compaction (``registry compact --auto``, the ``registry serve`` worker) merges the upper
    layers of a branch head that has more layers than this, in size tiers."""
    compact_base_fraction: float = 0.25
    """Automatic compaction rewrites a head's base once the layers above it hold this fraction of its rows
    (0: never), so the bytes it writes follow the change, not the table."""
    compact_interval: float = 60.0
    """Seconds between automatic compaction passes of the ``registry serve`` worker (0: no worker)."""
    actor: str | None = None
    """Who is acting, when ``--author`` is not given."""
    audit_seal_events: int = 10_000
    """Unsealed audit events are sealed into a Parquet segment once this many accumulate (0: only
    on ``registry audit seal``)."""
    api_max_upload_bytes: int = 1 << 30
    """The largest upload (commit or import body) the HTTP API accepts, in bytes as sent (413 above it)."""
    api_max_body_bytes: int = 8 << 20
    """The largest body of any other API request (JSON: lineage events, policies, queries); 413 above it."""
    max_input_rows: int = 100_000_000
    """The most rows one input file or upload may decode to (Parquet footers are checked before reading)."""
    max_input_bytes: int = 32 << 30
    """The most bytes one input file or upload may decode to in memory (a compressed file can expand 1000x)."""
    query_timeout_seconds: float = 60.0
    """A query (``registry query``, ``POST /query``) running longer than this is interrupted (0: no limit)."""
    query_memory_limit: str = "2GB"
    """DuckDB's memory limit for one query (``memory_limit``); past it the query fails, the process lives."""
    query_threads: int = 0
    """DuckDB threads per query (0: DuckDB's default, one per core)."""
    api_max_query_rows: int = 100_000
    """The most rows ``POST /query`` returns; a larger result is refused (422), so add a LIMIT."""
    api_trusted_proxies: str = ""
    """Comma-separated addresses whose ``X-Forwarded-For`` is believed (``registry serve``); empty: none."""
    audit_denied_interval_seconds: float = 60.0
    """After a token's refused request is audited, its further refusals within this many seconds are only
    counted (in the next recorded event's ``suppressed``); 0 records every one."""
    api_shutdown_grace_seconds: float = 10.0
    """On SIGTERM ``registry serve`` waits this long for requests in flight, then cancels them (queries too)."""
    s3_endpoint_url: str | None = None
    """S3-compatible endpoint (MinIO, Ceph, R2); default ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else AWS."""
    s3_region: str | None = None
    """Default ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1."""
    s3_access_key_id: str | None = None
    """Default ``AWS_ACCESS_KEY_ID`` (then the AWS SDK's usual chain: profile, instance role)."""
    s3_secret_access_key: str | None = None
    """Default ``AWS_SECRET_ACCESS_KEY``."""
    lakefs_endpoint: str | None = None
    """lakeFS server URL, e.g. ``http://lakefs:8000``; default ``LAKEFS_ENDPOINT``."""
    lakefs_access_key_id: str | None = None
    """Default ``LAKEFS_ACCESS_KEY_ID``."""
    lakefs_secret_access_key: str | None = None
    """Default ``LAKEFS_SECRET_ACCESS_KEY``."""
    storage_retries: int = 5
    """Attempts per object store call before a remote store counts as down (backoff doubles from 0.2 s)."""


@dataclass(frozen=True)
class RegistryPaths:
    """Where one registry home keeps its parts."""

    home: Path
    database_url: str
    storage_url: str

    @property
    def cache_dir(self) -> Path:
        """Derived, rebuildable data (key indexes); safe to delete."""
        return self.home / "cache"

    @classmethod
    def for_home(cls, home: Path, settings: Settings | None = None) -> RegistryPaths:
        """Resolve the catalog and store locations of ``home`` (environment overrides win)."""
        settings = settings or Settings()
        home = home.resolve()
        database_url = settings.database_url or f"sqlite:///{home / 'catalog.db'}"
        storage_url = settings.storage_url or read_home_config(home).get("storage_url") or default_storage_url(home)
        return cls(home=home, database_url=database_url, storage_url=storage_url)


HOME_CONFIG = "registry.json"
"""The file that marks a folder as a home and keeps what ``registry storage migrate`` switched."""


def default_storage_url(home: Path) -> str:
    """Where a home keeps objects unless configured otherwise: its ``objects`` folder."""
    return (home.resolve() / "objects").as_uri()


def read_home_config(home: Path) -> dict[str, Any]:
    """The home's ``registry.json`` (``{}`` if it is missing or unreadable)."""
    try:
        data = json.loads((home / HOME_CONFIG).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_home_config(home: Path, data: dict[str, Any]) -> None:
    """Replace the home's ``registry.json`` atomically (temporary file, fsync, rename)."""
    target = home / HOME_CONFIG
    temp = target.with_name(f".{HOME_CONFIG}.{os.getpid()}.tmp")
    with open(temp, "w") as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, target)


def find_home(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """Locate an existing registry home (``--home``, ``REGISTRY_HOME``, then walking up).

    Raises:
        HomeNotFound: nothing was given and no ``.registry`` folder is above ``start``.
    """
    given = explicit if explicit is not None else Settings().home
    if given is not None:
        path = Path(given).expanduser()
        if not (path / "registry.json").is_file():
            raise HomeNotFound(f"{path} is not a registry home; initialise one there to create it",
                               hint=Hint("command", "init", str(path)))
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if (candidate / "registry.json").is_file():
            return candidate
    raise HomeNotFound(
        "no registry home found here or in any parent folder (name one with the home option or REGISTRY_HOME); "
        "initialise one to create it", hint=Hint("command", "init")
    )
