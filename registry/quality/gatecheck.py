"""``registry gate check``: the command CI pipelines call, answered in a fraction of a second.

On the embedded SQLite catalog the answer comes from a few read-only queries through the standard
library's ``sqlite3``: no SQLAlchemy, pyarrow or numpy import, which on our 2-core machine is most
of a second. It finds the home and the catalog with :mod:`registry.config` (as light to import), so
both paths read the same settings. Whatever that path does not handle (a PostgreSQL catalog, ``REF~N`` or id prefixes,
an unknown name, a catalog not at the newest migration, any SQLite error) goes through the
SQLModel path instead, which gives the full answer or the proper error. Both decide with
:func:`registry.quality.verdict.decide`, and a test holds them equal in every gate state.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from registry.config import HOME_CONFIG, RegistryPaths, Settings, find_home, newest_migration, walk_up_to_home
from registry.quality.gate_sql import gate_status_from_sql
from registry.quality.verdict import GateStatus
from registry.refs import Ref

if TYPE_CHECKING:
    from registry.context import ClientInfo

__all__ = ["check_gate_at", "fast_gate_status", "gate_status_from_sql", "open_readonly_catalog", "sqlite_catalog",
           "sqlite_catalog_file"]


def sqlite_catalog(home: str | os.PathLike[str] | None, settings: Settings | None = None) -> tuple[Path, Path] | None:
    """The home :func:`registry.config.find_home` would find (with the same ``settings``, default the
    environment's) and its SQLite catalog file, or None to let the full path find them or explain why not
    (no home, or a catalog that is not a plain ``sqlite:///`` file, such as PostgreSQL)."""
    settings = settings if settings is not None else Settings()
    given = home if home is not None else settings.home
    if given is not None:
        path = Path(given).expanduser()
        found = path.resolve() if (path / HOME_CONFIG).is_file() else None
    else:
        found = walk_up_to_home(Path.cwd())
    if found is None:
        return None
    paths = RegistryPaths.for_home(found, settings.for_home(found))
    url = paths.database_url
    return (paths.home, Path(url.removeprefix("sqlite:///"))) if url.startswith("sqlite:///") else None


def sqlite_catalog_file(home: str | os.PathLike[str] | None, settings: Settings | None = None) -> Path | None:
    """The catalog file of :func:`sqlite_catalog`, or None."""
    found = sqlite_catalog(home, settings)
    return found[1] if found is not None else None


def open_readonly_catalog(catalog_file: Path | None) -> sqlite3.Connection | None:
    """A read-only ``sqlite3`` connection to an embedded catalog (:func:`sqlite_catalog_file`) at the newest
    migration, else None (no file, an older or newer schema, unreadable): then the SQLAlchemy path answers
    or gives the proper error. The caller closes the connection."""
    if catalog_file is None or not catalog_file.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{catalog_file.as_uri()}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error:
        return None
    try:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        version = None
    if version is None or version[0] != newest_migration():
        conn.close()
        return None
    return conn


def fast_gate_status(home: str | os.PathLike[str] | None, ref: Ref | str) -> GateStatus | None:
    """:func:`gate_status_from_sql` over an up-to-date SQLite catalog through ``sqlite3``, or None when
    this path cannot answer (then use :func:`registry.quality.gate.check_gate`)."""
    conn = open_readonly_catalog(sqlite_catalog_file(home))
    if conn is None:
        return None
    try:
        return gate_status_from_sql(lambda sql, params: conn.execute(sql, params).fetchall(), ref)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def check_gate_at(home: str | os.PathLike[str] | None, ref: Ref | str, evaluate: bool = False, actor: str | None = None,
                  client: ClientInfo | None = None) -> GateStatus:
    """``registry gate check``: the gate of ``ref`` in the home at ``home``; with ``evaluate``, run QA
    first (as ``actor``, audited with ``client``) when there is no result under the current policy.

    Raises:
        HomeNotFound, CatalogOutOfDate, NotFound: as opening the home and resolving ``ref`` do.
    """
    status = fast_gate_status(home, ref)
    if status is not None and not (evaluate and status.state in ("stale", "never_evaluated")):
        return status
    from registry.config import RegistryPaths, Settings  # lazy: gate check's fast path loads no SQLAlchemy
    from registry.db import check_up_to_date, make_engine  # lazy: SQLAlchemy only off the fast path
    from registry.quality.gate import check_gate  # lazy: the fast path loads no SQLAlchemy

    settings = Settings()
    home_path = find_home(home, settings=settings)
    engine = make_engine(RegistryPaths.for_home(home_path, settings.for_home(home_path)).database_url)
    try:
        check_up_to_date(engine)
        status = check_gate(engine, ref)
    finally:
        engine.dispose()
    if evaluate and status.state in ("stale", "never_evaluated"):
        from registry.context import open_context  # lazy: gate check's fast path loads no SQLAlchemy
        from registry.quality.evaluate import qa_run  # lazy: gate check's fast path loads no SQLAlchemy

        ctx = open_context(home_path, settings)
        if client is not None:
            ctx.client = client
        try:
            exact = Ref(status.dataset, status.snapshot_id)
            qa_run(ctx, exact, actor)
            return check_gate(ctx.engine, exact)
        finally:
            ctx.close()
    return status
