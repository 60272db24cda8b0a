"""Alembic migrations: empty -> head, no drift from the models, and refusing a catalog that is behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

import registry.metadata  # noqa: F401  (registers every table on SQLModel.metadata)
from registry import Registry
from registry.cli.main import main
from registry.config import RegistryPaths, Settings
from registry.db import alembic_config, make_engine, upgrade
from registry.errors import CatalogOutOfDate, Hint
from tests.conftest import Cli

TABLES = {"dataset", "snapshot", "ref", "schema_version", "audit_event", "audit_head", "audit_segment"}
TABLES |= {"qa_policy", "gate_result", "gate_waiver", "dataset_pin"}
TABLES |= {"lineage_outbox", "lineage_lease", "lineage_edge"}
TABLES |= {"api_token"}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _check_fresh_upgrade(url: str) -> None:
    engine = make_engine(url)
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(url)
        assert TABLES | {"alembic_version"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == _head()
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    SQLModel.metadata)
        assert diff == []
        upgrade(url)  # a second upgrade is a no-op
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == _head()
    finally:
        engine.dispose()


def test_upgrade_from_empty_sqlite_creates_tables_without_drift(tmp_path: Path) -> None:
    _check_fresh_upgrade(f"sqlite:///{tmp_path / 'catalog.db'}")


@pytest.mark.postgres
def test_upgrade_from_empty_postgres_creates_tables_without_drift(postgres_url: str) -> None:
    _check_fresh_upgrade(postgres_url)


def test_downgrade_to_base_drops_every_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = create_engine(url)
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_home_with_unmigrated_sqlite_catalog_is_out_of_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.json").write_text(json.dumps({"format": 1}) + "\n")
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect():
        pass  # creates the empty database file
    engine.dispose()
    with pytest.raises(CatalogOutOfDate, match="upgrade the catalog") as refused:
        Registry.open(home)
    assert refused.value.hint == Hint("command", "db upgrade")  # the CLI words it as `registry db upgrade`

    capsys.readouterr()
    assert main(["--home", str(home), "dataset", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "registry db upgrade" in err
    assert main(["--home", str(home), "db", "upgrade"]) == 0
    with Registry.open(home) as reg:
        assert reg.datasets() == []


def test_catalog_behind_is_refused_until_db_upgrade(home: Path, cli: Cli, capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    with Registry.open(home) as reg:
        reg.create_dataset("x", "id")
    url = RegistryPaths.for_home(home, Settings()).database_url
    command.downgrade(alembic_config(url), "base")

    with pytest.raises(CatalogOutOfDate, match="upgrade the catalog"):
        Registry.open(home)
    result = cli("log", "x")
    assert result.code == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "registry db upgrade" in lines[0]
    capsys.readouterr()
    assert main(["--home", str(home), "log", "x", "--json"]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "catalog_out_of_date"

    upgraded = cli("db", "upgrade")
    assert upgraded.code == 0, upgraded
    assert "up to date" in upgraded.stdout
    with Registry.open(home) as reg:
        assert reg.datasets() == []  # base dropped the tables; the upgrade recreated them empty
        reg.create_dataset("x", "id")
        assert [d.name for d in reg.datasets()] == ["x"]
