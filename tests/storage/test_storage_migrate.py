"""``registry storage migrate``: local -> S3 -> local with verify passing and snapshot ids unchanged; an
interrupted migration resumes; the switch is persisted in the home, audited, and refused when pointless."""

# ruff: noqa: F811  (pytest fixtures imported from tests/storage/test_storage_servers.py are parameters here)
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry import Registry
from registry.config import read_home_config
from tests.storage.test_storage_servers import MotoS3, fake_lakefs, lakefs_env, moto_s3  # noqa: F401
from tests.support.helpers import labels_table
from tests.support.lakefs_fake import FakeLakeFS


def _cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "REGISTRY_STORAGE_URL"}
    full.update({"REGISTRY_HOME": str(home), **(env or {})})
    return subprocess.run([sys.executable, "-m", "registry.cli.main", *args], cwd=home.parent, env=full,
                          capture_output=True, text=True, timeout=180)


def _history(home: Path) -> dict[str, object]:
    """Everything that must survive a migration: snapshot ids, tags, rows."""
    with Registry.open(home) as reg:
        return {"ids": [s.id for s in reg.log("labels")], "tagged": reg.show("labels@v1").id,
                "rows": reg.read("labels").sort_by("sample_id").to_pylist()}


@pytest.fixture
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3) -> Path:
    for var in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    with Registry.init(tmp_path / "home") as reg:
        reg.create_dataset("labels", "sample_id")
        reg.commit("labels", labels_table(1_000), message="v1")
        reg.tag("labels@main", "v1")
        reg.commit("labels", labels_table(200, seed=4), mode="upsert", message="relabel")
        reg.seal_audit()  # an audit segment is referenced too
        return reg.home


def test_local_to_s3_to_local_keeps_ids_and_verifies(local_home: Path, moto_s3: MotoS3) -> None:
    before = _history(local_home)
    url = f"s3://{moto_s3.new_bucket()}/team/objects"

    moved = _cli(local_home, "storage", "migrate", "--to", url, "--verify", "--json")
    assert moved.returncode == 0, moved
    result = json.loads(moved.stdout)
    assert result["switched"] and result["verified"] and result["destination"] == url
    assert result["copied"] == result["objects"] == 5 and result["skipped"] == 0  # 2 changes, 2 manifests, 1 segment
    assert "migrate:" in moved.stderr  # progress on stderr
    assert read_home_config(local_home)["storage_url"] == url
    info = json.loads(_cli(local_home, "storage", "info", "--json").stdout)
    assert (info["kind"], info["url"], info["configured_by"], info["reachable"]) == ("s3", url, "registry.json", True)

    shutil.rmtree(local_home / "objects")  # the old store is gone: everything must come from S3
    shutil.rmtree(local_home / "cache")
    assert _history(local_home) == before
    checked = _cli(local_home, "verify", "--json")
    assert checked.returncode == 0, checked
    with Registry.open(local_home) as reg:
        event = reg.audit_log(action="store.migrate")[-1]
        assert event.details["to"] == url and event.details["copied"] == result["copied"]
        assert reg.commit("labels", labels_table(30, seed=9), mode="upsert").created  # new commits go to S3

    back = _cli(local_home, "storage", "migrate", "--to", str(local_home / "objects"), "--json")
    assert back.returncode == 0, back
    assert json.loads(back.stdout)["copied"] == json.loads(back.stdout)["objects"]
    assert "storage_url" not in read_home_config(local_home), "the default folder is recorded by omission"
    assert json.loads(_cli(local_home, "storage", "info", "--json").stdout)["kind"] == "local"
    after = _history(local_home)
    assert after["ids"][1:] == before["ids"] and after["tagged"] == before["tagged"]
    assert _cli(local_home, "verify").returncode == 0


def test_interrupted_migration_resumes(local_home: Path, moto_s3: MotoS3) -> None:
    url = f"s3://{moto_s3.new_bucket()}/objects"
    killed = _cli(local_home, "storage", "migrate", "--to", url, env={"REGISTRY_FAILPOINT": "migrate:after-object"})
    assert killed.returncode == -9, killed
    assert "storage_url" not in read_home_config(local_home), "not switched before every object is verified"
    assert _cli(local_home, "storage", "info", "--json").stdout.count('"local"') == 1

    resumed = _cli(local_home, "storage", "migrate", "--to", url, "--json")
    assert resumed.returncode == 0, resumed
    result = json.loads(resumed.stdout)
    assert result["skipped"] == 1 and result["copied"] == result["objects"] - 1
    assert read_home_config(local_home)["storage_url"] == url
    assert _cli(local_home, "verify").returncode == 0


def test_local_to_lakefs_commits_the_copied_objects(local_home: Path, fake_lakefs: FakeLakeFS,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in lakefs_env(fake_lakefs).items():
        monkeypatch.setenv(name, value)
    fake_lakefs.create_repository("migrated")
    before = _history(local_home)
    moved = _cli(local_home, "storage", "migrate", "--to", "lakefs://migrated/main/registry", "--verify", "--json")
    assert moved.returncode == 0, moved
    commit_id = json.loads(moved.stdout)["store_commit_id"]
    assert fake_lakefs.repos["migrated"].commits[commit_id].metadata["registry_store"] == \
        "lakefs://migrated/main/registry"
    shutil.rmtree(local_home / "cache")
    assert _history(local_home) == before
    assert _cli(local_home, "verify").returncode == 0


def test_pointless_or_bad_migrations_are_refused(local_home: Path) -> None:
    same = _cli(local_home, "storage", "migrate", "--to", str(local_home / "objects"))
    assert same.returncode == 2 and "already uses" in same.stderr
    bad = _cli(local_home, "storage", "migrate", "--to", "ftp://somewhere/x")
    assert bad.returncode == 2 and "not supported" in bad.stderr
    assert "storage_url" not in read_home_config(local_home)
    assert _cli(local_home, "verify").returncode == 0


def test_storage_info_says_where_the_setting_comes_from(local_home: Path, moto_s3: MotoS3,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from registry.cli.main import main

    assert main(["--home", str(local_home), "storage", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["kind"], info["configured_by"], info["reachable"]) == ("local", "default", True)
    assert info["details"]["root"] == str(local_home / "objects")

    url = f"s3://{moto_s3.new_bucket()}/objects"
    monkeypatch.setenv("REGISTRY_STORAGE_URL", (local_home / "objects").as_uri())
    assert main(["--home", str(local_home), "storage", "migrate", "--to", url, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["overridden_by_env"] is True
    assert "REGISTRY_STORAGE_URL is set and overrides the switch" in captured.err
    assert read_home_config(local_home)["storage_url"] == url
    assert main(["--home", str(local_home), "storage", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["configured_by"] == "REGISTRY_STORAGE_URL"

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("REGISTRY_STORAGE_RETRIES", "1")
    monkeypatch.delenv("REGISTRY_STORAGE_URL")
    assert main(["--home", str(local_home), "storage", "info"]) == 0
    text = capsys.readouterr().out
    assert "configured:  registry.json" in text and "reachable:   NO" in text and url in text
