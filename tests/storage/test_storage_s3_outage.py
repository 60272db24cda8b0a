"""An S3 store that goes down: a commit fails cleanly (exit 2 naming the store, nothing in the catalog),
and succeeds once the server is back. The server is moto's, stopped and restarted on the same port."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.errors import StorageError
from tests.storage.test_storage_servers import MotoS3
from tests.support.helpers import labels_table


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    """A server of this test's own, so stopping it disturbs no other test."""
    server = MotoS3().start()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


@pytest.fixture
def s3_home(s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from registry.config import write_home_config
    from registry.context import create_home

    for var in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REGISTRY_STORAGE_RETRIES", "3")
    home = tmp_path / "home"
    home.mkdir()
    write_home_config(home, {"format": 1, "storage_url": f"s3://{s3.new_bucket()}/objects"})
    return create_home(home).home


def _cli(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "REGISTRY_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "registry.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _catalog(home: Path) -> tuple[list[str], int]:
    """Snapshot ids of ``labels`` (newest first) and the number of commit audit events."""
    with Registry.open(home) as reg:
        ids = [s.id for s in reg.log("labels")]
        commits = len(reg.audit_log(action="snapshot.commit"))
    return ids, commits


def test_commit_while_s3_is_down_fails_cleanly_then_succeeds_after_restart(s3: MotoS3, s3_home: Path,
                                                                           tmp_path: Path) -> None:
    v1, v2 = labels_table(500), labels_table(600, seed=3)
    pq.write_table(v2, tmp_path / "v2.parquet")
    with Registry.open(s3_home) as reg:
        reg.create_dataset("labels", "sample_id")
        first = reg.commit("labels", v1).snapshot_id
    url = json.loads((s3_home / "registry.json").read_text())["storage_url"]

    s3.stop()
    down = _cli(s3_home, tmp_path, "commit", "labels", "v2.parquet", "-m", "while down")
    assert down.returncode == 2, down
    assert down.stdout == ""
    assert f"S3 store {url}" in down.stderr and "unreachable" in down.stderr
    assert "failed 3 time(s)" in down.stderr
    assert _catalog(s3_home) == ([first], 1), "nothing reached the catalog"

    with Registry.open(s3_home) as reg, pytest.raises(StorageError, match="unreachable"):
        reg.commit("labels", v2)  # the Python API raises the same error
    assert _catalog(s3_home) == ([first], 1)

    s3.start()
    up = _cli(s3_home, tmp_path, "commit", "labels", "v2.parquet", "-m", "after restart", "--json")
    assert up.returncode == 0, up
    second = json.loads(up.stdout)["snapshot_id"]
    assert _catalog(s3_home) == ([second, first], 2)
    checked = _cli(s3_home, tmp_path, "verify", "--json")
    assert checked.returncode == 0, checked
    assert json.loads(checked.stdout)["snapshots"] == 2


def test_an_unreachable_endpoint_is_named_in_the_error(s3: MotoS3, s3_home: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with Registry.open(s3_home) as reg:
        reg.create_dataset("labels", "sample_id")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("REGISTRY_STORAGE_RETRIES", "2")
    with Registry.open(s3_home) as reg, pytest.raises(StorageError) as caught:
        reg.commit("labels", labels_table(10))
    assert "failed 2 time(s)" in caught.value.message and "127.0.0.1:9" in caught.value.message
