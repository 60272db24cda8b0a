"""The open parts of one registry home: catalog engine, object store, index cache."""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import configure_mappers

import registry.models  # noqa: F401 - every catalog model is mapped before _prepare_models sets them up
from registry.config import HOME_DIRNAME, RegistryPaths, Settings
from registry.db import check_up_to_date, make_engine, upgrade
from registry.errors import InvalidInput
from registry.storage import ObjectStore, open_store

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from registry.snapshots.layers import IndexCache

__all__ = ["SYSTEM_ACTOR", "Actor", "ClientInfo", "Context", "create_home", "default_actor", "open_context",
           "resolve_actor"]

_HOME_MARKER = "registry.json"


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, as the audit log records it."""

    kind: str = "sdk"
    """``cli``, ``api`` or ``sdk``."""
    host: str = field(default_factory=socket.gethostname)
    remote_addr: str | None = None
    """The peer address of an HTTP request."""

    def to_dict(self) -> dict[str, str | None]:
        return {"host": self.host, "kind": self.kind, "remote_addr": self.remote_addr}


@dataclass(frozen=True)
class Actor:
    """Who acts, and how we know: ``user`` (named by --author or REGISTRY_ACTOR), ``token`` (an
    API token's name), ``os_user`` (the operating-system login) or ``system`` (the registry itself)."""

    name: str
    kind: str


SYSTEM_ACTOR = Actor("registry", "system")
"""The actor of work the registry does on its own, such as automatic compaction after a commit."""


@dataclass
class Context:
    """Everything a service function needs; one per process and home (the API copies it per request
    with that request's ``client`` and ``principal``)."""

    paths: RegistryPaths
    engine: Engine
    store: ObjectStore
    settings: Settings
    """Resolved once when the context opened (:func:`open_context`); later changes to the environment
    do not reach it. Read groups from it (``ctx.settings.lineage``), never the environment."""
    client: ClientInfo = field(default_factory=ClientInfo)
    principal: str | None = None
    """The name of the API token a request authenticated with."""
    author: str | None = None
    """An actor named for every call in this context (the CLI's global ``--author``)."""
    _cache: IndexCache | None = field(init=False, default=None, repr=False)

    @property
    def cache(self) -> IndexCache:
        """The key-index cache of this home's store, opened on first use (commands that read no rows never
        load the layer code, pyarrow and numpy)."""
        if self._cache is None:
            from registry.snapshots.layers import INDEX_FORMAT, IndexCache  # lazy: pyarrow/numpy only to read rows

            self._cache = IndexCache(self.store, self.paths.cache_dir / f"index-v{INDEX_FORMAT}")
        return self._cache

    @cache.setter
    def cache(self, value: IndexCache) -> None:
        """Share another context's cache (the API's per-request copies use the process's one)."""
        self._cache = value

    def close(self) -> None:
        self.engine.dispose()


def default_actor(settings: Settings) -> str:
    """Who acts when no author is given: ``settings.actor`` (``REGISTRY_ACTOR``), else the OS user."""
    if settings.actor:
        return settings.actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def resolve_actor(ctx: Context, explicit: str | None = None) -> Actor:
    """The actor of an operation: ``--author``, ``REGISTRY_ACTOR``, the API token's name, else the OS user."""
    named = explicit or ctx.author
    if named:
        return Actor(named, "user")
    if ctx.settings.actor:
        return Actor(ctx.settings.actor, "user")
    if ctx.principal:
        return Actor(ctx.principal, "token")
    return Actor(default_actor(ctx.settings), "os_user")


def create_home(path: Path | None = None, settings: Settings | None = None) -> RegistryPaths:
    """Create a registry home (default ``./.registry``) and bring its catalog to the newest schema.

    Re-running on an existing home only applies pending migrations.

    ``settings`` default to the environment's (``Settings()``), resolved here once.

    Raises:
        InvalidInput: ``path`` exists and is a file, or is a non-empty folder that is not a home.
    """
    settings = settings if settings is not None else Settings()
    home = (path or Path(HOME_DIRNAME)).expanduser()
    marker = home / _HOME_MARKER
    if home.exists() and not home.is_dir():
        raise InvalidInput(f"{home} exists and is not a folder")
    if home.is_dir() and any(home.iterdir()) and not marker.is_file():
        raise InvalidInput(f"{home} is a non-empty folder that is not a registry home; choose another path")
    home.mkdir(parents=True, exist_ok=True)
    settings = settings.for_home(home)
    paths = RegistryPaths.for_home(home, settings)
    upgrade(paths.database_url)
    open_store(paths.storage_url, settings.storage, paths.cache_dir)
    if not marker.is_file():
        marker.write_text(json.dumps({"format": 1}) + "\n")
    return paths


def _prepare_models() -> None:
    """Set up the catalog models' ORM mappings now, once per process (later calls cost nothing).

    SQLAlchemy does it on the first ORM query otherwise: about 15 ms inside whichever operation ran first,
    though it is opening work (a label diff in a fresh process spent a quarter of its time on it).
    """
    configure_mappers()


def open_context(home: Path, settings: Settings | None = None, check_schema: bool = True) -> Context:
    """Open the catalog and store of an existing home.

    The settings are resolved here, once: ``settings`` (default ``Settings()``, from the environment)
    over the home's ``registry.json`` ``"settings"``. The context carries them as ``ctx.settings``, and
    the store gets its group (``settings.storage``) now.

    Raises:
        CatalogOutOfDate: the catalog needs `registry db upgrade`.
    """
    settings = (settings if settings is not None else Settings()).for_home(home)
    paths = RegistryPaths.for_home(home, settings)
    engine = make_engine(paths.database_url)
    if check_schema:
        check_up_to_date(engine)
    _prepare_models()
    return Context(paths=paths, engine=engine, store=open_store(paths.storage_url, settings.storage, paths.cache_dir),
                   settings=settings)
