"""Tamper evidence: any changed byte in any referenced object, or in a catalog field a snapshot id covers,
makes ``registry verify`` fail (exit 1) and name what is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import text

from registry import Registry
from registry.cli.main import main
from registry.db import transaction
from registry.models import SnapshotRow
from registry.snapshots.manifest import load_manifest
from tests.conftest import Cli, CliResult

NAME = "labels"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


def _rows(ids: list[str], score: int) -> pa.Table:
    return pa.table({"id": ids, "label": [f"l-{i}" for i in ids],
                     "score": pa.array([score] * len(ids), pa.int64())})


@dataclass(frozen=True)
class Built:
    """A small history whose objects cover every kind the store holds."""

    ids: list[str]  # oldest first
    objects: dict[str, str]  # role -> sha


def _build(reg: Registry) -> Built:
    reg.create_dataset(NAME, "id")
    first = reg.commit(NAME, _rows(["a", "b", "c", "d", "e"], 1), message="base").snapshot_id
    second = reg.commit(NAME, _rows(["b", "f"], 2), mode="upsert", delete_keys=pa.table({"id": ["c"]}),
                        message="upsert and delete").snapshot_id
    third = reg.commit(NAME, _rows(["a", "g"], 3), mode="upsert", message="upsert").snapshot_id
    compacted = reg.compact(NAME)
    assert compacted.layers_before == 3 and compacted.layers_after == 1
    with transaction(reg.ctx.engine) as session:
        rows = {i: session.get(SnapshotRow, i) for i in (first, second, third)}
    s1, s2, s3 = (rows[i] for i in (first, second, third))
    assert s1 is not None and s2 is not None and s3 is not None and s2.deletes_sha256 is not None
    [layer] = load_manifest(reg.ctx, s3).layers
    assert layer.rows is not None
    objects = {
        "base change rows": s1.change_sha256,
        "upsert change rows": s2.change_sha256,
        "deleted keys": s2.deletes_sha256,
        "layered manifest": s2.manifest_sha256,
        "compacted manifest": s3.manifest_sha256,
        "compacted layer": layer.rows,
    }
    assert len(set(objects.values())) == len(objects)
    assert reg.verify().ok
    return Built([first, second, third], objects)


def _object_path(home: Path, sha: str) -> Path:
    path = home / "objects" / sha[:2] / sha[2:]
    assert path.is_file(), f"object {sha} is not where the store layout says"
    return path


def _flip_one_byte(path: Path, where: float = 0.5) -> bytes:
    original = path.read_bytes()
    data = bytearray(original)
    data[min(len(data) - 1, int(len(data) * where))] ^= 0x20
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return original


def _verify_json(home: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object], str]:
    """``registry verify --json`` through the CLI's ``main`` in this process."""
    capsys.readouterr()
    code = main(["--home", str(home), "verify", "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _assert_verify_fails_naming(result: CliResult, needle: str) -> None:
    assert result.code == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("verify failed: ")
    assert needle in result.stderr


@pytest.fixture
def built(reg: Registry) -> Built:
    return _build(reg)


@SQLITE_ONLY
@pytest.mark.parametrize("role", ["base change rows", "upsert change rows", "deleted keys",
                                  "layered manifest", "compacted manifest", "compacted layer"])
def test_one_flipped_byte_in_any_object_fails_verify(role: str, built: Built, home: Path, cli: Cli,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    sha = built.objects[role]
    path = _object_path(home, sha)
    original = _flip_one_byte(path)

    _assert_verify_fails_naming(cli("verify"), sha)
    code, report, err = _verify_json(home, capsys)
    assert code == 1 and err == ""
    assert report["ok"] is False
    problems = report["problems"]
    assert isinstance(problems, list) and problems and any(sha in p for p in problems)
    assert all(other not in " ".join(problems) for other in built.objects.values() if other != sha)

    path.write_bytes(original)
    with Registry.open(home) as reg:
        assert reg.verify().ok


@SQLITE_ONLY
def test_flipping_the_first_or_last_byte_is_caught_too(built: Built, home: Path) -> None:
    with Registry.open(home) as reg:
        for where in (0.0, 1.0):
            for sha in built.objects.values():
                path = _object_path(home, sha)
                original = _flip_one_byte(path, where)
                report = reg.verify()
                assert not report.ok and any(sha in p for p in report.problems), (sha, where)
                path.write_bytes(original)
        assert reg.verify().ok


@SQLITE_ONLY
@pytest.mark.parametrize("role", ["deleted keys", "compacted layer", "compacted manifest"])
def test_a_missing_object_fails_verify(role: str, built: Built, home: Path, cli: Cli,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    sha = built.objects[role]
    _object_path(home, sha).unlink()
    if role == "deleted keys":
        _assert_verify_fails_naming(cli("verify"), sha)
    code, report, _ = _verify_json(home, capsys)
    assert code == 1 and report["ok"] is False
    problems = report["problems"]
    assert isinstance(problems, list) and any(sha in p and "missing" in p for p in problems)


@SQLITE_ONLY
def test_verify_of_one_dataset_ignores_another_datasets_damage(built: Built, reg: Registry,
                                                               home: Path) -> None:
    reg.create_dataset("other", "id")
    reg.commit("other", _rows(["x"], 1))
    _flip_one_byte(_object_path(home, built.objects["compacted layer"]))
    assert reg.verify("other").ok
    assert not reg.verify(NAME).ok
    assert not reg.verify().ok


def _update_snapshot(reg: Registry, snapshot_id: str, column: str, value: object) -> None:
    with transaction(reg.ctx.engine) as session:
        session.execute(text(f"UPDATE snapshot SET {column} = :value WHERE id = :id"),
                        {"value": value, "id": snapshot_id})


def test_editing_the_message_in_the_catalog_fails_verify(built: Built, reg: Registry, home: Path,
                                                         cli: Cli) -> None:
    target = built.ids[1]
    _update_snapshot(reg, target, "message", "x")
    result = cli("verify")
    _assert_verify_fails_naming(result, f"{NAME}@{target[:12]}")
    assert "id does not match" in result.stderr
    assert built.ids[0][:12] not in result.stderr and built.ids[2][:12] not in result.stderr


@pytest.mark.parametrize("column", ["author", "created_at", "parents", "schema_fingerprint", "change_sha256",
                                    "deletes_sha256"])
def test_editing_any_field_the_id_covers_fails_verify(column: str, built: Built, reg: Registry) -> None:
    target = built.ids[1]
    with transaction(reg.ctx.engine) as session:
        row = session.get(SnapshotRow, target)
        assert row is not None
        original = getattr(row, column)
    forged = {"author": "mallory", "created_at": "2020-01-01T00:00:00.000000Z", "parents": "[]",
              "schema_fingerprint": "0" * 64, "change_sha256": built.objects["base change rows"],
              "deletes_sha256": None}[column]
    _update_snapshot(reg, target, column, forged)
    report = reg.verify()
    assert not report.ok
    assert any(f"{NAME}@{target[:12]}: id does not match" in p for p in report.problems), report.problems
    _update_snapshot(reg, target, column, original)
    assert reg.verify().ok


def test_editing_the_row_count_in_the_catalog_fails_verify(built: Built, reg: Registry) -> None:
    _update_snapshot(reg, built.ids[2], "rows", 999)
    report = reg.verify()
    assert not report.ok
    assert any(f"{NAME}@{built.ids[2][:12]}" in p and "999" in p for p in report.problems), report.problems
