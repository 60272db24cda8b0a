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
from registry.lineage.namespace import registry_namespace
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
            "pin": _one(reg, "SELECT id FROM dataset_pin"), "policy_doc": FAILING,
            "checks": _one(reg, "SELECT checks FROM qa_policy WHERE version = 1")}


# name -> (SQL that tampers, SQL that undoes it, text verify must report); :names are filled from _setup
CASES: dict[str, tuple[str, str, str]] = {
    "policy document edited": (
        "UPDATE qa_policy SET document = :doc || '# loosened' WHERE version = 1",
        "UPDATE qa_policy SET document = :doc WHERE version = 1",
        "policy signs#1: document is not the one the audit chain recorded"),
    "policy checks loosened": (
        "UPDATE qa_policy SET checks = replace(checks, '100', '1') WHERE version = 1",
        "UPDATE qa_policy SET checks = :checks WHERE version = 1",
        "policy signs#1: checks do not hash to its policy_hash"),
    "policy inserted": (
        "INSERT INTO qa_policy (dataset_id, version, policy_hash, document, checks, maintainers, created_at, "
        "created_by) SELECT dataset_id, 2, policy_hash, document, checks, maintainers, created_at, created_by "
        "FROM qa_policy WHERE version = 1",
        "DELETE FROM qa_policy WHERE version = 2",
        "policy signs#2 has no policy.set event"),
    "gate result flipped to passed": (
        "UPDATE gate_result SET status = 'passed' WHERE id = :result",
        "UPDATE gate_result SET status = 'failed' WHERE id = :result",
        "status is 'passed' in the catalog, but the audit chain recorded 'failed'"),
    "gate result outcomes rewritten": (
        "UPDATE gate_result SET checks = '[]' WHERE id = :result",
        "DELETE FROM gate_result WHERE id = :result",  # undone below by re-inserting the saved row
        "checks (SHA-256)"),
    "gate result deleted": (
        "DELETE FROM gate_result WHERE id = :result", "", "gate result :result recorded by the audit chain"),
    "waiver inserted without an event": (
        "INSERT INTO gate_waiver (id, dataset_id, snapshot_id, checks, reason, expires_at, created_at, created_by) "
        "SELECT 'forged', dataset_id, snapshot_id, checks, reason, NULL, created_at, created_by FROM gate_waiver "
        "WHERE id = :waiver",
        "DELETE FROM gate_waiver WHERE id = 'forged'",
        "waiver forged of signs@"),
    "waiver expiry extended": (
        "UPDATE gate_waiver SET expires_at = '2999-01-01T00:00:00.000000Z' WHERE id = :waiver",
        "", "expires_at is '2999-01-01T00:00:00.000000Z' in the catalog"),
    "waiver moved to another snapshot": (
        "UPDATE gate_waiver SET snapshot_id = :first WHERE id = :waiver",
        "UPDATE gate_waiver SET snapshot_id = :head WHERE id = :waiver",
        "snapshot_id is"),
    "pin retargeted": (
        "UPDATE dataset_pin SET snapshot_id = :first WHERE id = :pin",
        "UPDATE dataset_pin SET snapshot_id = :head WHERE id = :pin",
        "pin :pin of signs@"),
    "pin content hash edited": (
        "UPDATE dataset_pin SET content_hash = 'sha256:' || :first WHERE id = :pin", "",
        "content_hash is 'sha256:"),
    "pin inserted": (
        "INSERT INTO dataset_pin (id, dataset_id, snapshot_id, requested_ref, job, content_hash, gate_result_id, "
        "waiver_id, lockfile, pinned_at, pinned_by) SELECT 'forged', dataset_id, snapshot_id, requested_ref, job, "
        "content_hash, gate_result_id, waiver_id, lockfile, pinned_at, pinned_by FROM dataset_pin WHERE id = :pin",
        "DELETE FROM dataset_pin WHERE id = 'forged'",
        "pin forged of signs@"),
    "lineage parent edge forged": (
        "UPDATE lineage_edge SET src_version = :raw WHERE kind = 'parent' AND dst_version = :head",
        "UPDATE lineage_edge SET src_version = :first WHERE kind = 'parent' AND dst_version = :head",
        "lineage edge parent signs@:raw -> signs@:head: the audit chain records no such parent"),
    "lineage source edge forged": (
        "UPDATE lineage_edge SET src_name = 'secret' WHERE kind = 'source' AND dst_version = :head",
        "UPDATE lineage_edge SET src_name = 'raw' WHERE kind = 'source' AND dst_version = :head",
        "lineage edge source secret@:raw -> signs@:head: the audit chain records no such source"),
    "lineage read edge forged": (
        "UPDATE lineage_edge SET src_version = :first WHERE kind = 'read'",
        "UPDATE lineage_edge SET src_version = :head WHERE kind = 'read'",
        "the audit chain records no training read or pin of that snapshot"),
    "lineage consume edge forged": (
        "UPDATE lineage_edge SET src_version = :first WHERE kind = 'consume'",
        "UPDATE lineage_edge SET src_version = :head WHERE kind = 'consume'",
        "lists it"),
}


def _fill(sql: str, names: dict[str, str]) -> str:
    for name, value in sorted(names.items(), key=lambda kv: -len(kv[0])):
        sql = sql.replace(f":{name}", value)
    return sql


def test_every_governance_tamper_is_named(reg: Registry, tmp_path: Path) -> None:
    names = _setup(reg, tmp_path)
    params = {"doc": names["policy_doc"], "result": names["result"], "waiver": names["waiver"],
              "pin": names["pin"], "first": names["first"], "head": names["head"], "raw": names["raw"],
              "checks": names["checks"]}
    with reg.ctx.engine.connect() as conn:
        saved = {t: [dict(r) for r in conn.execute(text(f"SELECT * FROM {t}")).mappings().all()]
                 for t in ("gate_result", "gate_waiver", "dataset_pin")}
    for case, (tamper, undo, expected) in CASES.items():
        execute(reg.ctx.engine, tamper, **{k: v for k, v in params.items() if f":{k}" in tamper})
        problems = reg.verify().problems
        shown = _fill(expected, names)
        assert any(shown in p for p in problems), (case, shown, problems)
        if undo:
            execute(reg.ctx.engine, undo, **{k: v for k, v in params.items() if f":{k}" in undo})
        _restore(reg, saved)
        report = reg.verify()
        assert report.ok, (case, report.problems)


def _restore(reg: Registry, saved: dict[str, list[dict[str, Any]]]) -> None:
    """Put back the saved rows of the tables a case deleted from or rewrote without an undo."""
    for table, rows in saved.items():
        for row in rows:
            execute(reg.ctx.engine, f"DELETE FROM {table} WHERE id = :id", id=row["id"])
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
