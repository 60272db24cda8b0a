"""Catalog engine, sessions and migration state.

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE`` so concurrent
writers queue on the database lock instead of failing on lock upgrade; PostgreSQL runs with its
default READ COMMITTED isolation, and ref moves are compare-and-swap ``UPDATE``s in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, SQLModel, create_engine

from registry.config import migrations_dir
from registry.errors import CatalogOutOfDate, Hint, StorageError

__all__ = [
    "MIGRATIONS_DIR",
    "SCHEMA_HEAD",
    "alembic_config",
    "check_up_to_date",
    "make_engine",
    "read_connection",
    "table_of",
    "transaction",
    "upgrade",
]


MIGRATIONS_DIR = migrations_dir()


def make_engine(url: str) -> Engine:
    """An engine for the catalog at ``url`` with the locking behaviour the registry relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock up front; readers (WAL) never block anyone.
            readonly = conn.get_execution_options().get(READONLY, False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


READONLY = "registry_readonly"


@contextmanager
def transaction(engine: Engine, readonly: bool = False) -> Iterator[Session]:
    """One catalog transaction: commits on success, rolls back on any error.

    ``readonly`` transactions take no write lock on SQLite, so reads never queue behind a commit.
    """
    with Session(engine, expire_on_commit=False) as session:
        if readonly:
            session.connection(execution_options={READONLY: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A Core connection for a few read-only queries on a hot path (no ORM session; no write lock on SQLite)."""
    with engine.connect() as connection:
        yield connection.execution_options(**{READONLY: True})


def alembic_config(url: str) -> Any:
    """An alembic ``Config`` pointing at ``migrations/`` and the catalog ``url``."""
    from alembic.config import Config  # lazy: alembic loads only to upgrade

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Apply every pending migration to the catalog at ``url``."""
    from alembic import command  # lazy: alembic loads only to upgrade

    command.upgrade(alembic_config(url), "head")


SCHEMA_HEAD = "0011"
"""The newest migration in ``migrations/versions`` (a test keeps the two in step). Checking it
needs no alembic import, which keeps every CLI call fast."""


def check_up_to_date(engine: Engine) -> None:
    """Refuse to work on a catalog whose schema is not at the newest migration.

    Raises:
        CatalogOutOfDate: the catalog is empty, older or newer than this code.
        StorageError: the catalog cannot be opened at all.
    """
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError) as exc:
        if "alembic_version" in str(exc):
            current = None
        else:
            raise StorageError(f"cannot open the catalog at {engine.url!r}: {exc.orig}") from exc
    if current != SCHEMA_HEAD:
        raise CatalogOutOfDate(
            f"the catalog is at migration {current or 'none'} but this registry needs {SCHEMA_HEAD}; "
            "upgrade the catalog", hint=Hint("command", "db upgrade")
        )


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a catalog model, for hot paths where a Core select costs a quarter of the ORM's."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table
