"""Verified reads (design invariant 5): a flipped byte in any object a read path opens is caught there.

Each read path (``Registry.read``, ``registry export``, ``registry query --dataset``, the streamed HTTP
read, diffs) must fail with VerifyFailed (exit 1, 422 over HTTP) naming the damaged object, never return
silently wrong rows and never surface a decompression error. A flip is caught whether or not the object
was verified before (by this process or another), and restoring the bytes makes reads work again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.db import transaction
from registry.errors import VerifyFailed
from registry.models import SnapshotRow
from registry.snapshots.manifest import load_manifest
from tests.conftest import Cli
from tests.support.api_support import bearer, serve
from tests.support.hash_counting import COUNT_HASHES

NAME = "labels"
SQLITE = pytest.mark.parametrize("backend", ["sqlite"])


def _rows(n: int, start: int = 0, label: str = "cat") -> pa.Table:
    ids = [f"s{i:06d}" for i in range(start, start + n)]
    return pa.table({"sample_id": ids, "label": [f"{label}-{i % 7}" for i in range(n)],
                     "score": pa.array(range(n), pa.float64())})


def _layers(reg: Registry) -> list[str]:
    """The rows objects of the head's layers, base first."""
    with transaction(reg.ctx.engine, readonly=True) as session:
        snap = session.get(SnapshotRow, reg.show(NAME).id)
        assert snap is not None
        session.expunge(snap)
    return [layer.rows for layer in load_manifest(reg.ctx, snap).layers if layer.rows]


def _path(reg: Registry, sha: str) -> Path:
    return reg.ctx.store.local_path(sha)


def _flip(path: Path, where: float = 0.5) -> bytes:
    original = path.read_bytes()
    data = bytearray(original)
    data[int(len(data) * where)] ^= 0x55
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return original


def _committed(reg: Registry) -> Registry:
    """A base and an upsert layer, neither read yet."""
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, _rows(5000), message="base")
    reg.commit(NAME, _rows(300, start=4900, label="dog"), mode="upsert", message="upsert")
    assert len(_layers(reg)) == 2
    return reg


@pytest.fixture
def layered(reg: Registry) -> Registry:
    _committed(reg)
    reg.read(NAME)  # verified once by this process (and marked for others)
    return reg


@SQLITE
@pytest.mark.parametrize("layer", [0, 1])
def test_read_and_diff_fail_naming_the_object(layered: Registry, layer: int) -> None:
    sha = _layers(layered)[layer]
    good = layered.read(NAME)
    original = _flip(_path(layered, sha))
    with pytest.raises(VerifyFailed, match=f"object {sha} .*is corrupt"):
        layered.read(NAME)
    with pytest.raises(VerifyFailed, match=sha):
        layered.read(NAME, columns=["label"])
    with pytest.raises(VerifyFailed, match=sha):
        layered.diff(f"{NAME}@main~1", NAME, rows=5)
    _path(layered, sha).write_bytes(original)
    assert layered.read(NAME).equals(good)


@SQLITE
@pytest.mark.parametrize("where", [0.02, 0.5, 0.97])
def test_cli_export_and_query_exit_1_naming_the_object(layered: Registry, cli: Cli, tmp_path: Path,
                                                       where: float) -> None:
    """Flips in the zstd pages, the middle and the footer: never a decompression error, always exit 1."""
    sha = _layers(layered)[0]
    _flip(_path(layered, sha), where)
    out = tmp_path / "out.parquet"
    res = cli("export", NAME, str(out))
    assert res.code == 1, res.stderr
    assert sha in res.stderr and "corrupt" in res.stderr and "ZSTD" not in res.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))
    res = cli("query", "--dataset", NAME, "SELECT count(*) FROM data")
    assert res.code == 1 and sha in res.stderr, res.stderr


@SQLITE
def test_a_manifest_flip_is_caught(layered: Registry) -> None:
    with transaction(layered.ctx.engine, readonly=True) as session:
        snap = session.get(SnapshotRow, layered.show(NAME).id)
        assert snap is not None
        manifest = snap.manifest_sha256
    original = _flip(_path(layered, manifest), 0.5)
    with pytest.raises(VerifyFailed, match=manifest):
        layered.read(NAME)
    _path(layered, manifest).write_bytes(original)
    assert layered.read(NAME).num_rows == 5200


@SQLITE
def test_streamed_http_read_is_refused_before_any_row(layered: Registry) -> None:
    sha = _layers(layered)[1]
    with serve(create_app(layered.home)) as url, httpx.Client(base_url=url + "/api/v1", timeout=60) as http:
        headers = bearer(layered, "trainer", "reader")
        ok = http.get(f"/snapshots/{NAME}/data", headers=headers)
        assert ok.status_code == 200
        original = _flip(_path(layered, sha))
        for fmt in ("arrow", "parquet"):
            bad = http.get(f"/snapshots/{NAME}/data", params={"format": fmt}, headers=headers)
            assert bad.status_code == 422, bad.text
            body = json.loads(bad.text)
            assert sha in json.dumps(body) and "corrupt" in json.dumps(body)
        _path(layered, sha).write_bytes(original)
        again = http.get(f"/snapshots/{NAME}/data", headers=headers)
        assert again.status_code == 200 and again.content == ok.content


@SQLITE
def test_a_flip_after_another_process_verified_is_caught(layered: Registry, cli: Cli, tmp_path: Path) -> None:
    """The cross-process marker is keyed by the file's identity: a later write invalidates it."""
    out = tmp_path / "first.parquet"
    assert cli("export", NAME, str(out)).code == 0
    markers = layered.ctx.cache.folder.parent / "verified"
    assert any(markers.rglob("*")), "the first read left no verified marker"
    sha = _layers(layered)[0]
    _flip(_path(layered, sha), 0.4)
    res = cli("export", NAME, str(tmp_path / "second.parquet"))
    assert res.code == 1 and sha in res.stderr
    assert pq.read_table(out).num_rows == 5200


# A fresh process reading the head through the registry, counting the files it hashes.
_COUNTING_READER = COUNT_HASHES + """
import sys
from registry import Registry
from registry.errors import VerifyFailed
try:
    rows = Registry.open(sys.argv[1]).read(sys.argv[2]).num_rows
except VerifyFailed as exc:
    print("VerifyFailed", exc)
    sys.exit(3)
print(rows, len(hashed))
"""


@SQLITE
def test_objects_a_commit_wrote_are_not_hashed_again_until_touched(reg: Registry) -> None:
    """A local store hashed the bytes it wrote: the first read in another process trusts them while the
    file is untouched, and hashes (and catches) them once it has been written to."""
    layered = _committed(reg)

    def read() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _COUNTING_READER, str(layered.home), NAME],
                              capture_output=True, text=True, timeout=120)

    first = read()
    assert first.returncode == 0 and first.stdout.split() == ["5200", "0"], first.stdout + first.stderr
    sha = _layers(layered)[0]
    original = _flip(_path(layered, sha), 0.4)
    caught = read()
    assert caught.returncode == 3 and sha in caught.stdout, caught.stdout + caught.stderr
    _path(layered, sha).write_bytes(original)
    again = read()
    assert again.returncode == 0 and again.stdout.split()[0] == "5200", again.stdout + again.stderr
    assert int(again.stdout.split()[1]) >= 1  # the restored file has a new identity: hashed once more
