"""Object store servers for the storage tests (no tests here): moto's S3 server and the fake lakeFS.

Both are real HTTP servers on 127.0.0.1 on a free port. ``store_url`` parametrises a test over the
three stores: ``local`` (a folder), ``s3`` (a fresh bucket on moto's standalone server) and
``lakefs`` (a fresh repository on tests/support/lakefs_fake.py). Import the fixtures a module uses.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lakefs_fake import ACCESS_KEY, SECRET_KEY, FakeLakeFS

STORES = ["local", "s3", "lakefs"]
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


class MotoS3:
    """moto's standalone S3 server in a thread; ``stop()`` closes its socket (connections are refused)
    and ``start()`` serves again on the same port with the same buckets (moto keeps state in-process).
    The first start binds port 0 (the system picks a free port, with no window for another process to
    take it between choosing and binding); later starts bind the port it got."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = 0
        self._cls = ThreadedMotoServer
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3:
        self._server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            inner = self._server._server  # noqa: SLF001 - close the listening socket too
            if inner is not None:
                inner.server_close()
            self._server = None

    def env(self) -> dict[str, str]:
        return {**S3_KEYS, "AWS_ENDPOINT_URL": self.endpoint}

    def new_bucket(self) -> str:
        from pyarrow import fs as pafs

        bucket = f"reg-{uuid.uuid4().hex[:12]}"
        fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                               endpoint_override=f"127.0.0.1:{self.port}", scheme="http", allow_bucket_creation=True)
        fs.create_dir(bucket)
        return bucket

    def filesystem(self) -> object:
        from pyarrow import fs as pafs

        return pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                                 endpoint_override=f"127.0.0.1:{self.port}", scheme="http")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_lakefs() -> Iterator[FakeLakeFS]:
    server = FakeLakeFS().start()
    yield server
    server.stop()


def lakefs_env(fake: FakeLakeFS) -> dict[str, str]:
    return {"LAKEFS_ENDPOINT": fake.endpoint, "LAKEFS_ACCESS_KEY_ID": ACCESS_KEY,
            "LAKEFS_SECRET_ACCESS_KEY": SECRET_KEY}


def make_store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty store of ``kind``, with its endpoint and keys in the environment."""
    if kind == "local":
        return (tmp_path / f"store-{uuid.uuid4().hex[:6]}").as_uri()
    if kind == "s3":
        server: MotoS3 = request.getfixturevalue("moto_s3")
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        return f"s3://{server.new_bucket()}/registry"
    fake: FakeLakeFS = request.getfixturevalue("fake_lakefs")
    for name, value in lakefs_env(fake).items():
        monkeypatch.setenv(name, value)
    repo = f"repo-{uuid.uuid4().hex[:10]}"
    fake.create_repository(repo)
    return f"lakefs://{repo}/main/registry"


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
              ) -> str:
    return make_store_url(store_kind, tmp_path, request, monkeypatch)


@pytest.fixture
def store_home(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry home (SQLite catalog) whose objects live in ``store_url``, recorded in its registry.json."""
    from registry.config import write_home_config
    from registry.context import create_home

    for var in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    write_home_config(home, {"format": 1, "storage_url": store_url})
    return create_home(home).home
