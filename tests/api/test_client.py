"""The Python client (clients/python, ``registry_client``) against a real uvicorn server on 127.0.0.1.

Each test opens one registry home (SQLite and PostgreSQL), serves it, and drives it only through
``Client``: what is committed reads back equal, and each HTTP failure arrives as the exception the
registry would raise.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import registry_client
from registry_client import Client

import registry.errors
from registry import Registry
from registry.api.app import create_app
from registry.auth.tokens import create_token
from tests.support.api_support import POLICY, serve
from tests.support.paths import ROOT

NAME = "signs"
ROWS = pa.table({"sample_id": ["s1", "s2", "s3"], "label": ["stop", "yield", "stop"], "score": [0.9, 0.5, 0.7]})


@dataclass
class Server:
    url: str
    reg: Registry

    def token(self, name: str, role: str, datasets: list[str] | None = None) -> str:
        secret, _ = create_token(self.reg.ctx, name, role, datasets or [], actor="setup")
        return secret

    def client(self, name: str = "alice", role: str = "admin", datasets: list[str] | None = None) -> Client:
        return Client(self.url, self.token(name, role, datasets), timeout=30)


@pytest.fixture
def server(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """``home`` (conftest: SQLite, and PostgreSQL when REGISTRY_TEST_POSTGRES_URL is set) served on loopback."""
    monkeypatch.delenv("REGISTRY_URL", raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    reg = Registry.open(home)
    try:
        with serve(create_app(home)) as url:
            yield Server(url, reg)
    finally:
        reg.close()


def _registry_errors() -> dict[str, type[registry.errors.RegistryError]]:
    return {name: cls for name, cls in inspect.getmembers(registry.errors, inspect.isclass)
            if issubclass(cls, registry.errors.RegistryError)}


def test_error_classes_have_the_registrys_names_codes_and_ancestry() -> None:
    local = _registry_errors()
    assert len(local) >= 18
    for name, cls in local.items():
        remote = getattr(registry_client, name, None)
        assert isinstance(remote, type), f"registry_client lacks {name}"
        assert remote.code == cls.code, name
        assert [c.__name__ for c in remote.__mro__ if c.__name__ in local] == \
               [c.__name__ for c in cls.__mro__ if c.__name__ in local], name
        builtins = [c for c in cls.__mro__ if c.__module__ == "builtins"]
        assert builtins == [c for c in remote.__mro__ if c.__module__ == "builtins"], name
    assert issubclass(registry_client.ConnectionFailed, registry_client.StorageError)


def test_error_for_picks_by_code_then_by_status() -> None:
    from registry_client.errors import error_for

    assert type(error_for(409, "gate_blocked", "no")) is registry_client.GateBlocked
    assert type(error_for(409, "ref_conflict", "no")) is registry_client.RefConflict
    assert type(error_for(404, "http_error", "Not Found")) is registry_client.NotFound
    assert type(error_for(502, None, "bad gateway")) is registry_client.ServerError
    error = error_for(422, "breaking_schema_change", "dropped a column")
    assert (error.code, error.message, error.status) == ("breaking_schema_change", "dropped a column", 422)
    assert isinstance(error, ValueError)


def test_commit_a_table_and_a_parquet_file_then_read_them_back(server: Server, tmp_path: Path) -> None:
    with server.client() as reg:
        created = reg.create_dataset(NAME, "sample_id", description="road signs")
        assert created.name == NAME and created.key_columns == ["sample_id"]
        first = reg.commit(NAME, ROWS, message="first")
        assert first.created and first.rows == 3 and first.added == 3
        assert reg.read(f"{NAME}@{first.snapshot_id}").sort_by("sample_id").equals(ROWS)

        second_rows = pa.table({"sample_id": ["s1", "s2", "s4"], "label": ["stop", "stop", "yield"],
                                "score": [0.9, 0.6, 0.1]})
        path = tmp_path / "v2.parquet"
        pq.write_table(second_rows, path)
        second = reg.commit(NAME, path, message="second", expect_parent=first.snapshot_id)
        assert (second.added, second.changed, second.removed) == (1, 1, 1)
        assert reg.read(NAME).sort_by("sample_id").equals(second_rows)
        assert reg.read(NAME, columns=["label"]).column_names == ["label"]

        assert [s.id for s in reg.log(NAME).data] == [second.snapshot_id, first.snapshot_id]
        assert reg.show(f"{NAME}@main").message == "second"
        assert reg.resolve(f"{NAME}@main~1").snapshot_id == first.snapshot_id
        assert reg.tag(f"{NAME}@main~1", "v1").id == first.snapshot_id
        changes = reg.diff(f"{NAME}@v1", f"{NAME}@main", rows=1)
        assert (changes.added, changes.removed, changes.changed) == (1, 1, 1)
        labels = reg.diff(f"{NAME}@v1", f"{NAME}@main", labels=True)
        assert labels.relabeled == 1 and labels.matrix["yield"]["stop"] == 1
        assert [v.version for v in reg.schema(NAME).data] == [1]
        assert reg.whoami().role == "admin"
        with pytest.raises(registry_client.InvalidInput, match="no column 'nope'"):
            reg.read(NAME, columns=["nope"])
        with pytest.raises(registry_client.InvalidInput, match="cannot read"):
            reg.commit(NAME, tmp_path / "missing.parquet")


def test_if_match_conflict_raises_conflict(server: Server) -> None:
    with server.client() as reg:
        reg.create_dataset(NAME, ["sample_id"])
        first = reg.commit(NAME, ROWS)
        reg.commit(NAME, ROWS.slice(0, 2))
        with pytest.raises(registry_client.Conflict) as caught:
            reg.commit(NAME, ROWS.slice(0, 1), expect_parent=first.snapshot_id)
        assert caught.value.status == 409 and caught.value.code == "ref_conflict"
        assert "another writer" in caught.value.message
        assert reg.read(NAME).num_rows == 2  # nothing was committed


def test_401_403_404_map_to_the_registry_classes(server: Server) -> None:
    with server.client() as admin:
        admin.create_dataset(NAME, ["sample_id"])
        admin.create_dataset("secret", ["sample_id"])
        admin.commit(NAME, ROWS)
        with pytest.raises(registry_client.NotFound) as missing:
            admin.show(f"{NAME}@nope")
        assert missing.value.status == 404
        with pytest.raises(registry_client.AlreadyExists):
            admin.create_dataset(NAME, ["sample_id"])
    with Client(server.url) as anonymous, pytest.raises(registry_client.Unauthenticated) as caught:
        anonymous.datasets()
    assert caught.value.status == 401 and caught.value.code == "unauthenticated"
    with Client(server.url, "not-a-token") as forged, pytest.raises(registry_client.Unauthenticated):
        forged.datasets()
    with server.client("rita", "reader") as reader, pytest.raises(registry_client.PermissionDenied) as denied:
        reader.commit(NAME, ROWS)
    assert denied.value.status == 403 and isinstance(denied.value, PermissionError)
    with server.client("scoped", "reader", [NAME]) as scoped:
        assert [d.name for d in scoped.datasets().data] == [NAME]
        with pytest.raises(registry_client.NotFound):
            scoped.read("secret")


def test_load_refuses_a_blocked_gate_and_pin_returns_the_lock_entry(server: Server) -> None:
    with server.client() as reg:
        reg.create_dataset(NAME, ["sample_id"])
        reg.commit(NAME, ROWS.slice(0, 1))
        assert reg.set_policy(NAME, POLICY).version == 1
        assert reg.policy(NAME).document == POLICY
        assert reg.qa_run(NAME).status == "failed"
        assert reg.gate_check(NAME).passes is False
        with pytest.raises(registry_client.GateBlocked) as blocked:
            reg.load(NAME, job="train")
        assert blocked.value.status == 409 and "refused" in blocked.value.message
        with pytest.raises(registry_client.GateBlocked):
            reg.pin(NAME, job="train")
        assert reg.load(NAME, job="train", allow_unverified=True).num_rows == 1
        waiver = reg.waive(NAME, "one row is enough for the smoke test")
        assert waiver.dataset == NAME and reg.gate_check(NAME).passes is True

        reg.commit(NAME, ROWS)
        reg.qa_run(NAME)
        assert [r.status for r in reg.gate_results(NAME).data][0] == "passed"
        assert reg.load(NAME, job="train").sort_by("sample_id").equals(ROWS)
        entry = reg.pin(NAME, job="train")
        assert entry.dataset == NAME and entry.job == "train" and entry.content_hash.startswith("sha256:")
    actions = [e.action for e in server.reg.audit_log(dataset=NAME)]
    assert {"gate.refuse", "pin.refuse", "read.unverified", "read.training", "pin.create"} <= set(actions)


def test_query_audit_and_lineage(server: Server) -> None:
    with server.client() as reg:
        reg.create_dataset(NAME, ["sample_id"])
        reg.commit(NAME, ROWS)
        table = reg.query("SELECT name, key_columns FROM datasets ORDER BY name")
        assert isinstance(table, pa.Table) and table.column("name").to_pylist() == [NAME]
        data = reg.query("SELECT count(*) AS n FROM data WHERE label = 'stop'", dataset=NAME)
        assert data.to_pylist() == [{"n": 2}]
        with pytest.raises(registry_client.InvalidInput):
            reg.query("COPY datasets TO '/tmp/x.csv'")
        events = reg.audit_log(dataset=NAME, action="snapshot.commit")
        assert [e.actor for e in events.data] == ["alice"] and events.count == 1
        report = reg.verify_audit(reg.audit_checkpoint())
        assert report.ok is True
        assert reg.verify(NAME).ok is True
        graph = reg.lineage_graph(NAME)
        assert graph.root.startswith(f"{NAME}@")


def test_download_streams_parquet_to_a_file(server: Server, tmp_path: Path) -> None:
    rows = pa.table({"sample_id": [f"s{i:06d}" for i in range(200_000)], "label": ["x"] * 200_000})
    with server.client() as reg:
        reg.create_dataset(NAME, ["sample_id"])
        reg.commit(NAME, rows)
        out = tmp_path / "rows.parquet"
        written = reg.download(NAME, out)
        assert written == out.stat().st_size > 0
        assert pq.read_table(out).sort_by("sample_id").equals(rows)
        assert reg.read(NAME).num_rows == 200_000


def test_unreachable_server_names_the_url() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with Client(url, "t", timeout=5) as reg, pytest.raises(registry_client.ConnectionFailed) as caught:
        reg.datasets()
    assert url in caught.value.message and isinstance(caught.value, OSError)
    assert caught.value.status is None


def test_the_package_installs_on_its_own_and_never_imports_registry(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "clients" / "python", source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", ".mypy_cache", "__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, capture_output=True)
    wheel = next(wheels.glob("dataset_ledger_client-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {n.split("/")[0] for n in names if not n.startswith("dataset_ledger_client-")} == {"registry_client"}
    requires = sorted(line.split(":", 1)[1].strip().split(">")[0] for line in metadata.splitlines()
                      if line.startswith("Requires-Dist:"))
    # numpy: the pinned content hash (registry_client.content); pydantic: the wire models; pyyaml: lockfiles
    assert requires == ["httpx", "numpy", "pyarrow", "pydantic", "pyyaml"]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    code = ("import sys, registry_client; assert 'registry' not in sys.modules, sorted(sys.modules); "
            "print(registry_client.__file__)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(target))
    code_text = "\n".join(p.read_text() for p in (ROOT / "clients" / "python" / "registry_client").glob("*.py"))
    assert not re.search(r"^\s*(import registry\b|from registry[ .])", code_text, re.M)


def test_arrow_streams_survive_any_chunking_and_keep_the_transport_error() -> None:
    from registry_client.streams import ByteStream, arrow_chunks

    table = pa.table({"sample_id": [f"s{i}" for i in range(20_000)], "score": list(range(20_000))})
    chunks = list(arrow_chunks(table, batch_rows=1_000))
    assert len(chunks) > 20  # encoded batch by batch, never as one body
    data = b"".join(chunks)
    tiny = (data[i:i + 7] for i in range(0, len(data), 7))  # reads cross every chunk boundary
    assert pa.ipc.open_stream(ByteStream(tiny)).read_all().equals(table)

    def broken() -> Iterator[bytes]:
        yield data[: len(data) // 2]
        raise registry_client.ConnectionFailed("the connection to http://x broke during the transfer")

    source = ByteStream(broken())
    with pytest.raises(registry_client.ConnectionFailed, match="broke"):
        pa.ipc.open_stream(source).read_all()
    assert isinstance(source.error, registry_client.ConnectionFailed)
