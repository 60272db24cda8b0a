"""`registry query`: read-only DuckDB SQL over the registry's views that cannot reach anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry import Registry
from registry.errors import InvalidInput
from tests.conftest import Cli
from tests.support.helpers import labels_table


@pytest.fixture
def filled(reg: Registry) -> Registry:
    reg.create_dataset("labels", "sample_id", description="street signs")
    reg.commit("labels", labels_table(25), message="first", author="alice")
    reg.tag("labels@main", "v1")
    reg.commit("labels", labels_table(30), message="second", author="bob")
    reg.seal_audit()
    reg.tag("labels@main", "v2")
    return reg


def test_views_answer_an_auditors_questions(filled: Registry) -> None:
    rows = filled.query("SELECT actor, action FROM audit_log WHERE dataset = 'labels' ORDER BY seq").to_pylist()
    assert [r["action"] for r in rows] == ["dataset.create", "snapshot.commit", "ref.tag", "snapshot.commit",
                                           "ref.tag"]
    assert [r["actor"] for r in rows][1:4:2] == ["alice", "bob"]
    snaps = filled.query("SELECT s.author, s.rows, r.name FROM snapshots s JOIN refs r ON r.snapshot_id = s.id "
                         "WHERE r.kind = 'tag' ORDER BY r.name").to_pylist()
    assert snaps == [{"author": "alice", "rows": 25, "name": "v1"}, {"author": "bob", "rows": 30, "name": "v2"}]
    assert filled.query("SELECT name, description FROM datasets").to_pylist() == [
        {"name": "labels", "description": "street signs"}]
    assert filled.query("SELECT count(*) AS n FROM schema_versions WHERE dataset = 'labels'").column("n")[0] \
        .as_py() == 1
    assert filled.query("SELECT count(*) AS n FROM annotations").column("n")[0].as_py() == 0
    edges = filled.query("SELECT kind, src_version, dst_version FROM lineage_edges").to_pylist()
    assert edges == [{"kind": "parent", "src_version": filled.show("labels@v1").id,
                      "dst_version": filled.show("labels").id}]
    assert filled.query("SELECT count(*) AS n FROM gate_results").column("n")[0].as_py() == 0
    details = filled.query("SELECT json_extract_string(details, '$.message') AS m FROM audit_log "
                           "WHERE action = 'snapshot.commit' ORDER BY seq").column("m").to_pylist()
    assert details == ["first", "second"]


def test_data_view_holds_the_named_snapshot(filled: Registry) -> None:
    assert filled.query("SELECT count(*) AS n FROM data", dataset="labels@v1").column("n")[0].as_py() == 25
    assert filled.query("SELECT count(*) AS n FROM data", dataset="labels").column("n")[0].as_py() == 30
    with pytest.raises(InvalidInput, match="data"):
        filled.query("SELECT * FROM data")


ESCAPES = {
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "glob": "SELECT * FROM glob('/*')",
    "copy_to": "COPY (SELECT 1) TO '{tmp}/out.csv'",
    "attach": "ATTACH '{tmp}/other.duckdb' AS other",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET enable_external_access = true",
    "reset": "RESET lock_configuration",
    "pragma": "PRAGMA threads = 1",
    "create": "CREATE TABLE t AS SELECT 1",
    "export": "EXPORT DATABASE '{tmp}/dump'",
    "second_statement": "SELECT 1; COPY (SELECT 1) TO '{tmp}/out.csv'",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_queries_that_reach_outside_are_refused_with_exit_2(filled: Registry, cli: Cli, tmp_path: Path,
                                                            name: str) -> None:
    sql = ESCAPES[name].format(tmp=tmp_path)
    result = cli("query", sql)
    assert result.code == 2, result.stderr
    assert "not allowed" in result.stderr
    assert not list(tmp_path.glob("out.csv")) and not (tmp_path / "other.duckdb").exists()
    assert not (tmp_path / "dump").exists()


def test_reading_a_registry_object_that_is_not_a_view_source_is_refused(filled: Registry) -> None:
    """Only the audit segments are readable files; a dataset's own objects go through the `data` view."""
    change = filled.query("SELECT change_sha256 FROM snapshots LIMIT 1").column(0)[0].as_py()
    path = filled.ctx.store.local_path(change)
    assert path.is_file()
    with pytest.raises(InvalidInput, match="not allowed"):
        filled.query(f"SELECT * FROM read_parquet('{path}')")


def test_query_output_formats(filled: Registry, cli: Cli) -> None:
    sql = "SELECT name, kind FROM refs ORDER BY name"
    as_json = cli("query", sql, "--format", "json")
    assert as_json.code == 0 and json.loads(as_json.stdout) == [
        {"name": "main", "kind": "branch"}, {"name": "v1", "kind": "tag"}, {"name": "v2", "kind": "tag"}]
    as_csv = cli("query", sql, "--format", "csv")
    assert as_csv.stdout.splitlines() == ["name,kind", "main,branch", "v1,tag", "v2,tag"]
    table = cli("query", sql)
    assert table.stdout.splitlines()[0].split() == ["name", "kind"] and "(3 rows)" in table.stderr


def test_bad_sql_is_a_clear_exit_2(filled: Registry, cli: Cli) -> None:
    for sql, words in (("SELEC 1", "parse"), ("SELECT * FROM nope", "nope"), ("", "empty")):
        result = cli("query", sql)
        assert result.code == 2 and words in result.stderr, (sql, result.stderr)
    unknown = cli("query", "SELECT 1", "--dataset", "ghost@main")
    assert unknown.code == 2 and "ghost" in unknown.stderr
