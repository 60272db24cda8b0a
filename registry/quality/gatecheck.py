"""``registry gate check``: the command CI pipelines call, answered in a fraction of a second.

On the embedded SQLite catalog the answer comes from a few read-only queries through the standard
library's ``sqlite3``: no SQLAlchemy, pyarrow or numpy import, which on our 2-core machine is most
of a second. Whatever that path does not handle (a PostgreSQL catalog, ``REF~N`` or id prefixes,
an unknown name, a catalog not at the newest migration, any SQLite error) goes through the
SQLModel path instead, which gives the full answer or the proper error. Both decide with
:func:`registry.quality.verdict.decide`, and a test holds them equal in every gate state.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from registry.quality.gate_sql import gate_status_from_sql
from registry.quality.verdict import GateStatus

if TYPE_CHECKING:
    from registry.context import ClientInfo

__all__ = ["check_gate_at", "fast_gate_status", "gate_status_from_sql"]


def _env(name: str) -> str | None:
    """A ``REGISTRY_*`` variable, matched without regard to case as the settings are."""
    wanted = name.lower()
    return next((value for key, value in os.environ.items() if key.lower() == wanted), None)


def _home(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The home :func:`registry.config.find_home` would find, or None to let it explain why not."""
    given = explicit if explicit is not None else _env("REGISTRY_HOME")
    if given is not None:
        path = Path(given).expanduser()
        return path.resolve() if (path / "registry.json").is_file() else None
    here = Path.cwd().resolve()
    return next((f / ".registry" for f in (here, *here.parents) if (f / ".registry" / "registry.json").is_file()),
                None)


def _catalog_file(home: Path) -> Path | None:
    url = _env("REGISTRY_DATABASE_URL")
    if url is None:
        return home / "catalog.db"
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _newest_migration() -> str | None:
    """The newest revision in ``migrations/versions`` (file names start with it; equals ``SCHEMA_HEAD``)."""
    source = Path(__file__).resolve().parent.parent.parent / "migrations"
    if (source / "env.py").is_file():
        folder = source / "versions"
    else:
        import registry_migrations  # lazy: the installed migrations package (a wheel only)

        folder = Path(registry_migrations.__file__).resolve().parent / "versions"
    revisions = [p.name.split("_", 1)[0] for p in folder.glob("*.py") if p.name[:1].isdigit()]
    return max(revisions) if revisions else None


def fast_gate_status(home: str | os.PathLike[str] | None, ref: str) -> GateStatus | None:
    """:func:`gate_status_from_sql` over an up-to-date SQLite catalog through ``sqlite3``, or None when
    this path cannot answer (then use :func:`registry.quality.gate.check_gate`)."""
    found = _home(home)
    catalog_file = _catalog_file(found) if found is not None else None
    if catalog_file is None or not catalog_file.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{catalog_file.as_uri()}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error:
        return None
    try:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if version is None or version[0] != _newest_migration():
            return None
        return gate_status_from_sql(lambda sql, params: conn.execute(sql, params).fetchall(), ref)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def check_gate_at(home: str | os.PathLike[str] | None, ref: str, evaluate: bool = False, actor: str | None = None,
                  client: ClientInfo | None = None) -> GateStatus:
    """``registry gate check``: the gate of ``ref`` in the home at ``home``; with ``evaluate``, run QA
    first (as ``actor``, audited with ``client``) when there is no result under the current policy.

    Raises:
        HomeNotFound, CatalogOutOfDate, NotFound: as opening the home and resolving ``ref`` do.
    """
    status = fast_gate_status(home, ref)
    if status is not None and not (evaluate and status.state in ("stale", "never_evaluated")):
        return status
    from registry.config import RegistryPaths, Settings, find_home  # lazy: gate check's fast path loads no SQLAlchemy
    from registry.db import check_up_to_date, make_engine  # lazy: gate check's fast path loads no SQLAlchemy
    from registry.quality.gate import check_gate  # lazy: gate check's fast path loads no SQLAlchemy

    settings = Settings()
    home_path = find_home(home)
    engine = make_engine(RegistryPaths.for_home(home_path, settings).database_url)
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
            qa_run(ctx, f"{status.dataset}@{status.snapshot_id}", actor)
            return check_gate(ctx.engine, f"{status.dataset}@{status.snapshot_id}")
        finally:
            ctx.close()
    return status
