"""Pins, lockfiles and reads for training: refusals, exact pinned rows, tamper detection, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sqlmodel import Session, col, select

from registry import Registry
from registry.audit.models import AuditEventRow
from registry.errors import GateBlocked, VerifyFailed
from registry.snapshots.history import resolve_ref
from registry.snapshots.manifest import load_manifest
from registry.training.lockfile import LockEntry, read_lockfile
from tests.conftest import Cli
from tests.support.helpers import labels_table, sorted_rows

PASSING = "checks:\n  - check: row_count\n    min: 1\n"
STRICT = "checks:\n  - check: row_count\n    name: big_enough\n    min: 1000000\n"


def _events(reg: Registry, action: str) -> list[AuditEventRow]:
    with Session(reg.ctx.engine) as session:
        return list(session.exec(select(AuditEventRow).where(AuditEventRow.action == action)
                                 .order_by(col(AuditEventRow.seq))).all())


@pytest.fixture
def passed(reg: Registry) -> Registry:
    """``labels`` with 500 rows whose gate passed."""
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(500))
    reg.set_policy("labels", PASSING)
    assert reg.qa_run("labels").passed
    return reg


def test_pin_refused_unless_the_gate_passes(reg: Registry, tmp_path: Path) -> None:
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(50))
    lock = tmp_path / "registry.lock"
    with pytest.raises(GateBlocked, match="no QA policy"):
        reg.pin("labels", lock)
    reg.set_policy("labels", STRICT)
    with pytest.raises(GateBlocked, match="never evaluated"):
        reg.pin("labels", lock)
    reg.qa_run("labels")
    with pytest.raises(GateBlocked, match="big_enough"):
        reg.pin("labels", lock, job="train")
    assert not lock.exists()
    refusals = _events(reg, "pin.refuse")
    assert [e.details for e in refusals][-1].count("big_enough") == 1
    assert json.loads(refusals[-1].details)["job"] == "train" and len(refusals) == 3
    assert not _events(reg, "pin.create")


def test_pin_writes_one_entry_per_dataset_and_job(passed: Registry, tmp_path: Path) -> None:
    reg = passed
    lock = tmp_path / "registry.lock"
    first = reg.pin("labels", lock, job="train")
    assert len(first.snapshot_id) == 64 and first.ref == "main"
    assert first.content_hash.startswith("sha256:") and len(first.content_hash) == 71
    assert first.gate_result_id == reg.gate("labels").result_id and first.waiver_id is None
    text = lock.read_text()
    assert text.startswith("# ") and yaml.safe_load(text)["version"] == 1

    reg.commit("labels", labels_table(600))
    reg.qa_run("labels")
    again = reg.pin("labels@main", lock, job="train")
    reg.pin("labels", lock, job="eval")
    entries = read_lockfile(lock)
    assert [(e.dataset, e.job) for e in entries] == [("labels", "eval"), ("labels", "train")]
    assert entries[1] == again and again.snapshot_id != first.snapshot_id
    assert len(_events(reg, "pin.create")) == 3


def test_load_returns_exactly_the_pinned_rows_and_records_the_job(passed: Registry, tmp_path: Path) -> None:
    reg = passed
    entry = reg.pin("labels", tmp_path / "registry.lock", job="train-resnet")
    expected = sorted_rows(reg.read("labels"))
    reg.commit("labels", labels_table(700, seed=9))  # main moves on; the pin does not
    reg.qa_run("labels")
    assert sorted_rows(reg.load(entry)) == expected
    (read_event,) = _events(reg, "read.training")
    details = json.loads(read_event.details)
    assert details["job"] == "train-resnet" and details["content_hash"] == entry.content_hash
    assert details["operation"] == "load"
    assert read_event.snapshot == entry.snapshot_id
    assert reg.load("labels", job="adhoc").num_rows == 700
    assert json.loads(_events(reg, "read.training")[-1].details)["job"] == "adhoc"


def test_load_refuses_a_snapshot_whose_gate_went_stale_unless_unverified(passed: Registry, tmp_path: Path) -> None:
    reg = passed
    entry = reg.pin("labels", tmp_path / "registry.lock", job="train")
    reg.set_policy("labels", STRICT)  # the pinned snapshot's result is now stale
    with pytest.raises(GateBlocked, match="stale"):
        reg.load(entry)
    reg.qa_run("labels")
    with pytest.raises(GateBlocked, match="big_enough"):
        reg.load(entry)
    assert len(_events(reg, "gate.refuse")) == 2
    table = reg.load(entry, allow_unverified=True)
    assert table.num_rows == 500
    (unverified,) = _events(reg, "read.unverified")
    assert json.loads(unverified.details)["gate"] == "failed"
    assert not _events(reg, "read.training")


def test_waived_snapshot_pins_with_its_waiver(reg: Registry, tmp_path: Path) -> None:
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(20))
    reg.set_policy("labels", STRICT)
    reg.qa_run("labels")
    waiver = reg.waive("labels", "small pilot set", checks=["big_enough"])
    entry = reg.pin("labels", tmp_path / "registry.lock")
    assert entry.waiver_id == waiver.id
    assert reg.load(entry).num_rows == 20


def _base_object(reg: Registry, ref: str) -> Path:
    from registry.db import transaction

    with transaction(reg.ctx.engine, readonly=True) as session:
        _, snapshot = resolve_ref(session, ref)
    sha = load_manifest(reg.ctx, snapshot).layers[0].rows
    assert sha is not None
    return reg.ctx.store.local_path(sha)


def test_pinned_read_detects_a_tampered_object(passed: Registry, tmp_path: Path) -> None:
    reg = passed
    entry = reg.pin("labels", tmp_path / "registry.lock")
    target = _base_object(reg, entry.target)
    forged = reg.read("labels").to_pylist()
    forged[0]["label"] = "forged"
    target.chmod(0o644)
    pq.write_table(pa.Table.from_pylist(forged, schema=reg.read("labels").schema), target)  # valid Parquet
    with pytest.raises(VerifyFailed, match="is corrupt"):
        reg.load(entry)
    with pytest.raises(VerifyFailed):
        reg.pull(tmp_path / "registry.lock", tmp_path / "out")
    assert not _events(reg, "read.training")


def test_pinned_read_detects_rows_that_differ_from_the_pin(passed: Registry, tmp_path: Path) -> None:
    reg = passed
    entry = reg.pin("labels", tmp_path / "registry.lock")
    other = LockEntry(**{**entry.to_dict(), "content_hash": "sha256:" + "0" * 64})
    with pytest.raises(VerifyFailed, match="the rows read hash to"):
        reg.load(other)


def test_compaction_keeps_pins_valid(reg: Registry, tmp_path: Path) -> None:
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(3000))
    for step in range(3):
        reg.commit("labels", labels_table(40, seed=step + 1, prefix="s"), mode="upsert")
    reg.set_policy("labels", PASSING)
    reg.qa_run("labels")
    entry = reg.pin("labels", tmp_path / "registry.lock")
    before = sorted_rows(reg.load(entry))
    result = reg.compact("labels")
    assert result.layers_before > result.layers_after == 1
    assert sorted_rows(reg.load(entry)) == before  # same content hash, new physical layout


def test_cli_pin_refusal_and_pull(cli: Cli, tmp_path: Path) -> None:
    pq.write_table(labels_table(30), tmp_path / "v1.parquet")
    assert cli("dataset", "create", "labels", "--key", "sample_id").code == 0
    assert cli("commit", "labels", str(tmp_path / "v1.parquet")).code == 0
    (tmp_path / "strict.yaml").write_text(STRICT)
    assert cli("policy", "set", "labels", str(tmp_path / "strict.yaml")).code == 0
    assert cli("qa", "run", "labels").code == 1  # the strict policy fails
    refused = cli("pin", "labels", "--job", "train", "--json")
    assert refused.code == 1
    assert json.loads(refused.stderr)["error"]["code"] == "gate_blocked"
    assert "big_enough" in json.loads(refused.stderr)["error"]["message"]
    assert not (tmp_path / "registry.lock").exists()

    (tmp_path / "ok.yaml").write_text(PASSING)
    cli("policy", "set", "labels", str(tmp_path / "ok.yaml"))
    assert cli("gate", "check", "labels", "--evaluate").code == 0
    pinned = cli("pin", "labels", "--job", "train", "--json")
    assert pinned.code == 0, pinned.stderr
    entry = json.loads(pinned.stdout)
    pulled = cli("pull", "data", "--json")
    assert pulled.code == 0, pulled.stderr
    (item,) = json.loads(pulled.stdout)
    assert item["rows"] == 30 and item["snapshot_id"] == entry["snapshot_id"]
    written = pq.read_table(tmp_path / item["path"])
    assert sorted_rows(written) == sorted_rows(labels_table(30))
    assert cli("pull", "data", "--job", "other").code == 2
