"""Tampering with the governance and lineage rows of the catalog (issue 22): policies, gate results, waivers,
pins and lineage edges, edited, inserted or deleted behind the registry's back on SQLite and PostgreSQL.
`verify` cross-checks each against the audit chain and names the object (exit 1); undoing the edit makes
it pass again, so each case is detected on its own."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import text

from registry import Registry
from registry.lineage.emit import LineageRun
from registry.lineage.intake import ingest_run_event
from registry.lineage.models import LineageEdgeRow
from registry.lineage.namespace import registry_namespace
from registry.quality.models import GateResultRow, PinRow, PolicyRow, WaiverRow
from tests.conftest import Cli
from tests.support.audit_helpers import execute

FAILING = "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 100\n"


def _one(reg: Registry, sql: str, **params: Any) -> Any:
    with reg.ctx.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def _setup(reg: Registry, tmp_path: Path) -> dict[str, str]:
    """Two datasets; `signs` has a policy, a failed gate result, a waiver, a pin, a training read, a declared
    source and an ingested run that read it."""
    reg.create_dataset("raw", "id", owner="alice")
    raw = reg.commit("raw", pa.table({"id": [1], "x": ["a"]})).snapshot_id
    reg.create_dataset("signs", "id", owner="alice")
    first = reg.commit("signs", pa.table({"id": [1, 2], "label": ["a", "b"]})).snapshot_id
    head = reg.commit("signs", pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]}),
                      lineage=LineageRun(sources=("raw@main",))).snapshot_id
    reg.set_policy("signs", FAILING, actor="alice")
    result = reg.qa_run("signs@main", actor="alice")
    assert result.status == "failed"
    waiver = reg.waive("signs@main", "known small sample", expires="30d", actor="alice")
    entry = reg.pin("signs@main", lockfile=tmp_path / "registry.lock", job="train", actor="alice")
    reg.load(entry, job="train")
    ingest_run_event(reg.ctx, {
        "eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "airflow", "name": "train_signs"},
        "inputs": [{"namespace": registry_namespace(reg.ctx), "name": "signs",
                    "facets": {"version": {"datasetVersion": head}}}],
        "outputs": [{"namespace": "s3://models", "name": "resnet/42"}]})
    report = reg.verify()
    assert report.ok, report.problems
    return {"raw": raw, "first": first, "head": head, "result": result.id, "waiver": waiver.id,
            "pin": _one(reg, "SELECT id FROM dataset_pin")}


TABLES = {"qa_policy": PolicyRow, "gate_result": GateResultRow, "gate_waiver": WaiverRow, "dataset_pin": PinRow,
          "lineage_edge": LineageEdgeRow}
RAW = "(SELECT id FROM dataset WHERE name = 'raw')"
OLD = "'2001-01-01T00:00:00.000000Z'"
PARENT = "kind = 'parent' AND dst_version = :head"

# (table, column) -> (SQL that changes it, text the verify report must contain; None: a surrogate row id that
# nothing refers to); :names are filled from _setup
CASES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("qa_policy", "dataset_id"): (f"UPDATE qa_policy SET dataset_id = {RAW}", "policy raw#1 has no policy.set event"),
    ("qa_policy", "version"): ("UPDATE qa_policy SET version = 5", "policy signs#5 has no policy.set event"),
    ("qa_policy", "policy_hash"): (f"UPDATE qa_policy SET policy_hash = '{'0' * 64}'", "policy_hash is '000"),
    ("qa_policy", "document"): ("UPDATE qa_policy SET document = document || '# loosened'",
                                "policy signs#1: document is not the one the audit chain recorded"),
    ("qa_policy", "checks"): ("UPDATE qa_policy SET checks = replace(checks, '100', '1')",
                              "policy signs#1: checks do not hash to its policy_hash"),
    ("qa_policy", "maintainers"): ("UPDATE qa_policy SET maintainers = '[\"mallory\"]'",
                                   "policy signs#1: maintainers is ['mallory']"),
    ("qa_policy", "created_at"): (f"UPDATE qa_policy SET created_at = {OLD}", "policy signs#1: created_at is '2001"),
    ("qa_policy", "created_by"): ("UPDATE qa_policy SET created_by = 'mallory'", "created_by is 'mallory'"),
    ("gate_result", "id"): ("UPDATE gate_result SET id = 'forged'", "gate result forged of signs@"),
    ("gate_result", "dataset_id"): (f"UPDATE gate_result SET dataset_id = {RAW}", "gate result :result of raw@"),
    ("gate_result", "snapshot_id"): ("UPDATE gate_result SET snapshot_id = :first", "snapshot_id is ':first'"),
    ("gate_result", "policy_version"): ("UPDATE gate_result SET policy_version = 7", "policy_version is 7"),
    ("gate_result", "policy_hash"): (f"UPDATE gate_result SET policy_hash = '{'0' * 64}'", "policy_hash is '000"),
    ("gate_result", "status"): ("UPDATE gate_result SET status = 'passed'",
                                "status is 'passed' in the catalog, but the audit chain recorded 'failed'"),
    ("gate_result", "checks"): ("UPDATE gate_result SET checks = '[]'", "checks (SHA-256)"),
    ("gate_result", "created_at"): (f"UPDATE gate_result SET created_at = {OLD}", "created_at is '2001"),
    ("gate_result", "created_by"): ("UPDATE gate_result SET created_by = 'mallory'", "created_by is 'mallory'"),
    ("gate_result", "duration_ms"): ("UPDATE gate_result SET duration_ms = 999999", "duration_ms is 999999"),
    ("gate_waiver", "id"): ("UPDATE gate_waiver SET id = 'forged'", "waiver forged of signs@"),
    ("gate_waiver", "dataset_id"): (f"UPDATE gate_waiver SET dataset_id = {RAW}", "waiver :waiver of raw@"),
    ("gate_waiver", "snapshot_id"): ("UPDATE gate_waiver SET snapshot_id = :first", "snapshot_id is ':first'"),
    ("gate_waiver", "checks"): ("UPDATE gate_waiver SET checks = '[\"row_count\"]'", "checks is ['row_count']"),
    ("gate_waiver", "reason"): ("UPDATE gate_waiver SET reason = 'x'", "reason is 'x'"),
    ("gate_waiver", "expires_at"): ("UPDATE gate_waiver SET expires_at = '2999-01-01T00:00:00.000000Z'",
                                    "expires_at is '2999-01-01T00:00:00.000000Z' in the catalog"),
    ("gate_waiver", "created_at"): (f"UPDATE gate_waiver SET created_at = {OLD}", "created_at is '2001"),
    ("gate_waiver", "created_by"): ("UPDATE gate_waiver SET created_by = 'mallory'", "created_by is 'mallory'"),
    ("dataset_pin", "id"): ("UPDATE dataset_pin SET id = 'forged'", "pin forged of signs@"),
    ("dataset_pin", "dataset_id"): (f"UPDATE dataset_pin SET dataset_id = {RAW}", "pin :pin of raw@"),
    ("dataset_pin", "snapshot_id"): ("UPDATE dataset_pin SET snapshot_id = :first", "snapshot_id is ':first'"),
    ("dataset_pin", "requested_ref"): ("UPDATE dataset_pin SET requested_ref = 'signs@v9'",
                                       "requested_ref is 'signs@v9'"),
    ("dataset_pin", "job"): ("UPDATE dataset_pin SET job = 'other'", "job is 'other'"),
    ("dataset_pin", "content_hash"): ("UPDATE dataset_pin SET content_hash = 'sha256:' || :first",
                                      "content_hash is 'sha256::first'"),
    ("dataset_pin", "gate_result_id"): ("UPDATE dataset_pin SET gate_result_id = 'forged'",
                                        "gate_result_id is 'forged'"),
    ("dataset_pin", "waiver_id"): ("UPDATE dataset_pin SET waiver_id = 'forged'", "waiver_id is 'forged'"),
    ("dataset_pin", "lockfile"): ("UPDATE dataset_pin SET lockfile = '/tmp/x.lock'", "lockfile is '/tmp/x.lock'"),
    ("dataset_pin", "pinned_at"): (f"UPDATE dataset_pin SET pinned_at = {OLD}", "pinned_at is '2001"),
    ("dataset_pin", "pinned_by"): ("UPDATE dataset_pin SET pinned_by = 'mallory'", "pinned_by is 'mallory'"),
    ("lineage_edge", "id"): ("UPDATE lineage_edge SET id = id + 1000", None),
    ("lineage_edge", "kind"): (f"UPDATE lineage_edge SET kind = 'consume' WHERE {PARENT}",
                               "lineage edge consume signs@:first -> signs@:head: no lineage.ingest event"),
    ("lineage_edge", "src_kind"): (f"UPDATE lineage_edge SET src_kind = 'dataset' WHERE {PARENT}",
                                   "the audit chain records no such parent"),
    ("lineage_edge", "src_namespace"): (f"UPDATE lineage_edge SET src_namespace = 'elsewhere' WHERE {PARENT}",
                                        "src_namespace is 'elsewhere'"),
    ("lineage_edge", "src_name"): ("UPDATE lineage_edge SET src_name = 'secret' WHERE kind = 'source'",
                                   "lineage edge source secret@:raw -> signs@:head: the audit chain records no such "
                                   "source"),
    ("lineage_edge", "src_version"): (f"UPDATE lineage_edge SET src_version = :raw WHERE {PARENT}",
                                      "lineage edge parent signs@:raw -> signs@:head: the audit chain records no such "
                                      "parent"),
    ("lineage_edge", "dst_kind"): (f"UPDATE lineage_edge SET dst_kind = 'run' WHERE {PARENT}",
                                   "its snapshot has no commit event"),
    ("lineage_edge", "dst_namespace"): (f"UPDATE lineage_edge SET dst_namespace = 'elsewhere' WHERE {PARENT}",
                                        "dst_namespace is 'elsewhere'"),
    ("lineage_edge", "dst_name"): (f"UPDATE lineage_edge SET dst_name = 'raw' WHERE {PARENT}",
                                   "the audit chain records that snapshot in dataset 'signs'"),
    ("lineage_edge", "dst_version"): ("UPDATE lineage_edge SET dst_version = :first WHERE kind = 'source'",
                                      "lineage edge source raw@:raw -> signs@:first"),
    ("lineage_edge", "run_id"): ("UPDATE lineage_edge SET run_id = 'x' WHERE kind = 'consume'",
                                 "no lineage.ingest event of run 'x' lists it"),
    ("lineage_edge", "created_at"): (f"UPDATE lineage_edge SET created_at = {OLD} WHERE {PARENT}",
                                     "created_at is '2001"),
}

# Rows inserted or deleted, and whole-row attacks: name -> (SQL, text the verify report must contain)
ATTACKS: dict[str, tuple[str, str]] = {
    "policy inserted": (
        "INSERT INTO qa_policy (dataset_id, version, policy_hash, document, checks, maintainers, created_at, "
        "created_by) SELECT dataset_id, 2, policy_hash, document, checks, maintainers, created_at, created_by "
        "FROM qa_policy WHERE version = 1", "policy signs#2 has no policy.set event"),
    "policy deleted": ("DELETE FROM qa_policy", "policy signs#1 recorded by the audit chain"),
    "gate result deleted": ("DELETE FROM gate_result", "gate result :result recorded by the audit chain"),
    "waiver inserted without an event": (
        "INSERT INTO gate_waiver (id, dataset_id, snapshot_id, checks, reason, expires_at, created_at, created_by) "
        "SELECT 'forged', dataset_id, snapshot_id, checks, reason, NULL, created_at, created_by FROM gate_waiver",
        "waiver forged of signs@"),
    "waiver deleted": ("DELETE FROM gate_waiver", "waiver :waiver recorded by the audit chain"),
    "pin inserted": (
        "INSERT INTO dataset_pin (id, dataset_id, snapshot_id, requested_ref, job, content_hash, gate_result_id, "
        "waiver_id, lockfile, pinned_at, pinned_by) SELECT 'forged', dataset_id, snapshot_id, requested_ref, job, "
        "content_hash, gate_result_id, waiver_id, lockfile, pinned_at, pinned_by FROM dataset_pin",
        "pin forged of signs@"),
    "pin deleted": ("DELETE FROM dataset_pin", "pin :pin recorded by the audit chain"),
    "read edge forged": ("UPDATE lineage_edge SET src_version = :first WHERE kind = 'read'",
                         "the audit chain records no training read or pin of that snapshot"),
    "consume edge forged": ("UPDATE lineage_edge SET src_version = :first WHERE kind = 'consume'", "lists it"),
    "produce edge forged": ("UPDATE lineage_edge SET dst_name = 'resnet/43' WHERE kind = 'produce'", "lists it"),
}


def _fill(sql: str, names: dict[str, str]) -> str:
    for name, value in sorted(names.items(), key=lambda kv: -len(kv[0])):
        sql = sql.replace(f":{name}", value)
    return sql


def test_every_governance_column_has_a_tamper_case() -> None:
    columns = {(table, column.name) for table, model in TABLES.items()
               for column in model.__table__.columns}  # type: ignore[attr-defined]
    assert columns == set(CASES)


def test_every_governance_tamper_is_named(reg: Registry, tmp_path: Path) -> None:
    names = _setup(reg, tmp_path)
    with reg.ctx.engine.connect() as conn:
        saved = {t: [dict(r) for r in conn.execute(text(f"SELECT * FROM {t}")).mappings().all()] for t in TABLES}
    cases = {f"{t}.{c}": v for (t, c), v in CASES.items()} | ATTACKS
    for case, (tamper, expected) in cases.items():
        sql = _fill(tamper, {k: f"'{v}'" for k, v in names.items()})
        execute(reg.ctx.engine, sql)
        problems = reg.verify().problems
        if expected is None:
            assert problems == [], (case, problems)
        else:
            shown = _fill(expected, names)
            assert any(shown in p for p in problems), (case, shown, problems)
        _restore(reg, saved)
        report = reg.verify()
        assert report.ok, (case, report.problems)


def _restore(reg: Registry, saved: dict[str, list[dict[str, Any]]]) -> None:
    """Put back every row of the governance tables as it was."""
    for table, rows in saved.items():
        execute(reg.ctx.engine, f"DELETE FROM {table}")
        for row in rows:
            columns = ", ".join(row)
            execute(reg.ctx.engine, f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in row)})",
                    **row)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_verify_exits_1_naming_a_flipped_gate_result(reg: Registry, tmp_path: Path) -> None:
    names = _setup(reg, tmp_path)
    execute(reg.ctx.engine, "UPDATE gate_result SET status = 'passed' WHERE id = :r", r=names["result"])
    result = Cli(home=reg.home, cwd=tmp_path)("verify")
    assert result.code == 1, result.stderr
    assert f"gate result {names['result']} of signs@{names['head'][:12]}: status is 'passed'" in result.stderr


def test_a_gated_merge_records_its_gate_result_and_verify_checks_it(reg: Registry) -> None:
    """The gate result a merge stores has no gate.evaluate event of its own: the merge event holds it."""
    reg.create_dataset("signs", "id", owner="alice")
    reg.commit("signs", pa.table({"id": [1, 2], "label": ["a", "b"]}))
    reg.set_policy("signs", "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 1\n", actor="alice")
    reg.branch("signs@fix")
    reg.commit("signs@fix", pa.table({"id": [3], "label": ["c"]}), mode="upsert")
    reg.merge("signs@fix")  # fast-forward
    reg.commit("signs@fix", pa.table({"id": [4], "label": ["d"]}), mode="upsert")
    reg.commit("signs", pa.table({"id": [5], "label": ["e"]}), mode="upsert")
    reg.merge("signs@fix")  # a merge snapshot
    merges = reg.audit_log(dataset="signs", action="merge")
    assert len(merges) == 2 and all(m.details["gate_result"]["status"] == "passed" for m in merges)
    report = reg.verify()
    assert report.ok, report.problems
    result = merges[-1].details["gate_result"]["gate_result"]
    execute(reg.ctx.engine, "UPDATE gate_result SET policy_version = 7 WHERE id = :r", r=result)
    assert any(f"gate result {result} of signs@" in p and "policy_version is 7" in p for p in reg.verify().problems)
