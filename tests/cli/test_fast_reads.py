"""The CLI's fast read path (issue 21: read-only commands <= 0.3 s): the everyday read-only commands answered
through plain ``sqlite3`` print exactly what the SQLAlchemy path prints, byte for byte, and fall back to it
for whatever they do not cover (errors, PostgreSQL, an old catalog, a server).

Each command runs in this process through :func:`registry.cli.main.main` twice on the same home: as users
run it (the fast path answers), and with the same catalog file named by a ``sqlite+pysqlite:///`` URL,
which the fast path does not handle, so the normal path answers. A check per run says which path it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from registry import Registry
from registry.cli.main import main
from registry.cli.session import Session
from registry.config import Settings
from registry.context import create_home

READS = [
    ["dataset", "list"],
    ["log", "ds"], ["log", "ds", "--oneline"], ["log", "ds", "-n", "2"], ["log", "ds@fix"], ["log", "ds@v1"],
    ["log", "ds@main~1"], ["log", "ds@main~1~1"], ["log", "other"],
    ["show", "ds"], ["show", "ds@v1"], ["show", "ds@fix"], ["show", "ds@main~2"], ["show", "other@main"],
    ["schema", "ds"], ["schema", "other"],
    ["policy", "show", "ds"], ["policy", "show", "ds", "--version", "1"],
    ["token", "list"], ["lineage", "status"], ["storage", "info"],
    # what the fast path hands to the normal one: errors in the normal path's words
    ["log", "nope"], ["log", "empty"], ["show", "ds@nope"], ["show", "ds@main~9"], ["show", "ds@ffffffff"],
    ["schema", "nope"], ["policy", "show", "other"], ["policy", "show", "ds", "--version", "9"],
    ["show", "Bad!Name"],
]


def _table(keys: list[str], label: str) -> pa.Table:
    return pa.table({"sample_id": keys, "label": [label] * len(keys)})


@pytest.fixture
def busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home on the embedded SQLite catalog (the only one the fast path reads) with two datasets and an
    empty one: ``ds`` has tags, a branch, a merge of that branch and two policy versions; ``other`` a
    two-column key and a schema change; two API tokens, one revoked."""
    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL", "REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    home = create_home(tmp_path / "home").home
    with Registry.open(home) as reg:
        reg.create_dataset("ds", "sample_id", description="labels")
        reg.create_dataset("other", ["a", "b"], owner="someone")
        reg.create_dataset("empty", "sample_id")
        reg.commit("ds", _table([f"s{i:03d}" for i in range(30)], "cat"), message="first")
        reg.tag("ds@main", "v1")
        reg.branch("ds/fix")
        reg.commit("ds@fix", _table(["s001", "s002"], "dog"), mode="upsert", message="fix two")
        reg.commit("ds", _table(["s100"], "cow"), mode="upsert", message="a cow")
        reg.tag("ds@main", "v2")
        assert reg.merge("ds@fix", "main", message="merge fix").outcome == "merged"
        reg.commit("other", pa.table({"a": [1, 2], "b": ["x", "y"]}), message="two rows\n\nwith a body")
        reg.commit("other", pa.table({"a": [1, 2], "b": ["x", "y"], "c": [0.5, None]}), message="a column")
        reg.set_policy("ds", "checks:\n  - check: row_count\n    min: 1\n")
        reg.set_policy("ds", "checks:\n  - check: row_count\n    min: 2\n")
        reg.create_token("ci-bot", "ci", ["ds"])
        reg.create_token("old", "reader", expires="7d")
        reg.revoke_token("old")
    return home


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _both_ways(busy: Path, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
               expect_fast: bool = True) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    monkeypatch.setenv("REGISTRY_HOME", str(busy))
    fast_reader = Session(str(busy)).fast_reads()
    if expect_fast:
        assert fast_reader is not None, "the fast path must answer on an up-to-date SQLite home"
        fast_reader.close()
    fast = _run(args, capsys)
    monkeypatch.setenv("REGISTRY_DATABASE_URL", f"sqlite+pysqlite:///{busy / 'catalog.db'}")
    assert Session(str(busy)).fast_reads() is None, "this URL must send every command the normal way"
    normal = _run(args, capsys)
    monkeypatch.delenv("REGISTRY_DATABASE_URL")
    return fast, normal


@pytest.mark.parametrize("args", READS, ids=" ".join)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_fast_reads_print_what_the_normal_path_prints(busy: Path, args: list[str], as_json: bool,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*args, "--json"] if as_json else args
    fast, normal = _both_ways(busy, argv, monkeypatch, capsys)
    assert fast == normal
    if as_json and fast[0] == 0:
        assert json.loads(fast[1]) not in ([], {})


def test_the_home_really_has_what_the_reads_cover(busy: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Guards the parity test against a fixture that lost its branches, merge or tokens."""
    monkeypatch.setenv("REGISTRY_HOME", str(busy))
    code, out, _ = _run(["show", "ds", "--json"], capsys)
    head = json.loads(out)
    assert code == 0 and len(head["parents"]) == 2 and head["branches"] == ["main"]
    code, out, _ = _run(["log", "ds", "--json"], capsys)
    assert [e["tags"] for e in json.loads(out)][-1] == ["v1"]
    code, out, _ = _run(["schema", "other", "--json"], capsys)
    assert [v["compatibility"] for v in json.loads(out)] == ["initial", "compatible"]
    code, out, _ = _run(["token", "list", "--json"], capsys)
    assert [(t["name"], t["active"]) for t in json.loads(out)] == [("ci-bot", True), ("old", False)]


def test_an_old_catalog_goes_the_normal_way(busy: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A catalog not at the newest migration: no fast answer from old tables; the normal path says to upgrade."""
    with sqlite3.connect(busy / "catalog.db") as conn:
        (current,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert Session(str(busy)).fast_reads() is None
    monkeypatch.setenv("REGISTRY_HOME", str(busy))
    code, _, err = _run(["log", "ds"], capsys)
    assert code != 0 and "db upgrade" in err
    with sqlite3.connect(busy / "catalog.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (current,))
    assert _run(["log", "ds"], capsys)[0] == 0


def test_a_store_that_does_not_open_fails_the_normal_way(busy: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Opening a home opens its store: a URL of an unknown scheme fails ``log`` as it always did."""
    monkeypatch.setenv("REGISTRY_STORAGE_URL", "nope://bucket")
    assert Session(str(busy)).fast_reads() is None
    fast, normal = _both_ways(busy, ["log", "ds"], monkeypatch, capsys, expect_fast=False)
    assert fast == normal and fast[0] == 2 and "nope" in fast[2]


def test_against_a_server_the_fast_path_stays_out(busy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_URL", "http://127.0.0.1:9")
    session = Session(str(busy))
    assert session.remote and session.fast_reads() is None


FAST_COMMANDS = [["dataset", "list"], ["log", "ds"], ["show", "ds@v1"], ["schema", "ds"], ["policy", "show", "ds"],
                 ["token", "list"], ["lineage", "status"], ["storage", "info"],
                 ["gate", "check", "ds"]]
HEAVY_PACKAGES = {"sqlalchemy", "sqlmodel", "pyarrow", "numpy", "duckdb", "alembic"}
HEAVY_MODULES = {"registry.registry", "registry.context", "registry.db", "registry.models"}


def _modules_after(args: list[str], home: Path) -> tuple[int, set[str]]:
    """The modules a fresh ``registry ARGS`` process has loaded when it finishes."""
    code = ("import sys\nfrom registry.cli.main import main\ncode = main(sys.argv[1:])\n"
            "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["REGISTRY_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, set(done.stderr.split())


@pytest.mark.parametrize("args", [["--help"], ["log", "--help"], ["diff", "--help"], *FAST_COMMANDS], ids=" ".join)
def test_help_and_fast_commands_import_nothing_heavy(busy: Path, args: list[str]) -> None:
    """Help loads no settings (pydantic) at all; the fast commands load the settings but no catalog stack."""
    code, modules = _modules_after(args, busy)
    assert code == (1 if args[0] == "gate" else 0)  # the gate of a snapshot never evaluated does not pass
    heavy = HEAVY_PACKAGES | ({"pydantic", "pydantic_settings"} if "--help" in args else set())
    loaded = sorted(m for m in modules if m.split(".")[0] in heavy or m in HEAVY_MODULES)
    assert loaded == [], f"registry {' '.join(args)} loaded {loaded[:8]}"


def test_settings_decide_the_catalog_both_paths_read(busy: Path, tmp_path: Path) -> None:
    """The fast path finds the catalog the way the normal path does: a database URL in the settings wins."""
    from registry.quality.gatecheck import sqlite_catalog_file

    assert sqlite_catalog_file(busy, Settings()) == busy / "catalog.db"
    elsewhere = tmp_path / "elsewhere.db"
    assert sqlite_catalog_file(busy, Settings(database_url=f"sqlite:///{elsewhere}")) == elsewhere
    assert sqlite_catalog_file(busy, Settings(database_url="postgresql+psycopg://u@127.0.0.1/x")) is None
