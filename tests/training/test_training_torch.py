"""``SnapshotDataset`` with a real torch ``DataLoader`` (2 workers) and a 2-process gloo
``torch.distributed`` run on CPU: every row exactly once per epoch, a deterministic shuffle, one
gate check, audit event and lineage run per job, refusals before the first batch, corrupt objects
caught, and the same reads through the HTTP client with its object cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from registry.context import create_home
from registry.errors import GateBlocked, VerifyFailed
from tests.support.training_support import BLOCKING, churned, key_values, need

torch = need("torch")
from registry.training.torch import SnapshotDataset  # noqa: E402 - needs torch, checked above

PARENT = "airflow/nightly_train/0191a2b4-7c3d-7e8f-9a0b-1c2d3e4f5a6b"


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A SQLite home (the torch tests need no second catalog: the plan tests cover PostgreSQL)."""
    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL", "OPENLINEAGE_PARENT_ID",
                 "OPENLINEAGE_PARENT_RUN_ID", "OPENLINEAGE_RUN_ID", "REGISTRY_JOB"):
        monkeypatch.delenv(name, raising=False)
    reg = Registry.open(create_home(tmp_path / "home").home)
    yield reg
    reg.close()


def _keys(loader: Any) -> list[int]:
    return [k for batch in loader for k in batch["idx"].tolist()]


def _run_events(reg: Registry, run_id: str) -> list[dict[str, Any]]:
    from registry.lineage.outbox import deliver

    deliver(reg.ctx)  # a server delivers in the background: deliver what is still queued
    lines = (reg.home / "lineage" / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["run"]["runId"] == run_id]


def test_two_workers_read_every_row_once_per_epoch_with_one_admission(local: Registry,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    expected = churned(local)
    monkeypatch.setenv("OPENLINEAGE_PARENT_ID", PARENT)
    ds = SnapshotDataset("churn", batch_size=128, seed=11, registry=local, job="train-resnet")
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    orders = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        keys = _keys(loader)
        assert sorted(keys) == key_values(expected)  # every row exactly once
        orders.append(keys)
    assert orders[0] != orders[1] and orders[0] != sorted(orders[0])  # shuffled, differently per epoch
    ds.set_epoch(0)
    assert _keys(loader) == orders[0]  # the same seed and epoch give the same order
    batch = next(iter(loader))
    assert set(batch) == {"idx", "value", "label"} and batch["value"].dtype == torch.float64
    assert len(ds) == expected.num_rows

    reads = local.audit_log(action="read.training")
    assert len(reads) == 1 and reads[0].details["job"] == "train-resnet" and reads[0].details["run_id"] == ds.run_id
    events = _run_events(local, ds.run_id)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["job"]["name"] == "train-resnet"
    assert events[0]["run"]["facets"]["parent"]["run"]["runId"] == PARENT.rsplit("/", 1)[1]
    assert events[0]["inputs"][0]["facets"]["version"]["datasetVersion"] == ds.snapshot_id


def test_values_are_the_newest_and_unshuffled_reads_keep_storage_order(local: Registry) -> None:
    expected = churned(local)
    ds = SnapshotDataset("churn", columns=["idx", "value"], batch_size=1000, shuffle=False, registry=local)
    got: dict[int, float] = {}
    for batch in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
        assert set(batch) == {"idx", "value"}
        got.update(zip(batch["idx"].tolist(), batch["value"].tolist(), strict=True))
    assert got == dict(zip(expected.column("idx").to_pylist(), expected.column("value").to_pylist(), strict=True))
    even = SnapshotDataset("churn", batch_size=100, shuffle=False, even=True, registry=local)
    shares = [[k for b in even.batches(c, 3) for k in b.column("idx").to_pylist()] for c in range(3)]
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # equal within one row, for DDP
    assert sorted(shares[0] + shares[1] + shares[2]) == key_values(expected)


def test_a_blocked_gate_stops_the_job_before_the_first_batch(local: Registry) -> None:
    churned(local, policy=BLOCKING)
    with pytest.raises(GateBlocked, match="huge"):
        SnapshotDataset("churn", registry=local, job="train")
    refusals = local.audit_log(action="gate.refuse")
    assert len(refusals) == 1 and refusals[0].details["job"] == "train"
    assert not local.audit_log(action="read.training")


def test_a_flipped_object_byte_fails_with_verify_failed(local: Registry) -> None:
    churned(local)
    ds = SnapshotDataset("churn", registry=local, batch_size=256)
    victim = Path(local.ctx.store.local_path(ds.admission.plan.objects[0]))
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x40
    victim.write_bytes(bytes(data))
    with pytest.raises(VerifyFailed, match="corrupt"):
        list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))


def test_a_lock_entry_reads_its_pinned_snapshot(local: Registry, tmp_path: Path) -> None:
    expected = churned(local)
    entry = local.pin("churn", tmp_path / "registry.lock", job="train-vit")
    local.commit("churn", None, mode="upsert", delete_keys=expected.select(["idx"]).slice(0, 500))
    local.qa_run("churn")
    ds = SnapshotDataset(entry, registry=local, batch_size=500, shuffle=False)
    assert ds.snapshot_id == entry.snapshot_id
    assert sorted(_keys(ds)) == key_values(expected)
    assert local.audit_log(action="read.training")[-1].details["job"] == "train-vit"


def test_bad_arguments_are_refused(local: Registry) -> None:
    churned(local)
    from registry.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput, match="batch_size"):
        SnapshotDataset("churn", registry=local, batch_size=0)
    with pytest.raises(InvalidInput, match="no column"):
        SnapshotDataset("churn", registry=local, columns=["nope"])
    with pytest.raises(NotFound):
        SnapshotDataset("nothing", registry=local)
    with pytest.raises(InvalidInput, match="registry must be"):
        SnapshotDataset("churn", registry=object())


def test_through_the_http_client_with_its_object_cache(local: Registry, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_client import Client

    from registry.api.app import create_app
    from registry.auth.tokens import create_token
    from tests.support.api_support import serve

    expected = churned(local)
    monkeypatch.setenv("REGISTRY_CLIENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENLINEAGE_PARENT_ID", PARENT)
    secret, _ = create_token(local.ctx, "trainer", "reader", [], actor="setup")
    with serve(create_app(local.home)) as url, Client(url, secret, timeout=30) as client:
        ds = SnapshotDataset("churn@main", registry=client, batch_size=200, seed=3, job="remote-train")
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        assert sorted(_keys(loader)) == key_values(expected)
        again = SnapshotDataset("churn@main", registry=client, batch_size=200, seed=3)
        assert sorted(_keys(again)) == key_values(expected)
        assert again.objects.source.downloads == []  # type: ignore[attr-defined]  # all from the cache
        reads = local.audit_log(action="read.training")
        assert [r.details["job"] for r in reads] == ["remote-train", None] and reads[0].actor == "trainer"
        events = _run_events(local, ds.run_id)
        assert events[0]["run"]["facets"]["parent"]["job"]["name"] == "nightly_train"

        local.set_policy("churn", BLOCKING)
        local.qa_run("churn")
        import registry_client

        with pytest.raises(registry_client.GateBlocked):
            SnapshotDataset("churn", registry=client)


_RANK_SCRIPT = """
import json, sys, torch, torch.distributed as dist
from registry import Registry
from registry.errors import GateBlocked
from registry.training.torch import SnapshotDataset
dist.init_process_group("gloo", init_method="file://" + sys.argv[2],
                        rank=int(sys.argv[3]), world_size=2)
out = {"rank": dist.get_rank()}
with Registry.open(sys.argv[1]) as reg:
    try:
        ds = SnapshotDataset("churn", batch_size=97, seed=5, registry=reg, job="ddp-train")
        ds.set_epoch(1)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        out["keys"] = [k for b in loader for k in b["idx"].tolist()]
        out["run_id"] = ds.run_id
    except GateBlocked as exc:
        out["blocked"] = str(exc)
dist.barrier()
dist.destroy_process_group()
print(json.dumps(out))
"""


def _run_ranks(home: Path, tmp_path: Path) -> list[dict[str, Any]]:
    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    # A file rendezvous: a TCP store would need a port picked before the ranks bind it, which races
    # with every other test that binds one (EADDRINUSE).
    rendezvous = tmp_path / f"rendezvous-{uuid.uuid4().hex}"
    procs = []
    for rank in range(2):
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        procs.append(subprocess.Popen([sys.executable, str(script), str(home), str(rendezvous), str(rank)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def test_two_gloo_ranks_split_the_rows_and_admit_once(local: Registry, tmp_path: Path) -> None:
    expected = churned(local)
    results = _run_ranks(local.home, tmp_path)
    first, second = (set(r["keys"]) for r in results)
    assert not first & second and len(first) + len(second) == expected.num_rows
    assert sorted(results[0]["keys"] + results[1]["keys"]) == key_values(expected)
    assert abs(len(first) - len(second)) <= expected.num_rows // 2  # both ranks got rows
    assert first and second and results[0]["run_id"] == results[1]["run_id"]
    reads = local.audit_log(action="read.training")
    assert len(reads) == 1 and reads[0].details["job"] == "ddp-train"

    local.set_policy("churn", BLOCKING)
    local.qa_run("churn")
    blocked = _run_ranks(local.home, tmp_path)
    assert all("huge" in r["blocked"] and "keys" not in r for r in blocked)  # every rank stops, no batch read
    assert len(local.audit_log(action="gate.refuse")) == 1 and len(local.audit_log(action="read.training")) == 1
