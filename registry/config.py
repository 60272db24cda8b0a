"""Settings, resolved once, and locating the registry home.

:class:`Settings` is one tree: top-level ``home``, ``database_url`` and ``actor``, then a group per
concern (``storage`` with ``storage.s3`` and ``storage.lakefs``, ``compaction``, ``inputs``, ``query``,
``api``, ``audit``, ``lineage``, ``labeling``, ``remote``). It is resolved in this order, first wins:

1. values passed to the constructor;
2. nested environment variables, ``REGISTRY_`` plus the path joined by ``__``
   (``REGISTRY_LINEAGE__DELIVERY``, ``REGISTRY_STORAGE__S3__REGION``);
3. the flat names users set before the tree existed, each field's :class:`Env` names in order
   (``REGISTRY_LINEAGE_DELIVERY``, ``REGISTRY_S3_REGION`` then ``AWS_REGION``, ``LAKEFS_ENDPOINT``...);
4. the home's ``registry.json`` under ``"settings"`` (same nesting), added by :meth:`Settings.for_home`;
5. the defaults below.

Entry points (the CLI's main, ``registry serve``, the lineage worker, the fast gate check) build it
once; :func:`registry.context.open_context` carries it as ``ctx.settings``; nothing below reads the
environment again. This module stays cheap to import (pydantic only): the fast gate check uses it.

The home is the folder that holds the embedded catalog (``catalog.db``), the object store
(``objects/``) and local caches. It is found the way git finds ``.git``: ``--home``, else
``REGISTRY_HOME``, else the nearest ``.registry`` folder walking up from the working directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from registry.errors import Hint, HomeNotFound

__all__ = ["HOME_CONFIG", "HOME_DIRNAME", "ApiSettings", "AuditSettings", "CompactionSettings", "Delivery", "Env",
           "InputSettings", "LabelingSettings", "LakeFSSettings", "LineageSettings", "OpenLineageSettings",
           "QuerySettings", "RegistryPaths", "RemoteSettings", "S3Settings", "Settings", "StorageSettings",
           "child_environment", "default_storage_url", "find_home", "flat_env_names", "migrations_dir",
           "newest_migration", "read_home_config",
           "walk_up_to_home",
           "write_home_config"]

HOME_DIRNAME = ".registry"

DEFAULT_SCHEMA_BASE_URL = "https://dataset-ledger.invalid"
"""Base of the custom facet's ``_schemaURL`` until a deployment names its API's public URL."""

Delivery = Literal["auto", "inline", "background", "manual"]


@dataclass(frozen=True)
class Env:
    """The flat environment variable names of one field, tried in order (the first non-empty wins).

    ``prefix=True`` makes the field true when any variable starts with the (single) name."""

    names: tuple[str, ...]
    prefix: bool = False

    def __init__(self, *names: str, prefix: bool = False) -> None:
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "prefix", prefix)


def _is_true(value: object) -> bool:
    """``OPENLINEAGE_DISABLED`` is on only when it says ``true``, as the OpenLineage client reads it."""
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


class _Group(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class S3Settings(_Group):
    """An S3-compatible bucket (``s3://bucket/prefix``); unset values fall to the AWS SDK's default chain."""

    endpoint_url: Annotated[str | None,
                            Env("REGISTRY_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")] = None
    """S3-compatible endpoint (MinIO, Ceph, R2); default AWS."""
    region: Annotated[str | None, Env("REGISTRY_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")] = None
    """Default us-east-1."""
    access_key_id: Annotated[str | None, Env("REGISTRY_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")] = None
    secret_access_key: Annotated[str | None, Env("REGISTRY_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")] = None
    session_token: Annotated[str | None, Env("AWS_SESSION_TOKEN")] = None
    """Used with the two keys above (temporary credentials)."""


class LakeFSSettings(_Group):
    """A lakeFS branch (``lakefs://repository/branch/prefix``)."""

    endpoint: Annotated[str | None, Env("REGISTRY_LAKEFS_ENDPOINT", "LAKEFS_ENDPOINT")] = None
    """lakeFS server URL, e.g. ``http://lakefs:8000``."""
    access_key_id: Annotated[str | None, Env("REGISTRY_LAKEFS_ACCESS_KEY_ID", "LAKEFS_ACCESS_KEY_ID")] = None
    secret_access_key: Annotated[str | None,
                                 Env("REGISTRY_LAKEFS_SECRET_ACCESS_KEY", "LAKEFS_SECRET_ACCESS_KEY")] = None


class StorageSettings(_Group):
    """Where objects live, and the settings of each kind of remote store."""

    url: Annotated[str | None, Env("REGISTRY_STORAGE_URL")] = None
    """Where objects live; default the home's ``registry.json`` ``storage_url``, else ``file://<home>/objects``."""
    retries: Annotated[int, Env("REGISTRY_STORAGE_RETRIES")] = 5
    """Attempts per object store call before a remote store counts as down (backoff doubles from 0.2 s)."""
    s3: S3Settings = Field(default_factory=S3Settings)
    lakefs: LakeFSSettings = Field(default_factory=LakeFSSettings)


class CompactionSettings(_Group):
    """Automatic compaction (``registry compact --auto``, the ``registry serve`` worker)."""

    max_layers: Annotated[int, Env("REGISTRY_MAX_LAYERS")] = 8
    """Merge the upper layers of a branch head that has more layers than this, in size tiers."""
    base_fraction: Annotated[float, Env("REGISTRY_COMPACT_BASE_FRACTION")] = 0.25
    """Rewrite a head's base once the layers above it hold this fraction of its rows (0: never), so the
    bytes compaction writes follow the change, not the table."""
    interval: Annotated[float, Env("REGISTRY_COMPACT_INTERVAL")] = 60.0
    """Seconds between passes of the ``registry serve`` worker (0: no worker)."""


class InputSettings(_Group):
    """Bounds on one input file or upload."""

    max_rows: Annotated[int, Env("REGISTRY_MAX_INPUT_ROWS")] = 100_000_000
    """The most rows one input may decode to (Parquet footers are checked before reading)."""
    max_bytes: Annotated[int, Env("REGISTRY_MAX_INPUT_BYTES")] = 32 << 30
    """The most bytes one input may decode to in memory (a compressed file can expand 1000x)."""


class QuerySettings(_Group):
    """Bounds on one query (``registry query``, ``POST /query``)."""

    timeout_seconds: Annotated[float, Env("REGISTRY_QUERY_TIMEOUT_SECONDS")] = 60.0
    """A query running longer than this is interrupted (0: no limit)."""
    memory_limit: Annotated[str, Env("REGISTRY_QUERY_MEMORY_LIMIT")] = "2GB"
    """DuckDB's memory limit for one query (``memory_limit``); past it the query fails, the process lives."""
    threads: Annotated[int, Env("REGISTRY_QUERY_THREADS")] = 0
    """DuckDB threads per query (0: DuckDB's default, one per core)."""


class ApiSettings(_Group):
    """The HTTP API (``registry serve``)."""

    max_upload_bytes: Annotated[int, Env("REGISTRY_API_MAX_UPLOAD_BYTES")] = 1 << 30
    """The largest upload (commit or import body) accepted, in bytes as sent (413 above it)."""
    max_body_bytes: Annotated[int, Env("REGISTRY_API_MAX_BODY_BYTES")] = 8 << 20
    """The largest body of any other request (JSON: lineage events, policies, queries); 413 above it."""
    max_query_rows: Annotated[int, Env("REGISTRY_API_MAX_QUERY_ROWS")] = 100_000
    """The most rows ``POST /query`` returns; a larger result is refused (422), so add a LIMIT."""
    trusted_proxies: Annotated[str, Env("REGISTRY_API_TRUSTED_PROXIES")] = ""
    """Comma-separated addresses whose ``X-Forwarded-For`` is believed; empty: none."""
    shutdown_grace_seconds: Annotated[float, Env("REGISTRY_API_SHUTDOWN_GRACE_SECONDS")] = 10.0
    """On SIGTERM the server waits this long for requests in flight, then cancels them (queries too)."""


class AuditSettings(_Group):
    """The audit log."""

    seal_events: Annotated[int, Env("REGISTRY_AUDIT_SEAL_EVENTS")] = 10_000
    """Unsealed events are sealed into a Parquet segment once this many accumulate (0: only on
    ``registry audit seal``)."""
    denied_interval_seconds: Annotated[float, Env("REGISTRY_AUDIT_DENIED_INTERVAL_SECONDS")] = 60.0
    """After a token's refused request is audited, its further refusals within this many seconds are only
    counted (in the next recorded event's ``suppressed``); 0 records every one."""


class OpenLineageSettings(_Group):
    """What the registry needs to know of OpenLineage's own configuration (the client reads the rest)."""

    disabled: Annotated[bool, BeforeValidator(_is_true), Env("OPENLINEAGE_DISABLED")] = False
    """``OPENLINEAGE_DISABLED=true``: the client sends nothing, so the registry queues nothing."""
    url: Annotated[str | None, Env("OPENLINEAGE_URL")] = None
    config: Annotated[str | None, Env("OPENLINEAGE_CONFIG")] = None
    """Path of an ``openlineage.yml``."""
    env_transport: Annotated[bool, Env("OPENLINEAGE__", prefix=True)] = False
    """Some ``OPENLINEAGE__...`` variable is set (a transport configured in the environment)."""

    def configured(self) -> bool:
        """Whether the user configured a transport, in any place the client looks (files are checked now)."""
        if self.url or self.env_transport:
            return True
        candidates = [self.config, os.path.join(os.getcwd(), "openlineage.yml"),
                      os.path.join(os.path.expanduser("~/.openlineage"), "openlineage.yml")]
        return any(path and os.path.isfile(path) for path in candidates)


class LineageSettings(_Group):
    """Lineage events: what is the registry's to decide (OpenLineage's configuration picks the transport)."""

    namespace: Annotated[str | None, Env("REGISTRY_LINEAGE_NAMESPACE")] = None
    """Namespace of registry datasets in events; default ``registry://<host>/<home folder name>``."""
    job_namespace: Annotated[str, Env("REGISTRY_LINEAGE_JOB_NAMESPACE")] = "registry"
    """Namespace of the registry's own jobs (``commit/<dataset>``, ``qa/<dataset>``, ``read/<dataset>``)."""
    delivery: Annotated[Delivery, Env("REGISTRY_LINEAGE_DELIVERY")] = "auto"
    """``auto``: inline to the home's events file, in a background process to a configured transport;
    ``inline``: always before the operation returns; ``background``: always in a detached deliverer;
    ``manual``: only on ``registry lineage flush``."""
    max_attempts: Annotated[int, Env("REGISTRY_LINEAGE_MAX_ATTEMPTS")] = 10
    """Automatic delivery attempts before an event is parked as failed (``flush --retry-failed``)."""
    backoff_seconds: Annotated[float, Env("REGISTRY_LINEAGE_BACKOFF_SECONDS")] = 1.0
    """First retry delay; it doubles with every failed attempt up to ``backoff_max_seconds``."""
    backoff_max_seconds: Annotated[float, Env("REGISTRY_LINEAGE_BACKOFF_MAX_SECONDS")] = 600.0
    background_seconds: Annotated[float, Env("REGISTRY_LINEAGE_BACKGROUND_SECONDS")] = 60.0
    """How long a background deliverer keeps retrying an unreachable backend before it exits."""
    lease_seconds: Annotated[float, Env("REGISTRY_LINEAGE_LEASE_SECONDS")] = 120.0
    """A deliverer's lease lasts this long unless renewed (it is renewed while sending), so the
    lease of a deliverer that died frees itself after at most this long."""
    schema_base_url: Annotated[str, Env("REGISTRY_LINEAGE_SCHEMA_BASE_URL")] = DEFAULT_SCHEMA_BASE_URL
    """Public URL of the registry API, which serves the custom facet's JSON Schema."""
    metrics_max_rows: Annotated[int, Env("REGISTRY_LINEAGE_METRICS_MAX_ROWS")] = 100_000
    """Distinct counts per column are computed for commits of at most this many rows (0: never)."""
    openlineage: OpenLineageSettings = Field(default_factory=OpenLineageSettings)


class LabelingSettings(_Group):
    """The Label Studio link (``registry sync``, the webhook)."""

    api_key: Annotated[str | None, Env("LABEL_STUDIO_API_KEY")] = None


class RemoteSettings(_Group):
    """The CLI as a client of a registry server (set ``REGISTRY_URL`` to use one)."""

    url: Annotated[str | None, Env("REGISTRY_URL")] = None
    token: Annotated[str | None, Env("REGISTRY_TOKEN")] = None
    timeout: Annotated[str | None, Env("REGISTRY_TIMEOUT")] = None
    """Seconds per request, as written (the client says what is wrong with a value it cannot read)."""


class Settings(BaseSettings):
    """The registry's whole configuration (see the module docstring for where each value comes from)."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", env_nested_delimiter="__", extra="ignore",
                                      frozen=True)

    home: Path | None = None
    database_url: str | None = None
    """SQLAlchemy URL of the catalog; default a SQLite file in the home."""
    actor: str | None = None
    """Who is acting, when ``--author`` is not given."""
    storage: StorageSettings = Field(default_factory=StorageSettings)
    compaction: CompactionSettings = Field(default_factory=CompactionSettings)
    inputs: InputSettings = Field(default_factory=InputSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    labeling: LabelingSettings = Field(default_factory=LabelingSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FlatEnvSource(settings_cls)

    def for_home(self, home: Path) -> Settings:
        """These settings over the home's ``registry.json`` ``"settings"`` tree: what was given (by the
        constructor or the environment) wins, the file fills in the rest."""
        stored = read_home_config(home).get("settings")
        if not isinstance(stored, dict) or not stored:
            return self
        return type(self).model_validate(_deep_merge(stored, self.model_dump(exclude_unset=True)))

    def replace(self, **changes: Any) -> Settings:
        """A copy with nested changes, e.g. ``replace(lineage={"delivery": "manual"})``, validated."""
        return type(self).model_validate(_deep_merge(self.model_dump(exclude_unset=True), changes))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _deep_merge(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _group_type(info: FieldInfo) -> type[BaseModel] | None:
    kind = info.annotation
    if get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _env_fields(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Env]]:
    """Every field of ``model``'s groups with flat names: its path and its :class:`Env`."""
    found: list[tuple[tuple[str, ...], Env]] = []
    for name, info in model.model_fields.items():
        group = _group_type(info)
        if group is not None:
            found.extend(_env_fields(group, (*path, name)))
        found.extend(((*path, name), meta) for meta in info.metadata if isinstance(meta, Env))
    return found


def flat_env_names() -> dict[str, str]:
    """Every flat environment variable name the settings read and the dotted field it sets (for docs, tests)."""
    return {name: ".".join(path) for path, env in _env_fields(Settings) for name in env.names}


class _FlatEnvSource(PydanticBaseSettingsSource):
    """The flat names of :class:`Env` (``REGISTRY_S3_REGION``, ``AWS_REGION``...), matched without regard
    to case like the ``REGISTRY_`` names; empty values count as unset."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items() if value}
        tree: dict[str, Any] = {}
        for path, env in _env_fields(self.settings_cls):
            if env.prefix:
                value: object = True if any(key.startswith(env.names[0]) for key in environ) else None
            else:
                value = next((environ[n] for n in env.names if n in environ), None)
            if value is None:
                continue
            node = tree
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        return tree


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
    def for_home(cls, home: Path, settings: Settings) -> RegistryPaths:
        """Resolve the catalog and store locations of ``home`` (settings win over the home's ``registry.json``)."""
        home = home.resolve()
        database_url = settings.database_url or f"sqlite:///{home / 'catalog.db'}"
        storage_url = settings.storage.url or read_home_config(home).get("storage_url") or default_storage_url(home)
        return cls(home=home, database_url=database_url, storage_url=storage_url)


HOME_CONFIG = "registry.json"
"""The file that marks a folder as a home, keeps what ``registry storage migrate`` switched, and may hold
settings under ``"settings"``."""


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


def find_home(explicit: str | os.PathLike[str] | None = None, start: Path | None = None,
              settings: Settings | None = None) -> Path:
    """Locate an existing registry home (``--home``, else ``settings.home`` (``REGISTRY_HOME``), then
    walking up from ``start``). Entry points pass the settings they resolved; without them the
    environment is read here.

    Raises:
        HomeNotFound: nothing was given and no ``.registry`` folder is above ``start``.
    """
    given = explicit if explicit is not None else (settings if settings is not None else Settings()).home
    if given is not None:
        path = Path(given).expanduser()
        if not (path / HOME_CONFIG).is_file():
            raise HomeNotFound(f"{path} is not a registry home; initialise one there to create it",
                               hint=Hint("command", "init", str(path)))
        return path.resolve()
    found = walk_up_to_home(start or Path.cwd())
    if found is None:
        raise HomeNotFound(
            "no registry home found here or in any parent folder (name one with the home option or REGISTRY_HOME); "
            "initialise one to create it", hint=Hint("command", "init")
        )
    return found


def walk_up_to_home(start: Path) -> Path | None:
    """The nearest ``.registry`` home in ``start`` or a parent folder, or None."""
    here = start.resolve()
    return next((f / HOME_DIRNAME for f in (here, *here.parents) if (f / HOME_DIRNAME / HOME_CONFIG).is_file()), None)


def migrations_dir() -> Path:
    """``migrations/`` of a source checkout, else the installed ``registry_migrations`` package."""
    source = Path(__file__).resolve().parent.parent / "migrations"
    if (source / "env.py").is_file():
        return source
    import registry_migrations  # lazy: only installed (not source) layouts have it

    return Path(registry_migrations.__file__).resolve().parent


def newest_migration() -> str | None:
    """The newest revision in the migrations' ``versions`` folder (file names start with it)."""
    revisions = [p.name.split("_", 1)[0] for p in (migrations_dir() / "versions").glob("*.py") if p.name[:1].isdigit()]
    return max(revisions) if revisions else None


def child_environment(**overrides: str) -> dict[str, str]:
    """The environment for a process the registry starts (the background lineage deliverer): this
    process's, with ``overrides``. The one place outside settings resolution that reads ``os.environ``."""
    return {**os.environ, **overrides}
