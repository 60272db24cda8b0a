"""The lakeFS store against tests/support/lakefs_fake.py (lakeFS's REST API on 127.0.0.1): every snapshot commit is a
lakeFS commit whose metadata carries the snapshot id, the catalog records the lakeFS commit id, and reads
go by commit id, so they still work after other lakeFS users move the branch."""

# ruff: noqa: F811  (pytest fixtures imported from tests/storage/test_storage_servers.py are parameters here)
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from registry import Registry
from registry.config import Settings, write_home_config
from registry.context import create_home
from registry.db import transaction
from registry.errors import StorageError
from registry.models import SnapshotRow
from registry.storage import open_store
from registry.storage.lakefs import META_SNAPSHOT, META_STORE
from tests.storage.test_storage_servers import fake_lakefs, lakefs_env  # noqa: F401
from tests.support.helpers import labels_table, sorted_rows
from tests.support.lakefs_fake import FakeLakeFS

REPO = "datasets"


@pytest.fixture
def lakefs_home(fake_lakefs: FakeLakeFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    for name, value in lakefs_env(fake_lakefs).items():
        monkeypatch.setenv(name, value)
    if REPO not in fake_lakefs.repos:
        fake_lakefs.create_repository(REPO)
    home = tmp_path / "home"
    home.mkdir()
    write_home_config(home, {"format": 1, "storage_url": f"lakefs://{REPO}/main/{tmp_path.name}"})
    return create_home(home).home


def _store_commit(reg: Registry, snapshot_id: str) -> str | None:
    with transaction(reg.ctx.engine, readonly=True) as session:
        row = session.get(SnapshotRow, snapshot_id)
        assert row is not None
        return row.store_commit_id


def test_each_snapshot_commit_is_a_lakefs_commit_naming_it(lakefs_home: Path, fake_lakefs: FakeLakeFS) -> None:
    with Registry.open(lakefs_home) as reg:
        url = reg.ctx.store.url
        reg.create_dataset("labels", "sample_id")
        first = reg.commit("labels", labels_table(300), message="first labels")
        second = reg.commit("labels", labels_table(50, seed=2), mode="upsert", message="relabel")
        commits = [_store_commit(reg, s.snapshot_id) for s in (first, second)]
        assert reg.query("SELECT store_commit_id FROM snapshots ORDER BY seq").column(0).to_pylist() == commits
    repo = fake_lakefs.repos[REPO]
    for result, commit_id in zip((first, second), commits, strict=True):
        assert commit_id is not None
        commit = repo.commits[commit_id]
        assert commit.metadata == {META_SNAPSHOT: result.snapshot_id, META_STORE: url}
    assert repo.commits[commits[1]].parents == [commits[0]]
    assert repo.commits[commits[0]].message == "first labels"
    # The commit holds the snapshot's objects under the store's prefix.
    prefix = url.split("/", 4)[4]
    assert {p for p in repo.commits[commits[0]].tree if p.startswith(prefix)}
    assert fake_lakefs.branch_head(REPO, "main") == commits[1]


def test_reads_go_by_commit_id_even_after_the_branch_moves(lakefs_home: Path, fake_lakefs: FakeLakeFS) -> None:
    table = labels_table(400)
    with Registry.open(lakefs_home) as reg:
        reg.create_dataset("labels", "sample_id")
        snap = reg.commit("labels", table).snapshot_id
        commit_id = _store_commit(reg, snap)
        prefix = reg.ctx.store.prefix  # type: ignore[attr-defined]
    # Another lakeFS user deletes the registry's files on the branch and commits: the head moves on.
    moved = fake_lakefs.outside_commit(REPO, "main", f"{prefix}/")
    assert moved != commit_id
    shutil.rmtree(lakefs_home / "cache")
    fake_lakefs.requests.clear()
    with Registry.open(lakefs_home) as reg:
        assert sorted_rows(reg.read("labels")) == sorted_rows(table)
        report = reg.verify()
        assert report.ok, report.problems
    object_reads = [path for method, path in fake_lakefs.requests if method == "GET" and path.endswith("/objects")]
    assert object_reads and all(f"/refs/{commit_id}/objects" in path for path in object_reads), object_reads


def test_objects_written_after_the_last_snapshot_commit_are_sealed_when_read(lakefs_home: Path,
                                                                             fake_lakefs: FakeLakeFS) -> None:
    with Registry.open(lakefs_home) as reg:
        reg.create_dataset("labels", "sample_id")
        reg.commit("labels", labels_table(200))
        segment = reg.seal_audit()  # an audit segment: written outside any snapshot commit
        assert segment is not None
        url = reg.ctx.store.url
    shutil.rmtree(lakefs_home / "cache")
    with Registry.open(lakefs_home) as reg:
        assert reg.query("SELECT count(*) FROM audit_log").column(0).to_pylist()[0] >= 2
        assert reg.verify_audit().ok
    head = fake_lakefs.repos[REPO].commits[fake_lakefs.branch_head(REPO, "main")]
    assert head.metadata == {META_STORE: url}, "a seal commit of the registry, naming no snapshot"


def test_verify_reports_a_recorded_commit_that_names_another_snapshot(lakefs_home: Path) -> None:
    with Registry.open(lakefs_home) as reg:
        reg.create_dataset("labels", "sample_id")
        first = reg.commit("labels", labels_table(100)).snapshot_id
        second = reg.commit("labels", labels_table(100, seed=5)).snapshot_id
        with transaction(reg.ctx.engine) as session:
            session.execute(update(SnapshotRow).where(SnapshotRow.id == second)
                            .values(store_commit_id=_store_commit(reg, first)))
        report = reg.verify()
    assert not report.ok
    assert f"names snapshot {first}, not {second}" in report.problems[0]


def test_wrong_keys_and_unknown_repository_fail_with_the_store_named(fake_lakefs: FakeLakeFS, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in lakefs_env(fake_lakefs).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", "wrong")
    store = open_store(f"lakefs://{REPO}/main/x", Settings().storage, tmp_path)
    with pytest.raises(StorageError, match=f"lakeFS store lakefs://{REPO}/main/x at {fake_lakefs.endpoint}"):
        store.exists("0" * 64)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", lakefs_env(fake_lakefs)["LAKEFS_SECRET_ACCESS_KEY"])
    with pytest.raises(StorageError, match="repository not found"):
        open_store("lakefs://no-such-repo/main/x", Settings().storage, tmp_path).put_bytes(b"x")


def test_listings_and_the_commit_log_are_read_page_by_page(fake_lakefs: FakeLakeFS, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.storage import lakefs

    for name, value in lakefs_env(fake_lakefs).items():
        monkeypatch.setenv(name, value)
    fake_lakefs.create_repository("paged")
    monkeypatch.setattr(lakefs, "_LIST_PAGE", 2)
    monkeypatch.setattr(lakefs, "_LOG_PAGE", 2)
    store = open_store("lakefs://paged/main/p", Settings().storage, tmp_path)
    names, commits = [], []
    for n in range(5):
        names.append(store.put_bytes(f"object {n}".encode()).sha256)
        commits.append(store.seal_commit(f"snap{n}", f"commit {n}"))
    fake_lakefs.outside_commit("paged", "main", "elsewhere/")  # someone else's commit on top
    assert [o.sha256 for o in store.iter_objects()] == sorted(names)
    fresh = open_store("lakefs://paged/main/p", Settings().storage, tmp_path / "other")
    assert fresh._registry_commits() == commits[::-1]  # type: ignore[attr-defined]
    assert fresh.commit_for(names[0]) == commits[-1]  # type: ignore[attr-defined]
