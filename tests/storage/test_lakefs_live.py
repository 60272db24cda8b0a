"""The lakeFS store against a real lakeFS server, when one is configured (skipped otherwise).

Set ``LAKEFS_ENDPOINT``, ``LAKEFS_ACCESS_KEY_ID`` and ``LAKEFS_SECRET_ACCESS_KEY``. The docker-compose
``lakefs`` profile starts a server on port 8001 (``docker compose --profile lakefs up -d lakefs``, keys
from its setup page); ``lakefs run --quickstart`` serves on 8000 with the keys
``AKIAIOSFOLQUICKSTART`` / ``wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY``. See docs/storage.md.
The repository ``LAKEFS_TEST_REPOSITORY`` (default ``registry-live-tests``) is created if missing, on
``LAKEFS_TEST_STORAGE_NAMESPACE`` (default ``local://registry-live-tests``); every test writes under
a fresh prefix of its ``main`` branch.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from registry import Registry
from registry.config import write_home_config
from registry.context import create_home
from registry.db import transaction
from registry.models import SnapshotRow
from registry.storage.lakefs import META_SNAPSHOT
from tests.support.helpers import labels_table, sorted_rows

pytestmark = pytest.mark.skipif(not os.environ.get("LAKEFS_ENDPOINT"),
                                reason="no real lakeFS: set LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID and "
                                       "LAKEFS_SECRET_ACCESS_KEY (see docs/storage.md)")

REPOSITORY = os.environ.get("LAKEFS_TEST_REPOSITORY", "registry-live-tests")


@pytest.fixture(scope="module")
def repository() -> str:
    from lakefs_sdk.api.repositories_api import RepositoriesApi
    from lakefs_sdk.api_client import ApiClient
    from lakefs_sdk.configuration import Configuration
    from lakefs_sdk.exceptions import NotFoundException
    from lakefs_sdk.models.repository_creation import RepositoryCreation

    config = Configuration(host=os.environ["LAKEFS_ENDPOINT"].rstrip("/") + "/api/v1",
                           username=os.environ.get("LAKEFS_ACCESS_KEY_ID"),
                           password=os.environ.get("LAKEFS_SECRET_ACCESS_KEY"))
    api = RepositoriesApi(ApiClient(config))
    try:
        api.get_repository(REPOSITORY)
    except NotFoundException:
        namespace = os.environ.get("LAKEFS_TEST_STORAGE_NAMESPACE", f"local://{REPOSITORY}")
        api.create_repository(RepositoryCreation(name=REPOSITORY, storage_namespace=namespace,
                                                 default_branch="main"))
    return REPOSITORY


def test_commit_read_verify_gc_on_a_real_lakefs(repository: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    write_home_config(home, {"format": 1, "storage_url": f"lakefs://{repository}/main/test-{uuid.uuid4().hex[:10]}"})
    create_home(home)
    table = labels_table(2_000)
    with Registry.open(home) as reg:
        reg.create_dataset("labels", "sample_id")
        snap = reg.commit("labels", table).snapshot_id
        stray = reg.ctx.store.put_bytes(b"unreferenced")
        with transaction(reg.ctx.engine, readonly=True) as session:
            row = session.get(SnapshotRow, snap)
            assert row is not None and row.store_commit_id
        commit = reg.ctx.store._api[1].get_commit(repository, row.store_commit_id)  # type: ignore[attr-defined]
        assert commit.metadata[META_SNAPSHOT] == snap
    shutil.rmtree(home / "cache")
    with Registry.open(home) as reg:
        assert sorted_rows(reg.read("labels")) == sorted_rows(table)
        assert reg.verify().ok
        assert reg.gc(min_age=0).deleted == [stray.sha256]
