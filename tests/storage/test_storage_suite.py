"""One storage suite over every store: a local folder, S3 (moto's server) and lakeFS (tests/support/lakefs_fake.py).

The same cases run on each: the object store contract (put, exists, size, read, local_path, delete,
iter_objects), identical bytes put twice are not written again, temporary files left by a crashed
writer are found and removed by gc, damaged objects are caught by hash, and the registry's commit,
read, query, verify and gc work unchanged on top.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests/storage/test_storage_servers.py are parameters here)
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from registry import Registry
from registry.config import Settings
from registry.errors import InvalidInput, NotFound, StorageError, VerifyFailed
from registry.storage import ObjectStore, open_store, verified
from tests.storage.test_storage_servers import MotoS3, fake_lakefs, moto_s3, store_home, store_kind, store_url  # noqa: F401
from tests.support.helpers import labels_table, sorted_rows
from tests.support.lakefs_fake import FakeLakeFS


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> ObjectStore:
    return open_store(store_url, Settings().storage, tmp_path / "cache")


def _remote_bytes(kind: str, store: ObjectStore, sha: str, request: pytest.FixtureRequest, data: bytes) -> None:
    """Replace the stored bytes of ``sha`` behind the registry's back (bit rot, a tampering user)."""
    if kind == "local":
        path = Path(store.local_path(sha))
        path.chmod(0o644)
        path.write_bytes(data)
    elif kind == "s3":
        server: MotoS3 = request.getfixturevalue("moto_s3")
        fs = server.filesystem()
        key = f"{store.bucket}/{store.prefix}/{sha[:2]}/{sha[2:]}"  # type: ignore[attr-defined]
        with fs.open_output_stream(key) as out:  # type: ignore[attr-defined]
            out.write(data)
    else:
        fake: FakeLakeFS = request.getfixturevalue("fake_lakefs")
        repo = fake.repos[store.repository]  # type: ignore[attr-defined]
        path = f"{store.prefix}/{sha[:2]}/{sha[2:]}"  # type: ignore[attr-defined]
        for commit in repo.commits.values():
            if path in commit.tree:
                commit.tree[path].data = data
        for branch in repo.branches.values():
            entry = branch.staged.get(path)
            if entry is not None:
                entry.data = data


def _drop_cache(store: ObjectStore) -> None:
    cache = getattr(store, "cache", None)
    if cache is not None:
        shutil.rmtree(cache.folder)
        cache.tmp.mkdir(parents=True)


# --- the object store contract ----------------------------------------------------------------------------


def test_put_exists_size_read_local_path_delete_iter(store: ObjectStore, store_kind: str) -> None:
    data = b"some parquet bytes" * 1000
    sha = hashlib.sha256(data).hexdigest()
    assert not store.exists(sha)
    info = store.put_bytes(data)
    assert (info.sha256, info.size) == (sha, len(data))
    assert store.exists(sha) and store.size(sha) == len(data)
    assert store.read_bytes(sha) == data
    assert Path(store.local_path(sha)).read_bytes() == data
    assert store.digest(sha).sha256 == sha
    assert store.mtime(sha) > 0
    other = store.put_bytes(b"another object")
    assert [(o.sha256, o.size) for o in store.iter_objects()] == sorted([(sha, len(data)), (other.sha256, 14)])

    store.delete(sha)
    assert not store.exists(sha)
    assert [o.sha256 for o in store.iter_objects()] == [other.sha256]
    assert store.mtime(sha) == 0.0
    if store_kind == "lakefs":
        # Deleting removes it from the branch; the lakeFS commits that held it still do, and reads go by commit.
        assert store.digest(sha).sha256 == sha
    else:
        with pytest.raises(NotFound, match=sha):
            store.local_path(sha)
        with pytest.raises(NotFound, match=sha):
            store.digest(sha)
    store.delete(sha)  # deleting what is gone is fine


def test_staged_file_put_and_abandoned(store: ObjectStore) -> None:
    with store.staging_file(".parquet") as staged:
        staged.write(b"abc")
        info = store.put(staged)
    assert store.read_bytes(info.sha256) == b"abc"
    with store.staging_file() as staged:
        staged.write(b"never put")
        path = staged.path
    assert not path.exists(), "an abandoned staging file is removed"
    assert list(store.iter_leftovers()) == []


def test_what_a_store_wrote_or_downloaded_is_not_hashed_again(store: ObjectStore, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A put (and a remote store's download into its cache) hashed the bytes as they were written: the
    first verified read, in any process, finds the marker; a later write to the file is still caught."""
    markers = tmp_path / "cache" / "verified"
    hashed: list[str] = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda fh, digest: hashed.append(fh.name) or real(fh, digest))
    with store.staging_file() as staged:
        staged.write(b"written and hashed once")
        sha = store.put(staged).sha256
    for fresh_cache in (False, True):
        if fresh_cache:
            _drop_cache(store)  # a remote store downloads it again; a local one keeps its file
        path = Path(store.local_path(sha))
        monkeypatch.setattr(verified, "_verified", {})  # as a fresh process: only the markers count
        assert verified.verify_file(path, sha, markers=markers) == path
        assert hashed == []
    path.chmod(0o644)
    path.write_bytes(b"written and hashed twice")
    monkeypatch.setattr(verified, "_verified", {})
    with pytest.raises(VerifyFailed, match=sha):
        verified.verify_file(path, sha, markers=markers)


def test_identical_bytes_put_twice_are_not_written_again(store: ObjectStore, store_kind: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.put_bytes(b"same bytes")
    if store_kind == "local":
        path = Path(store.local_path(first.sha256))
        inode = path.stat().st_ino
        assert store.put_bytes(b"same bytes") == first
        assert path.stat().st_ino == inode, "the stored file was not replaced"
        return
    uploads: list[str] = []
    real = store._upload  # type: ignore[attr-defined]
    monkeypatch.setattr(store, "_upload", lambda path, sha: (uploads.append(sha), real(path, sha)))
    _drop_cache(store)
    assert store.put_bytes(b"same bytes") == first
    assert uploads == [], "the existing object was compared by hash and kept"
    assert store.put_bytes(b"new bytes").size == 9
    assert len(uploads) == 1


def test_damaged_object_is_replaced_by_a_put_and_refused_by_readers(store: ObjectStore, store_kind: str,
                                                                     request: pytest.FixtureRequest) -> None:
    data = b"good bytes, good name"
    sha = store.put_bytes(data).sha256
    _remote_bytes(store_kind, store, sha, request, b"bit rot")
    assert store.digest(sha).sha256 != sha
    if store_kind != "local":
        _drop_cache(store)
        with pytest.raises(StorageError, match="corrupt"):
            store.local_path(sha)
    store.put_bytes(data)  # the writer's bytes hash to the name: they replace the damaged copy
    store.seal_commit(None, "repair")  # lakeFS: reads go by commit, so the repair counts once committed
    assert store.digest(sha).sha256 == sha
    assert store.read_bytes(sha) == data


def test_temp_files_left_by_a_crashed_writer_are_removed_by_gc(store_home: Path) -> None:
    with Registry.open(store_home) as reg:
        reg.create_dataset("labels", "sample_id")
        reg.commit("labels", labels_table(50))
        with reg.ctx.store.staging_file(".parquet") as staged:
            staged.write(b"half of an object")
            left = staged.path.with_name("crashed-writer.parquet.tmp")
            shutil.copy(staged.path, left)  # what a writer killed before put leaves behind
        assert list(reg.ctx.store.iter_leftovers()) == [left]
        assert reg.gc(dry_run=True, min_age=0).leftovers == [left.name] and left.exists()
        report = reg.gc(min_age=0)
        assert report.leftovers == [left.name] and not left.exists()
        assert report.deleted == []
        assert reg.verify().ok


# --- the registry on each store ---------------------------------------------------------------------------


def test_commit_read_query_verify_gc_on_each_store(store_home: Path, store_kind: str) -> None:
    v1 = labels_table(2_000)
    changes = labels_table(300, seed=7).slice(0, 300)
    with Registry.open(store_home) as reg:
        assert reg.ctx.store.kind == store_kind
        reg.create_dataset("labels", "sample_id")
        first = reg.commit("labels", v1, message="v1")
        second = reg.commit("labels", changes, mode="upsert", message="relabel")
        reg.tag("labels@main", "v2")
        stray = reg.ctx.store.put_bytes(b"nobody references this")
        reg.seal_audit()
    expected = {r["sample_id"]: r for r in sorted_rows(v1)}
    expected.update({r["sample_id"]: r for r in sorted_rows(changes)})

    shutil.rmtree(store_home / "cache")  # a fresh machine: every object comes from the store
    with Registry.open(store_home) as reg:
        assert [s.id for s in reg.log("labels")] == [second.snapshot_id, first.snapshot_id]
        assert sorted_rows(reg.read("labels@v2")) == [expected[k] for k in sorted(expected)]
        assert sorted_rows(reg.read(f"labels@{first.snapshot_id}")) == sorted_rows(v1)
        assert reg.query("SELECT count(*) AS n FROM data", "labels").column("n").to_pylist() == [len(expected)]
        actions = reg.query("SELECT action FROM audit_log ORDER BY seq").column("action").to_pylist()
        assert actions[:3] == ["dataset.create", "snapshot.commit", "snapshot.commit"]
        report = reg.verify()
        assert report.ok, report.problems
        assert report.snapshots == 2 and report.objects >= 4
        gc = reg.gc(min_age=0)
        assert gc.deleted == [stray.sha256]
        assert not reg.ctx.store.exists(stray.sha256)
        assert reg.verify().ok
        assert reg.read("labels").num_rows == len(expected)


def test_verify_reads_the_store_not_the_cache(store_home: Path, store_kind: str, request: pytest.FixtureRequest
                                              ) -> None:
    with Registry.open(store_home) as reg:
        reg.create_dataset("labels", "sample_id")
        change = _change_sha(reg, reg.commit("labels", labels_table(100)).snapshot_id)
        assert Path(reg.ctx.store.local_path(change)).is_file()  # a good copy is cached (remote stores)
        _remote_bytes(store_kind, reg.ctx.store, change, request, b"tampered")
        report = reg.verify()
    assert not report.ok
    assert "corrupt" in report.problems[0] and change in report.problems[0]


def _change_sha(reg: Registry, snapshot_id: str) -> str:
    from registry.db import transaction
    from registry.models import SnapshotRow

    with transaction(reg.ctx.engine, readonly=True) as session:
        row = session.get(SnapshotRow, snapshot_id)
        assert row is not None
        return row.change_sha256


def test_bad_storage_urls_are_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEFS_ENDPOINT", raising=False)
    with pytest.raises(InvalidInput, match="'gs' is not supported; known schemes: file, lakefs, s3"):
        open_store("gs://bucket/x", Settings().storage, tmp_path)
    for url, message in [("s3:///nobucket", "names no bucket"),
                         ("lakefs://repo", "repository and a branch"), ("lakefs://repo/main", "needs an endpoint")]:
        with pytest.raises(StorageError, match=message):
            open_store(url, Settings().storage, tmp_path)
