"""Tampering with the catalog behind the registry's back (sqlite3 on catalog.db), one column at a time:
`verify` cross-checks every row against the audit chain and names what changed (exit 1).

The cases are listed per table and column, and a test holds that every column of the catalog tables
has one, so a column added later without a tamper case fails here.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from registry import Registry
from registry.auth.models import ApiTokenRow
from registry.auth.tokens import create_token, revoke_token
from registry.context import create_home
from registry.models import DatasetRow, RefRow, SchemaVersionRow, SnapshotRow
from registry.snapshots.compact import compact
from tests.conftest import Cli

TABLES = {"dataset": DatasetRow, "snapshot": SnapshotRow, "ref": RefRow, "schema_version": SchemaVersionRow,
          "api_token": ApiTokenRow}
HEAD = "(SELECT snapshot_id FROM ref WHERE name = 'main' AND dataset_id = 1)"
FIRST = "(SELECT id FROM snapshot WHERE dataset_id = 1 AND seq = 1)"
SECOND = "(SELECT id FROM snapshot WHERE dataset_id = 1 AND seq = 2)"
ORIGINAL = f"(SELECT id FROM snapshot WHERE dataset_id = 1 AND seq = 1 AND id = {FIRST})"

UNCHECKED = "unchecked on this store"
"""Marks a column only a lakeFS store can check (its commits name their snapshot); a local store keeps no
commits, and a home migrated away from lakeFS keeps the old ids, so nothing here can judge it."""

# (table, column) -> (SQL that changes it, text the verify report must contain)
CASES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("dataset", "id"): ("UPDATE dataset SET id = 99 WHERE name = 'signs'", "belongs to no dataset"),
    ("dataset", "name"): ("UPDATE dataset SET name = 'signz' WHERE name = 'signs'", "'signz' has no dataset.create"),
    ("dataset", "key_columns"): ("UPDATE dataset SET key_columns = '[\"label\"]' WHERE name = 'signs'",
                                 "key columns"),
    ("dataset", "description"): ("UPDATE dataset SET description = 'x' WHERE name = 'signs'", "description"),
    ("dataset", "owner"): ("UPDATE dataset SET owner = 'mallory' WHERE name = 'signs'", "owner is 'mallory'"),
    ("dataset", "created_at"): ("UPDATE dataset SET created_at = '2001-01-01T00:00:00.000000Z' WHERE name = 'signs'",
                                "created_at"),
    ("dataset", "created_by"): ("UPDATE dataset SET created_by = 'mallory' WHERE name = 'signs'", "created_by"),
    ("snapshot", "id"): (f"UPDATE snapshot SET id = 'ab' || substr(id, 3) WHERE id = {FIRST}",
                         "id does not match"),
    ("snapshot", "dataset_id"): (f"UPDATE snapshot SET dataset_id = 2 WHERE id = {FIRST}", "id does not match"),
    ("snapshot", "seq"): (f"UPDATE snapshot SET seq = 7 WHERE id = {HEAD}", "seq is 7"),
    ("snapshot", "parents"): (f"UPDATE snapshot SET parents = '[]' WHERE id = {HEAD}", "id does not match"),
    ("snapshot", "author"): (f"UPDATE snapshot SET author = 'mallory' WHERE id = {HEAD}", "id does not match"),
    ("snapshot", "message"): (f"UPDATE snapshot SET message = 'x' WHERE id = {HEAD}", "id does not match"),
    ("snapshot", "created_at"): (f"UPDATE snapshot SET created_at = '2001-01-01T00:00:00.000000Z' WHERE id = {HEAD}",
                                 "id does not match"),
    ("snapshot", "schema_version"): (f"UPDATE snapshot SET schema_version = 1 WHERE id = {HEAD}", "schema_version"),
    ("snapshot", "schema_fingerprint"): (f"UPDATE snapshot SET schema_fingerprint = '{'0' * 64}' WHERE id = {HEAD}",
                                         "id does not match"),
    ("snapshot", "change_sha256"): (f"UPDATE snapshot SET change_sha256 = (SELECT change_sha256 FROM snapshot "
                                    f"WHERE id = {FIRST}) WHERE id = {HEAD}", "id does not match"),
    ("snapshot", "deletes_sha256"): (f"UPDATE snapshot SET deletes_sha256 = NULL WHERE id = {HEAD}",
                                     "id does not match"),
    ("snapshot", "manifest_sha256"): (f"UPDATE snapshot SET manifest_sha256 = (SELECT manifest_sha256 FROM snapshot "
                                      f"WHERE id = {SECOND}) WHERE id = {FIRST}", "manifest"),
    ("snapshot", "rows"): (f"UPDATE snapshot SET rows = rows + 1 WHERE id = {HEAD}", "rows"),
    ("snapshot", "bytes_written"): (f"UPDATE snapshot SET bytes_written = 1 WHERE id = {HEAD}", "bytes_written"),
    ("snapshot", "added"): (f"UPDATE snapshot SET added = added + 5 WHERE id = {HEAD}", "added"),
    ("snapshot", "changed"): (f"UPDATE snapshot SET changed = changed + 5 WHERE id = {HEAD}", "changed"),
    ("snapshot", "removed"): (f"UPDATE snapshot SET removed = removed + 5 WHERE id = {HEAD}", "removed"),
    ("snapshot", "annotations_sha256"): (f"UPDATE snapshot SET annotations_sha256 = '{'1' * 64}' WHERE id = {HEAD}",
                                         "id does not match"),
    ("snapshot", "summary"): (f"UPDATE snapshot SET summary = 'nothing changed' WHERE id = {HEAD}", "summary"),
    ("snapshot", "store_commit_id"): (f"UPDATE snapshot SET store_commit_id = 'c0ffee' WHERE id = {HEAD}",
                                      UNCHECKED),
    ("ref", "dataset_id"): ("UPDATE ref SET dataset_id = 2 WHERE name = 'v1'", "v1"),
    ("ref", "name"): ("UPDATE ref SET name = 'v2' WHERE name = 'v1'", "tag signs@v2 has no event"),
    ("ref", "kind"): ("UPDATE ref SET kind = 'branch' WHERE name = 'v1'", "kind"),
    ("ref", "snapshot_id"): (f"UPDATE ref SET snapshot_id = {FIRST} WHERE name = 'v1'", "tags never move"),
    ("ref", "updated_at"): ("UPDATE ref SET updated_at = '2001-01-01T00:00:00.000000Z' WHERE name = 'v1'",
                            "updated_at"),
    ("schema_version", "dataset_id"): ("UPDATE schema_version SET dataset_id = 2 WHERE dataset_id = 1 AND version = 2",
                                       "schema version"),
    ("schema_version", "version"): ("UPDATE schema_version SET version = 5 WHERE dataset_id = 1 AND version = 2",
                                    "signs#5"),
    ("schema_version", "fingerprint"): (f"UPDATE schema_version SET fingerprint = '{'0' * 64}' WHERE version = 2 "
                                        "AND dataset_id = 1", "fingerprint"),
    ("schema_version", "arrow_schema"): ("UPDATE schema_version SET arrow_schema = '[]' WHERE version = 2 "
                                         "AND dataset_id = 1", "arrow_schema"),
    ("schema_version", "compatibility"): ("UPDATE schema_version SET compatibility = 'breaking' WHERE version = 2 "
                                          "AND dataset_id = 1", "compatibility"),
    ("schema_version", "changes"): ("UPDATE schema_version SET changes = '[]' WHERE version = 2 AND dataset_id = 1",
                                    "changes differ"),
    ("schema_version", "first_snapshot_id"): (f"UPDATE schema_version SET first_snapshot_id = {FIRST} "
                                              "WHERE version = 2 AND dataset_id = 1", "first_snapshot_id"),
    ("schema_version", "created_at"): ("UPDATE schema_version SET created_at = '2001-01-01T00:00:00.000000Z' "
                                       "WHERE version = 2 AND dataset_id = 1", "created_at"),
    ("api_token", "id"): ("UPDATE api_token SET id = 77 WHERE name = 'etl'", None),  # a row id: nothing to detect
    ("api_token", "name"): ("UPDATE api_token SET name = 'root' WHERE name = 'etl'", "token 'root' has no"),
    ("api_token", "role"): ("UPDATE api_token SET role = 'admin' WHERE name = 'etl'", "role is 'admin'"),
    ("api_token", "datasets"): ("UPDATE api_token SET datasets = '[]' WHERE name = 'etl'", "datasets"),
    ("api_token", "secret_sha256"): (f"UPDATE api_token SET secret_sha256 = '{'2' * 64}' WHERE name = 'etl'",
                                     "secret_sha256"),
    ("api_token", "created_at"): ("UPDATE api_token SET created_at = '2001-01-01T00:00:00.000000Z' "
                                  "WHERE name = 'etl'", "created_at"),
    ("api_token", "created_by"): ("UPDATE api_token SET created_by = 'mallory' WHERE name = 'etl'", "created_by"),
    ("api_token", "expires_at"): ("UPDATE api_token SET expires_at = NULL WHERE name = 'etl'", "expires_at"),
    ("api_token", "revoked_at"): ("UPDATE api_token SET revoked_at = NULL WHERE name = 'old'", "revoked_at"),
}

# Whole-ref attacks of the adversarial review, each also named.
REF_ATTACKS: dict[str, tuple[list[str], str]] = {
    "main rolled back": ([f"UPDATE ref SET snapshot_id = {FIRST} WHERE name = 'main' AND dataset_id = 1"],
                         "branch signs@main points at"),
    "head deleted and main moved": ([f"UPDATE ref SET snapshot_id = {SECOND} WHERE name = 'main' AND dataset_id = 1",
                                     "DELETE FROM snapshot WHERE seq = 4 AND dataset_id = 1"],
                                    "is missing from the catalog"),
    "tag deleted": (["DELETE FROM ref WHERE name = 'v1'"], "tag signs@v1 recorded by the audit chain"),
    "tag added": ([f"INSERT INTO ref VALUES (1, 'v9', 'tag', {FIRST}, '2026-01-01T00:00:00.000000Z')"],
                  "tag signs@v9 has no event"),
    "branch added": ([f"INSERT INTO ref VALUES (1, 'dev', 'branch', {FIRST}, '2026-01-01T00:00:00.000000Z')"],
                     "branch signs@dev has no event"),
    "dataset deleted": (["DELETE FROM ref WHERE dataset_id = 2", "DELETE FROM snapshot WHERE dataset_id = 2",
                         "DELETE FROM schema_version WHERE dataset_id = 2", "DELETE FROM dataset WHERE id = 2"],
                        "dataset 'other' recorded by the audit chain"),
    "token deleted": (["DELETE FROM api_token WHERE name = 'etl'"], "token 'etl' recorded by the audit chain"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with two datasets, four snapshots of `signs` (a schema change, deletes, a compaction), a tag and
    two tokens (one revoked), on SQLite; each test tampers with a copy."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL"):
            mp.delenv(name, raising=False)
        home = create_home(tmp_path_factory.mktemp("tamper") / "home").home
        reg = Registry.open(home)
        try:
            reg.create_dataset("signs", "id", description="street signs", owner="alice")
            reg.create_dataset("other", "id")
            reg.commit("signs", pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]}), message="one")
            reg.commit("signs", pa.table({"id": [1, 2, 3, 4], "label": ["a", "b", "c", "d"]}), message="two")
            reg.tag("signs@main", "v1")
            reg.commit("signs", pa.table({"id": [1, 2, 4], "label": ["a", "x", "d"], "score": [0.1, 0.2, 0.3]}),
                       message="three")
            reg.commit("signs", pa.table({"id": [2], "label": ["y"], "score": [0.5]}), mode="upsert",
                       delete_keys=pa.table({"id": [4]}), message="four")
            reg.commit("other", pa.table({"id": [1]}))
            compact(reg.ctx, "signs@main~1")
            create_token(reg.ctx, "etl", "writer", ["signs"], expires="30d", actor="alice")
            create_token(reg.ctx, "old", "reader", actor="alice")
            revoke_token(reg.ctx, "old", actor="alice")
            report = reg.verify()
            assert report.ok, report.problems
        finally:
            reg.close()
        yield home


def _tampered(pristine: Path, tmp_path: Path, statements: list[str]) -> Path:
    home = tmp_path / "home"
    shutil.copytree(pristine, home)
    with sqlite3.connect(home / "catalog.db") as db:
        for statement in statements:
            assert db.execute(statement).rowcount >= 1, statement
    return home


def _problems(home: Path) -> list[str]:
    reg = Registry.open(home)
    try:
        return reg.verify().problems
    finally:
        reg.close()


def test_every_catalog_column_has_a_tamper_case() -> None:
    columns = {(table, column.name) for table, model in TABLES.items()
               for column in model.__table__.columns}  # type: ignore[attr-defined]
    assert columns == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES), ids=lambda c: f"{c[0]}.{c[1]}")
def test_a_tampered_column_is_named(pristine: Path, tmp_path: Path, case: tuple[str, str]) -> None:
    statement, expected = CASES[case]
    if expected == UNCHECKED:
        pytest.skip("store_commit_id is checked against lakeFS commits only (tests/storage/test_lakefs_adapter.py)")
    problems = _problems(_tampered(pristine, tmp_path, [statement]))
    if expected is None:
        assert problems == []  # a surrogate row id that nothing refers to carries no meaning
        return
    assert problems, f"{case}: not detected"
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("attack", sorted(REF_ATTACKS))
def test_ref_and_row_attacks_are_named(pristine: Path, tmp_path: Path, attack: str) -> None:
    statements, expected = REF_ATTACKS[attack]
    problems = _problems(_tampered(pristine, tmp_path, statements))
    assert any(expected in p for p in problems), problems


def test_verify_exits_1_naming_the_moved_tag(pristine: Path, tmp_path: Path) -> None:
    home = _tampered(pristine, tmp_path, [f"UPDATE ref SET snapshot_id = {HEAD} WHERE name = 'v1'"])
    result = Cli(home=home, cwd=tmp_path)("verify")
    assert result.code == 1, result.stderr
    assert "tag signs@v1 points at" in result.stderr and "tags never move" in result.stderr


def test_a_single_dataset_verify_checks_only_its_rows(pristine: Path, tmp_path: Path) -> None:
    home = _tampered(pristine, tmp_path, ["UPDATE dataset SET owner = 'mallory' WHERE name = 'signs'"])
    reg = Registry.open(home)
    try:
        assert reg.verify("other").ok
        assert any("owner is 'mallory'" in p for p in reg.verify("signs").problems)
    finally:
        reg.close()


def test_the_review_attacks_are_named_on_every_backend(reg: Registry) -> None:
    """The adversarial review's catalog edits, on SQLite and PostgreSQL alike: a moved tag, `main` rolled
    back, the key columns, owner and `added` edited, a token's role raised."""
    from tests.support.audit_helpers import execute

    reg.create_dataset("signs", "id", owner="alice")
    first = reg.commit("signs", pa.table({"id": [1, 2], "label": ["a", "b"]})).snapshot_id
    second = reg.commit("signs", pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]})).snapshot_id
    reg.tag(f"signs@{first}", "v1")
    create_token(reg.ctx, "etl", "reader", actor="alice")
    assert reg.verify().ok
    edits = [("UPDATE ref SET snapshot_id = :s WHERE name = 'v1'", {"s": second}, "tags never move"),
             ("UPDATE ref SET snapshot_id = :s WHERE name = 'main'", {"s": first}, "branch signs@main points at"),
             ("UPDATE dataset SET key_columns = '[\"label\"]'", {}, "key columns"),
             ("UPDATE dataset SET owner = 'mallory'", {}, "owner is 'mallory'"),
             ("UPDATE snapshot SET added = 99 WHERE id = :s", {"s": second}, "added is 99"),
             ("UPDATE api_token SET role = 'admin' WHERE name = 'etl'", {}, "role is 'admin'")]
    for sql, params, _ in edits:
        execute(reg.ctx.engine, sql, **params)
    problems = reg.verify().problems
    for _, _, expected in edits:
        assert any(expected in p for p in problems), (expected, problems)
