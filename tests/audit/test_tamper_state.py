"""Tampering with tokens, branch protection, the labeling-sync state and the lineage namespace behind the
registry's back, on SQLite and PostgreSQL (issue 22): `verify` cross-checks each row against the audit chain
and names the table, the row and the column; undoing the edit makes it pass again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry import Registry
from registry.auth.tokens import create_token, revoke_token
from registry.lineage.namespace import fix_namespace
from registry.sync.client import LabelStudioClient
from registry.sync.hooks import register_webhook
from registry.sync.service import sync_label_studio
from tests.conftest import Cli
from tests.support.api_support import serve
from tests.support.audit_helpers import execute
from tests.sync.test_sync_audit import _tasks, fake_label_studio

TABLES = ("api_token", "branch_protection", "label_sync", "lineage_namespace")
OLD = "'2001-01-01T00:00:00.000000Z'"
LATE = "'2999-01-01T00:00:00.000000Z'"
SIGNS = "(SELECT id FROM dataset WHERE name = 'signs')"
OTHER = "(SELECT id FROM dataset WHERE name = 'other')"
ANIMALS = "(SELECT id FROM dataset WHERE name = 'animals')"
SECRET = "'" + "f" * 64 + "'"

# (table, column) -> (SQL that changes it, text the verify report must contain; None: a surrogate row id)
CASES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("api_token", "id"): ("UPDATE api_token SET id = id + 1000 WHERE name = 'etl'", None),
    ("api_token", "name"): ("UPDATE api_token SET name = 'root' WHERE name = 'etl'",
                            "token 'root' has no token.create event"),
    ("api_token", "role"): ("UPDATE api_token SET role = 'admin' WHERE name = 'etl'",
                            "token 'etl': role is 'admin' in the catalog, but the audit chain recorded 'writer'"),
    ("api_token", "datasets"): ("UPDATE api_token SET datasets = '[]' WHERE name = 'etl'",
                                "token 'etl': datasets is [] in the catalog, but the audit chain recorded ['signs']"),
    ("api_token", "secret_sha256"): (f"UPDATE api_token SET secret_sha256 = {SECRET} WHERE name = 'etl'",
                                     "token 'etl': secret_sha256 is 'fff"),
    ("api_token", "created_at"): (f"UPDATE api_token SET created_at = {OLD} WHERE name = 'etl'",
                                  "token 'etl': created_at is '2001"),
    ("api_token", "created_by"): ("UPDATE api_token SET created_by = 'mallory' WHERE name = 'etl'",
                                  "token 'etl': created_by is 'mallory'"),
    ("api_token", "expires_at"): (f"UPDATE api_token SET expires_at = {LATE} WHERE name = 'etl'",
                                  "token 'etl': expires_at is '2999-01-01T00:00:00.000000Z' in the catalog"),
    ("api_token", "revoked_at"): ("UPDATE api_token SET revoked_at = NULL WHERE name = 'old'",
                                  "token 'old': revoked_at is None in the catalog"),
    ("branch_protection", "dataset_id"): (f"UPDATE branch_protection SET dataset_id = {OTHER}",
                                          "branch_protection other@main has no branch.protect event"),
    ("branch_protection", "branch"): ("UPDATE branch_protection SET branch = 'fix'",
                                      "branch_protection signs@fix has no branch.protect event"),
    ("branch_protection", "created_at"): (f"UPDATE branch_protection SET created_at = {OLD}",
                                          "branch_protection signs@main: created_at is '2001"),
    ("branch_protection", "created_by"): ("UPDATE branch_protection SET created_by = 'mallory'",
                                          "branch_protection signs@main: created_by is 'mallory'"),
    ("label_sync", "dataset_id"): (f"UPDATE label_sync SET dataset_id = {SIGNS}",
                                   "label_sync signs has no sync.state event"),
    ("label_sync", "tool"): ("UPDATE label_sync SET tool = 'cvat'", "label_sync animals: tool is 'cvat'"),
    ("label_sync", "server_url"): ("UPDATE label_sync SET server_url = 'http://evil.example'",
                                   "label_sync animals: server_url is 'http://evil.example'"),
    ("label_sync", "project_id"): ("UPDATE label_sync SET project_id = 9", "label_sync animals: project_id is 9"),
    ("label_sync", "key_field"): ("UPDATE label_sync SET key_field = 'image'",
                                  "label_sync animals: key_field is 'image'"),
    ("label_sync", "guideline_version"): ("UPDATE label_sync SET guideline_version = 'v9'",
                                          "label_sync animals: guideline_version is 'v9'"),
    ("label_sync", "last_updated_at"): (f"UPDATE label_sync SET last_updated_at = {LATE}",
                                        "label_sync animals: last_updated_at is '2999-01-01T00:00:00.000000Z' in the "
                                        "catalog"),
    ("label_sync", "last_snapshot_id"): ("UPDATE label_sync SET last_snapshot_id = NULL",
                                         "label_sync animals: last_snapshot_id is None"),
    ("label_sync", "state_sha256"): (f"UPDATE label_sync SET state_sha256 = {SECRET}",
                                     "label_sync animals: state_sha256 is 'fff"),
    ("label_sync", "tasks"): ("UPDATE label_sync SET tasks = 1", "label_sync animals: tasks is 1"),
    ("label_sync", "annotations"): ("UPDATE label_sync SET annotations = 12345",
                                    "label_sync animals: annotations is 12345"),
    ("label_sync", "hook_secret_sha256"): (f"UPDATE label_sync SET hook_secret_sha256 = {SECRET}",
                                           "label_sync animals: hook_secret_sha256 is 'fff"),
    ("label_sync", "synced_at"): (f"UPDATE label_sync SET synced_at = {OLD}", "label_sync animals: synced_at is '2001"),
    ("lineage_namespace", "id"): ("UPDATE lineage_namespace SET id = 2", "lineage_namespace row 2: id is 2"),
    ("lineage_namespace", "namespace"): ("UPDATE lineage_namespace SET namespace = 'registry://elsewhere'",
                                         "lineage_namespace row 1: namespace is 'registry://elsewhere'"),
    ("lineage_namespace", "fixed_at"): (f"UPDATE lineage_namespace SET fixed_at = {OLD}",
                                        "lineage_namespace row 1: fixed_at is '2001"),
}

# Rows inserted or deleted: name -> (SQL, text the verify report must contain)
ATTACKS: dict[str, tuple[str, str]] = {
    "token inserted without its event": (
        "INSERT INTO api_token (name, role, datasets, secret_sha256, created_at, created_by) "
        f"SELECT 'root', 'admin', '[]', {SECRET}, created_at, created_by FROM api_token WHERE name = 'etl'",
        "token 'root' has no token.create event in the audit chain"),
    "token deleted": ("DELETE FROM api_token WHERE name = 'etl'", "token 'etl' recorded by the audit chain"),
    "protection removed": ("DELETE FROM branch_protection",
                           "branch_protection signs@main recorded by the audit chain (event"),
    "protection added": (
        "INSERT INTO branch_protection (dataset_id, branch, created_at, created_by) "
        "SELECT dataset_id, 'fix', created_at, created_by FROM branch_protection",
        "branch_protection signs@fix has no branch.protect event in the audit chain"),
    "sync state inserted": (
        "INSERT INTO label_sync (dataset_id, tool, server_url, project_id, tasks, annotations) "
        f"VALUES ({SIGNS}, 'label-studio', 'http://x', 1, 0, 0)", "label_sync signs has no sync.state event"),
    "namespace deleted": ("DELETE FROM lineage_namespace", "lineage_namespace recorded by the audit chain"),
}


def _hooks_too(app: FastAPI) -> FastAPI:
    @app.post("/api/webhooks/")
    def webhook() -> dict[str, Any]:
        return {"id": 1}

    return app


def _setup(reg: Registry) -> None:
    """The lineage namespace fixed, tokens (one scoped with an expiry, one revoked), `signs@main` protected
    (`fix` protected and unprotected again), a dataset synced twice from a stand-in Label Studio
    with a webhook registered."""
    fix_namespace(reg.ctx, "registry://reg-test")
    reg.create_dataset("signs", "id", owner="alice")
    reg.create_dataset("other", "id", owner="alice")
    reg.commit("signs", pa.table({"id": [1, 2], "label": ["a", "b"]}))
    reg.commit("other", pa.table({"id": [1]}))
    reg.branch("signs@fix")
    reg.protect("signs@main", actor="alice")
    reg.protect("signs@fix", actor="alice")
    reg.protect("signs@fix", protected=False, actor="alice")
    create_token(reg.ctx, "etl", "writer", ["signs"], expires="30d", actor="alice")
    create_token(reg.ctx, "old", "reader", actor="alice")
    revoke_token(reg.ctx, "old", actor="alice")
    state: dict[str, Any] = {"tasks": _tasks(1)}
    with serve(_hooks_too(fake_label_studio(state))) as url:  # type: ignore[arg-type]
        sync_label_studio(reg.ctx, "animals", url=url, project=1, token="t")
        with LabelStudioClient(url, "t") as client:
            register_webhook(reg.ctx, "animals", client, 1, "http://127.0.0.1:9/")
        state["tasks"] = _tasks(2)
        sync_label_studio(reg.ctx, "animals", url=url, project=1, token="t")
    report = reg.verify()
    assert report.ok, report.problems


def _restore(reg: Registry, saved: dict[str, list[dict[str, Any]]]) -> None:
    for table, rows in saved.items():
        execute(reg.ctx.engine, f"DELETE FROM {table}")
        for row in rows:
            execute(reg.ctx.engine, f"INSERT INTO {table} ({', '.join(row)}) VALUES "
                                    f"({', '.join(':' + c for c in row)})", **row)


def test_every_state_tamper_is_named(reg: Registry) -> None:
    _setup(reg)
    with reg.ctx.engine.connect() as conn:
        saved = {t: [dict(r) for r in conn.execute(text(f"SELECT * FROM {t}")).mappings().all()] for t in TABLES}
    cases = {f"{t}.{c}": v for (t, c), v in CASES.items()} | ATTACKS
    for case, (tamper, expected) in cases.items():
        execute(reg.ctx.engine, tamper)
        problems = reg.verify().problems
        if expected is None:
            assert problems == [], (case, problems)
        else:
            assert any(expected in p for p in problems), (case, expected, problems)
        _restore(reg, saved)
        report = reg.verify()
        assert report.ok, (case, report.problems)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_verify_exits_1_naming_a_moved_resume_point(reg: Registry, tmp_path: Path) -> None:
    """The sync's resume point moved forward: the next sync would skip every change before it."""
    _setup(reg)
    execute(reg.ctx.engine, f"UPDATE label_sync SET last_updated_at = {LATE}")
    result = Cli(home=reg.home, cwd=tmp_path)("verify")
    assert result.code == 1, result.stderr
    assert "label_sync animals: last_updated_at is '2999-01-01T00:00:00.000000Z' in the catalog" in result.stderr


def test_an_unprotected_branch_and_a_deleted_one_leave_no_protection_to_find(reg: Registry) -> None:
    reg.create_dataset("signs", "id", owner="alice")
    reg.commit("signs", pa.table({"id": [1]}))
    reg.branch("signs@tmp")
    reg.protect("signs@tmp", actor="alice")
    reg.protect("signs@tmp", actor="alice")  # protecting twice keeps the first row
    reg.protect("signs@tmp", protected=False, actor="alice")
    reg.delete_branch("signs@tmp")
    assert reg.verify().ok
