"""Scan plans: read tasks that yield exactly a snapshot's rows (after upserts and deletes), cut into
shards of equal size, each verifiable by its object's hash; the same plan over HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import registry_client
from hypothesis import given, settings
from hypothesis import strategies as st
from registry_client import Client

from registry import Registry
from registry.api.app import create_app
from registry.auth.tokens import create_token
from registry.errors import InvalidInput, NotFound, VerifyFailed
from registry.snapshots.plan import ReadTask, ScanPlan, build_plan, group, read_task, split, verify_object
from registry.storage import verified
from registry.training.admission import VerifiedObjects, local_objects
from tests.support.api_support import serve
from tests.support.training_support import BLOCKING, churned, key_values


def _plan_rows(reg: Registry, plan: ScanPlan) -> pa.Table:
    parts = [read_task(reg.ctx.store.local_path(t.object), t, plan.columns) for t in plan.tasks]
    return pa.concat_tables(parts)


def test_a_plan_yields_exactly_the_snapshot_rows_where_a_glob_double_counts(reg: Registry) -> None:
    expected = churned(reg)
    plan = build_plan(reg.ctx, "churn")
    globbed = sum(pq.ParquetFile(reg.ctx.store.local_path(sha)).metadata.num_rows for sha in plan.objects)
    assert globbed > expected.num_rows  # what a naive read_parquet over the layers would give
    got = _plan_rows(reg, plan)
    assert plan.rows == got.num_rows == expected.num_rows == len(set(got.column("idx").to_pylist()))
    assert got.sort_by("idx").equals(expected.sort_by("idx"))
    assert plan.snapshot_id == reg.show("churn").id and plan.key_columns == ("idx",)
    assert plan.schema == expected.schema


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 64])
def test_shards_are_equal_and_disjoint(reg: Registry, shards: int) -> None:
    expected = churned(reg)
    plan = build_plan(reg.ctx, "churn@main", shards=shards)
    sizes = [sum(t.rows for t in shard) for shard in plan.shards]
    assert len(sizes) == shards and max(sizes) - min(sizes) <= 1 and sum(sizes) == expected.num_rows
    seen = [k for shard in plan.shards for t in shard
            for k in read_task(reg.ctx.store.local_path(t.object), t).column("idx").to_pylist()]
    assert sorted(seen) == key_values(expected)


def test_columns_and_older_snapshots(reg: Registry) -> None:
    churned(reg)
    first = reg.log("churn")[-1].id
    plan = build_plan(reg.ctx, f"churn@{first}", shards=2, columns=["idx", "label"])
    got = _plan_rows(reg, plan)
    assert got.column_names == ["idx", "label"] and got.num_rows == 3000 and plan.schema.names == ["idx", "label"]
    assert ScanPlan.from_dict(plan.to_dict()) == plan


def _flip_a_byte(victim: Path) -> Path:
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    return victim


def test_each_task_is_verifiable_and_a_flipped_byte_is_caught(reg: Registry) -> None:
    churned(reg)
    plan = build_plan(reg.ctx, "churn")
    for sha in plan.objects:
        verify_object(reg.ctx.store.local_path(sha), sha)
    victim = _flip_a_byte(Path(reg.ctx.store.local_path(plan.objects[0])))
    with pytest.raises(VerifyFailed, match=plan.objects[0]):
        verify_object(victim, plan.objects[0])


def test_bad_input_is_refused(reg: Registry) -> None:
    churned(reg)
    with pytest.raises(InvalidInput, match="shards"):
        build_plan(reg.ctx, "churn", shards=0)
    with pytest.raises(InvalidInput, match="no column 'nope'"):
        build_plan(reg.ctx, "churn", columns=["idx", "nope"])
    with pytest.raises(NotFound):
        build_plan(reg.ctx, "churn@no-such-tag")
    with pytest.raises(InvalidInput, match="not a scan plan"):
        ScanPlan.from_dict({"dataset": "x"})


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data(), st.integers(1, 40))
def test_split_keeps_every_visible_row_once(length: int, data: st.DataObject, shards: int) -> None:
    hidden = sorted(data.draw(st.sets(st.integers(0, length - 1), max_size=length)))
    task = ReadTask("0" * 64, 0, 0, length, tuple(hidden))
    parts = split([task, ReadTask("1" * 64, 0, 0, 5)], shards)
    visible = {("0" * 64, p) for p in range(length) if p not in set(hidden)} | {("1" * 64, p) for p in range(5)}
    covered = [(t.object, p) for shard in parts for t in shard for p in range(t.offset, t.offset + t.length)
               if p not in set(t.hidden)]
    assert sorted(covered) == sorted(visible)
    sizes = [sum(t.rows for t in shard) for shard in parts]
    assert max(sizes) - min(sizes) <= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=1, max_size=40), st.integers(1, 16))
def test_group_keeps_whole_tasks_in_order_and_fills_every_shard(sizes: list[int], shards: int) -> None:
    tasks = [ReadTask(f"{n:064x}", 0, 0, size) for n, size in enumerate(sizes)]
    groups = group(tasks, shards)
    live = [t for t in tasks if t.rows]
    assert len(groups) == shards and sum(t.rows for g in groups for t in g) == sum(sizes)
    if len(live) >= shards:
        assert [t for g in groups for t in g] == live and all(groups)


@pytest.fixture
def served(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Registry, Client]]:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    secret, _ = create_token(reg.ctx, "trainer", "admin", [], actor="setup")
    with serve(create_app(reg.home)) as url, Client(url, secret, timeout=30) as client:
        yield reg, client


def test_the_api_serves_the_same_plan_and_its_objects(served: tuple[Registry, Client], tmp_path: Path) -> None:
    reg, client = served
    expected = churned(reg)
    answer = client.plan("churn@main", shards=3, columns=["idx", "value"])
    plan = ScanPlan.from_dict(answer.to_dict())
    assert plan == build_plan(reg.ctx, "churn@main", shards=3, columns=["idx", "value"])
    cache = client.object_cache(f"churn@{plan.snapshot_id}", tmp_path / "cache")
    got = pa.concat_tables([read_task(cache.path(t.object), t, plan.columns) for t in plan.tasks])
    assert got.sort_by("idx").equals(expected.select(["idx", "value"]).sort_by("idx"))
    assert sorted(cache.downloads) == sorted(plan.objects)
    again = client.object_cache(f"churn@{plan.snapshot_id}", tmp_path / "cache")
    for t in plan.tasks:
        again.path(t.object)
    assert again.downloads == []  # a second read downloads nothing


def test_downloads_carry_the_registrys_verified_marker(served: tuple[Registry, Client], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The client hashed each download as it arrived: the registry's readers find its marker and do not hash
    the file again, until the file is written to."""
    reg, client = served
    churned(reg)
    plan = build_plan(reg.ctx, "churn")
    cache = client.object_cache(f"churn@{plan.snapshot_id}", tmp_path / "cache")
    paths = {sha: Path(cache.path(sha)) for sha in plan.objects}
    hashed: list[str] = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda fh, digest: hashed.append(fh.name) or real(fh, digest))
    monkeypatch.setattr(verified, "_verified", {})  # as a fresh process: only the markers count
    for sha, path in paths.items():
        assert verified.verify_file(path, sha, markers=Path(cache.markers)) == path
    assert hashed == []
    victim = paths[plan.objects[0]]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(VerifyFailed, match=plan.objects[0]):
        verified.verify_file(victim, plan.objects[0], markers=Path(cache.markers))


def test_the_api_refuses_bad_plan_requests(served: tuple[Registry, Client], tmp_path: Path) -> None:
    reg, client = served
    churned(reg)
    other = churned(reg, "other", base=500)
    assert other.num_rows
    with pytest.raises(registry_client.InvalidInput):
        client.plan("churn", shards=0)
    with pytest.raises(registry_client.InvalidInput, match="nope"):
        client.plan("churn", columns=["nope"])
    with pytest.raises(registry_client.NotFound):
        client.plan("missing")
    foreign = build_plan(reg.ctx, "other").objects[0]
    with pytest.raises(registry_client.NotFound, match="reads no object"):
        client.object_cache("churn", tmp_path / "c").path(foreign)
    with pytest.raises(registry_client.InvalidInput):
        client.object_cache("churn", tmp_path / "c").path("xyz")
    response = client._http.get("/snapshots/churn/plan", params={"job": "train"})
    assert response.status_code == 422 and "training=true" in response.json()["error"]["message"]
    reg.set_policy("churn", BLOCKING)
    reg.qa_run("churn")
    with pytest.raises(registry_client.GateBlocked, match="huge"):
        client.admit_training("churn", job="train")
    assert [e.details["read"] for e in reg.audit_log(action="gate.refuse")] == ["churn"]


def test_the_client_loads_a_lock_entry_from_its_cache(served: tuple[Registry, Client], tmp_path: Path) -> None:
    from registry_client.lockfile import read_lockfile

    reg, client = served
    expected = churned(reg)
    lock = tmp_path / "registry.lock"
    entry = reg.pin("churn", lock, job="train")
    assert entry.namespace and entry.registry == str(reg.home)
    (loaded,) = read_lockfile(lock, job="train")
    got = client.load_locked(loaded, cache_dir=tmp_path / "cache")
    assert got.sort_by("idx").equals(expected.sort_by("idx"))
    again = client.object_cache(f"churn@{entry.snapshot_id}", tmp_path / "cache")
    assert all(Path(again.path(sha)).exists() for sha in build_plan(reg.ctx, "churn").objects)
    assert again.downloads == []
    reads = reg.audit_log(action="read.training")
    assert len(reads) == 1 and reads[0].details["pinned"] and reads[0].details["content_hash"] == entry.content_hash

    with pytest.raises(registry_client.VerifyFailed, match="pinned in registry registry://elsewhere"):
        client.load_locked({**loaded, "namespace": "registry://elsewhere"})
    with pytest.raises(registry_client.VerifyFailed, match="changed since it was pinned"):
        client.load_locked({**loaded, "content_hash": "sha256:" + "0" * 64})
    other = tmp_path / "other.yaml"
    other.write_text("x: 1\n")
    with pytest.raises(registry_client.InvalidInput, match="not a registry lockfile"):
        read_lockfile(other)


def test_a_lock_entry_from_another_registry_is_refused_locally(reg: Registry, tmp_path: Path) -> None:
    churned(reg)
    entry = reg.pin("churn", tmp_path / "registry.lock")
    moved = type(entry)(**{**entry.to_dict(), "namespace": "registry://elsewhere"})
    with pytest.raises(VerifyFailed, match="registry://elsewhere"):
        reg.load(moved)
    with pytest.raises(VerifyFailed, match="registry://elsewhere"):
        reg.plan(moved)
    assert reg.plan(entry).snapshot_id == entry.snapshot_id
    assert reg.load(entry).num_rows == reg.read("churn").num_rows


def test_a_process_hashes_an_object_once_across_plans_and_reads(reg: Registry, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Plans and training reads verify through the one verified-read helper: an object is hashed once per
    process (while its file is untouched), and a byte flipped afterwards is still caught."""
    churned(reg)
    hashed: list[str] = []
    real = hashlib.file_digest

    def counting(fh: Any, digest: Any) -> Any:
        hashed.append(Path(fh.name).name)
        return real(fh, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    plan = build_plan(reg.ctx, "churn")
    objects = VerifiedObjects(local_objects(reg.ctx, plan))
    for _ in range(2):
        build_plan(reg.ctx, "churn")
        for sha in plan.objects:
            verify_object(reg.ctx.store.local_path(sha), sha)
            objects.path(sha)
    assert all(hashed.count(Path(reg.ctx.store.local_path(sha)).name) <= 1 for sha in plan.objects), hashed
    victim = _flip_a_byte(Path(reg.ctx.store.local_path(plan.objects[0])))
    with pytest.raises(VerifyFailed, match=plan.objects[0]):
        objects.path(plan.objects[0])
    with pytest.raises(VerifyFailed, match=plan.objects[0]):
        verify_object(victim, plan.objects[0])


def test_the_clients_content_hash_is_the_servers(reg: Registry) -> None:
    """The client restates the pin's content hash (it cannot import ``registry``): both agree on every type."""
    from decimal import Decimal

    from registry_client.content import content_hash as client_hash

    from registry.quality.content import content_hash as server_hash

    n = 3000
    table = pa.table({
        "k": [f"key-{i:05d}" for i in range(n)],
        "n": pa.array([None if i % 7 == 0 else i - 1500 for i in range(n)], pa.int32()),
        "u": pa.array([i for i in range(n)], pa.uint16()),
        "f": pa.array([float("nan") if i % 5 == 0 else -0.0 if i % 5 == 1 else i / 3 for i in range(n)]),
        "b": [i % 2 == 0 for i in range(n)],
        "s": [None if i % 11 == 0 else "x" * (i % 23) + "é" for i in range(n)],
        "low": [["cat", "dog", "bird"][i % 3] for i in range(n)],
        "bin": pa.array([bytes([i % 256]) * (i % 9) for i in range(n)], pa.binary()),
        "ts": pa.array(list(range(n)), pa.timestamp("us", tz="UTC")),
        "d": pa.array(list(range(n)), pa.date32()),
        "dec": pa.array([Decimal(i) / 100 for i in range(n)], pa.decimal128(10, 2)),
        "dict": pa.array([["a", "b"][i % 2] for i in range(n)]).dictionary_encode(),
        "nested": [{"x": i, "y": [i, i + 1]} for i in range(n)],
        "fixed": pa.array([i.to_bytes(4, "little") for i in range(n)], pa.binary(4)),
    })
    chunked = pa.concat_tables([table.slice(0, 1000), table.slice(1000)])
    for keys in (["k"], ["k", "n"]):
        assert client_hash(table, keys) == server_hash(table, keys)
        assert client_hash(chunked, keys) == server_hash(chunked, keys)
    assert client_hash(table.slice(0, 0), ["k"]) == server_hash(table.slice(0, 0), ["k"])


def test_the_client_refuses_rows_that_do_not_hash_to_the_pin(served: tuple[Registry, Client], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A real server's answer, tampered with on its way (one row hidden from the plan, as a lying server or
    a proxy would): the client recomputes the content hash and refuses the rows."""
    from registry_client.lockfile import read_lockfile

    reg, client = served
    churned(reg)
    lock = tmp_path / "registry.lock"
    reg.pin("churn", lock, job="train")
    (loaded,) = read_lockfile(lock, job="train")
    real = type(client)._send

    def tampered(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = real(self, *args, **kwargs)
        if isinstance(answer, dict) and "plan" in answer:
            task = answer["plan"]["shards"][0][0]
            task["hidden"] = sorted({*task["hidden"], task["offset"]})
            task["rows"] = task["length"] - len(task["hidden"])
        return answer

    monkeypatch.setattr(type(client), "_send", tampered)
    with pytest.raises(registry_client.VerifyFailed, match="do not hash|does not match the pin"):
        client.load_locked(loaded, cache_dir=tmp_path / "cache")
    monkeypatch.undo()
    assert client.load_locked(loaded, cache_dir=tmp_path / "cache").num_rows == reg.show("churn").rows
