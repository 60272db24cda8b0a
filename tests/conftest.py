"""Shared fixtures: a real registry home on SQLite and on PostgreSQL, and a CLI runner.

PostgreSQL tests read ``REGISTRY_TEST_POSTGRES_URL`` (an admin URL; each test gets a fresh
database). Without it they skip, saying why; in CI (``CI=true``) a missing server fails instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry import Registry
from registry.context import create_home

PG_ENV = "REGISTRY_TEST_POSTGRES_URL"
os.environ["REGISTRY_PRELOAD"] = "off"  # a developer's `registry preload start` never runs the suite's commands
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def postgres_admin_url() -> str:
    """The admin URL, or skip (fail in CI) when there is no PostgreSQL to test against."""
    url = os.environ.get(PG_ENV)
    if not url:
        reason = f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres:postgres@127.0.0.1/postgres)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = postgres_admin_url()
    name = f"reg_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which catalog the test runs on: ``sqlite`` (embedded) or ``postgres``."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return None


@pytest.fixture
def home(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new registry home (catalog on the parametrised backend, objects in a local folder)."""
    monkeypatch.delenv("REGISTRY_HOME", raising=False)
    monkeypatch.delenv("REGISTRY_STORAGE_URL", raising=False)
    if database_url:
        monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("REGISTRY_DATABASE_URL", raising=False)
    return create_home(tmp_path / "home").home


@pytest.fixture
def reg(home: Path) -> Iterator[Registry]:
    """The registry at ``home``, opened through the public Python API."""
    registry = Registry.open(home)
    yield registry
    registry.close()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    """Runs ``registry ...`` in a subprocess against one home, like a user's shell would."""

    home: Path
    cwd: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_FAILPOINT")}
        env["REGISTRY_HOME"] = str(self.home)
        env.update(extra or {})
        return env

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
        proc = subprocess.run([sys.executable, "-m", "registry.cli.main", *args], cwd=self.cwd, env=self.env(env),
                              capture_output=True, text=True, timeout=timeout)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(home: Path, tmp_path: Path) -> Cli:
    return Cli(home=home, cwd=tmp_path)
