"""Settings are one tree, resolved once when the context opens (issue 15).

The tree comes from the environment (nested ``REGISTRY_GROUP__FIELD`` names and the flat names users
set before it existed) and from the home's ``registry.json``; nothing under ``registry/`` reads the
environment after the context opened, stores are opened by URL scheme, and ``registry serve`` hands
its settings to the app factory instead of writing them into ``os.environ``.
"""

from __future__ import annotations

import ast
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from registry import Registry
from registry.config import (
    LineageSettings,
    Settings,
    StorageSettings,
    flat_env_names,
    read_home_config,
    write_home_config,
)
from registry.errors import InvalidInput
from registry.storage import LocalObjectStore, ObjectStore, open_store, register_store, store_schemes
from registry.storage import base as storage_base
from tests.support.paths import ROOT

ENTRY_POINTS = {
    "registry/config.py": "resolves the settings (the one reader of the environment) and hands a child "
                          "process its environment (child_environment)",
    "registry/failpoints.py": "the test suite's crash hook, read at each failpoint in child processes",
    "registry/training/admission.py": "the calling training job's run identity (REGISTRY_JOB, "
                                      "OPENLINEAGE_RUN_ID), per admission, not configuration",
    "registry/lineage/parent_env.py": "the calling job's parent run (OPENLINEAGE_PARENT_*), per admission",
    "registry/cli/preload_client.py": "the launcher, before any settings exist: REGISTRY_PRELOAD and "
                                      "REGISTRY_PRELOAD_SOCKET decide where the command runs, and the whole "
                                      "environment goes to the preloaded child",
    "registry/cli/preload_server.py": "the forked child takes on its caller's environment before the command "
                                      "builds its settings from it",
    "registry/training/filesystem.py": "the fsspec filesystem, an entry point fsspec constructs by protocol "
                                       "(REGISTRY_TOKEN when no token is given)",
}
"""Modules of registry/ allowed to read ``os.environ``, each with why."""


def _reads_environment(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb", "putenv", "unsetenv"):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(alias.name in ("environ", "getenv", "environb", "putenv") for alias in node.names):
            lines.append(node.lineno)
    return lines


def test_no_module_reads_the_environment_outside_the_entry_points() -> None:
    offenders = {}
    for path in sorted((ROOT / "registry").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        lines = _reads_environment(ast.parse(path.read_text(), relative))
        if lines and relative not in ENTRY_POINTS:
            offenders[relative] = lines
    assert offenders == {}, f"read settings from ctx.settings (registry.config.Settings), not os.environ: {offenders}"
    for allowed in ENTRY_POINTS:  # the allow-list stays true: no entry for a module that stopped reading it
        assert _reads_environment(ast.parse((ROOT / allowed).read_text())), allowed


def test_the_scan_catches_each_form_of_reading_the_environment() -> None:
    for source in ("import os\nos.environ['X']", "import os\nos.getenv('X')", "from os import environ",
                   "import os\nx = {**os.environ}"):
        assert _reads_environment(ast.parse(source)), source
    assert not _reads_environment(ast.parse("import os\nos.path.join('a')"))


def test_the_nested_tree_comes_from_nested_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_LINEAGE__DELIVERY", "manual")
    monkeypatch.setenv("REGISTRY_STORAGE__S3__REGION", "eu-west-3")
    monkeypatch.setenv("REGISTRY_API__MAX_QUERY_ROWS", "17")
    monkeypatch.setenv("REGISTRY_LINEAGE_DELIVERY", "inline")  # the nested name wins over the flat one
    settings = Settings()
    assert settings.lineage.delivery == "manual"
    assert settings.storage.s3.region == "eu-west-3"
    assert settings.api.max_query_rows == 17


FLAT = [
    ("REGISTRY_DATABASE_URL", "sqlite:////tmp/x.db", lambda s: s.database_url, "sqlite:////tmp/x.db"),
    ("REGISTRY_ACTOR", "alice", lambda s: s.actor, "alice"),
    ("REGISTRY_STORAGE_URL", "s3://b/p", lambda s: s.storage.url, "s3://b/p"),
    ("REGISTRY_STORAGE_RETRIES", "2", lambda s: s.storage.retries, 2),
    ("REGISTRY_S3_ENDPOINT_URL", "http://minio:9000", lambda s: s.storage.s3.endpoint_url, "http://minio:9000"),
    ("AWS_ENDPOINT_URL", "http://aws:9000", lambda s: s.storage.s3.endpoint_url, "http://aws:9000"),
    ("AWS_REGION", "eu-north-1", lambda s: s.storage.s3.region, "eu-north-1"),
    ("AWS_DEFAULT_REGION", "ap-east-1", lambda s: s.storage.s3.region, "ap-east-1"),
    ("AWS_SESSION_TOKEN", "tok", lambda s: s.storage.s3.session_token, "tok"),
    ("LAKEFS_ENDPOINT", "http://lakefs:8000", lambda s: s.storage.lakefs.endpoint, "http://lakefs:8000"),
    ("REGISTRY_LAKEFS_ACCESS_KEY_ID", "AKIA", lambda s: s.storage.lakefs.access_key_id, "AKIA"),
    ("REGISTRY_MAX_LAYERS", "3", lambda s: s.compaction.max_layers, 3),
    ("REGISTRY_COMPACT_BASE_FRACTION", "0.5", lambda s: s.compaction.base_fraction, 0.5),
    ("REGISTRY_COMPACT_INTERVAL", "0", lambda s: s.compaction.interval, 0.0),
    ("REGISTRY_MAX_INPUT_ROWS", "10", lambda s: s.inputs.max_rows, 10),
    ("REGISTRY_MAX_INPUT_BYTES", "20", lambda s: s.inputs.max_bytes, 20),
    ("REGISTRY_QUERY_TIMEOUT_SECONDS", "1.5", lambda s: s.query.timeout_seconds, 1.5),
    ("REGISTRY_QUERY_MEMORY_LIMIT", "1GB", lambda s: s.query.memory_limit, "1GB"),
    ("REGISTRY_QUERY_THREADS", "2", lambda s: s.query.threads, 2),
    ("REGISTRY_API_MAX_UPLOAD_BYTES", "100", lambda s: s.api.max_upload_bytes, 100),
    ("REGISTRY_API_MAX_BODY_BYTES", "50", lambda s: s.api.max_body_bytes, 50),
    ("REGISTRY_API_TRUSTED_PROXIES", "10.0.0.1", lambda s: s.api.trusted_proxies, "10.0.0.1"),
    ("REGISTRY_API_SHUTDOWN_GRACE_SECONDS", "3", lambda s: s.api.shutdown_grace_seconds, 3.0),
    ("REGISTRY_AUDIT_SEAL_EVENTS", "5", lambda s: s.audit.seal_events, 5),
    ("REGISTRY_AUDIT_DENIED_INTERVAL_SECONDS", "0", lambda s: s.audit.denied_interval_seconds, 0.0),
    ("REGISTRY_LINEAGE_NAMESPACE", "registry://x", lambda s: s.lineage.namespace, "registry://x"),
    ("REGISTRY_LINEAGE_DELIVERY", "background", lambda s: s.lineage.delivery, "background"),
    ("REGISTRY_LINEAGE_BACKOFF_MAX_SECONDS", "9", lambda s: s.lineage.backoff_max_seconds, 9.0),
    ("OPENLINEAGE_DISABLED", "TRUE", lambda s: s.lineage.openlineage.disabled, True),
    ("OPENLINEAGE_DISABLED", "1", lambda s: s.lineage.openlineage.disabled, False),  # as the client reads it
    ("OPENLINEAGE__TRANSPORT__TYPE", "console", lambda s: s.lineage.openlineage.configured(), True),
    ("LABEL_STUDIO_API_KEY", "secret", lambda s: s.labeling.api_key, "secret"),
    ("REGISTRY_URL", "http://server:8000", lambda s: s.remote.url, "http://server:8000"),
    ("REGISTRY_TOKEN", "t", lambda s: s.remote.token, "t"),
    ("REGISTRY_TIMEOUT", "abc", lambda s: s.remote.timeout, "abc"),  # remote.py says what is wrong with it
]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable the settings read (so the defaults show through)."""
    for name in {*flat_env_names(), "REGISTRY_HOME"}:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.upper().startswith(("OPENLINEAGE__", "REGISTRY_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(("name", "value", "read", "expected"), FLAT, ids=[f"{f[0]}={f[1]}" for f in FLAT])
def test_the_flat_names_users_set_today_still_work(clean_environment: pytest.MonkeyPatch, name: str, value: str,
                                                   read: Any, expected: object) -> None:
    clean_environment.setenv(name, value)
    assert read(Settings()) == expected


def test_registry_names_win_over_the_aws_and_lakefs_ones_and_empty_values_count_as_unset(
        clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("AWS_REGION", "aws")
    clean_environment.setenv("REGISTRY_S3_REGION", "registry")
    clean_environment.setenv("LAKEFS_ENDPOINT", "http://lakefs")
    clean_environment.setenv("REGISTRY_LAKEFS_ENDPOINT", "")
    settings = Settings()
    assert settings.storage.s3.region == "registry"
    assert settings.storage.lakefs.endpoint == "http://lakefs"


def test_every_flat_name_is_documented() -> None:
    docs = "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md")) + (ROOT / "README.md").read_text()
    assert [name for name in flat_env_names() if name not in docs] == []


def test_the_tree_comes_from_the_homes_registry_json_under_the_environment(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REGISTRY_LINEAGE_JOB_NAMESPACE", "REGISTRY_MAX_LAYERS", "REGISTRY_LINEAGE_DELIVERY"):
        monkeypatch.delenv(name, raising=False)
    config = read_home_config(home)
    write_home_config(home, {**config, "settings": {"lineage": {"job_namespace": "team", "max_attempts": 4},
                                                    "compaction": {"max_layers": 5}}})
    monkeypatch.setenv("REGISTRY_LINEAGE_MAX_ATTEMPTS", "7")  # the environment wins over the file
    with Registry.open(home) as reg:
        settings = reg.ctx.settings
    assert (settings.lineage.job_namespace, settings.lineage.max_attempts) == ("team", 7)
    assert settings.compaction.max_layers == 5
    assert settings.lineage.delivery == "auto"  # neither: the default


def test_settings_changed_after_the_context_opened_do_not_change_it(reg: Registry,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = reg.ctx.settings
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    monkeypatch.setenv("REGISTRY_LINEAGE_JOB_NAMESPACE", "changed")
    monkeypatch.setenv("REGISTRY_MAX_LAYERS", "1")
    reg.create_dataset("d", "id")
    reg.commit("d", pa.table({"id": [1], "label": ["a"]}))
    assert reg.ctx.settings is before
    events = [line for line in (reg.home / "lineage" / "events.jsonl").read_text().splitlines() if line]
    assert events, "lineage was disabled by a variable set after the context opened"
    assert all('"namespace": "changed"' not in line and '"namespace":"changed"' not in line for line in events)


def test_an_unknown_storage_scheme_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"'gs' is not supported; known schemes: file, lakefs, s3"):
        open_store("gs://bucket/prefix", StorageSettings(), tmp_path)


def test_an_unknown_storage_scheme_fails_opening_the_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_STORAGE_URL", "ftp://host/objects")
    with pytest.raises(InvalidInput, match="known schemes"):
        Registry.open(home)


def test_stores_register_by_scheme_with_their_own_settings(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, StorageSettings]] = []

    def memory(url: str, settings: StorageSettings, cache: Path) -> ObjectStore:
        seen.append((url, settings))
        return LocalObjectStore(cache / "mem")

    monkeypatch.setattr(storage_base, "_FACTORIES", dict(storage_base._FACTORIES))
    register_store("mem", memory)
    settings = StorageSettings(retries=1)
    store = open_store("mem://x", settings, tmp_path)
    assert isinstance(store, LocalObjectStore) and seen == [("mem://x", settings)]
    assert "mem" in store_schemes()
    assert isinstance(open_store(str(tmp_path / "plain")), LocalObjectStore)  # a bare path: a local folder


def test_the_app_factory_and_serve_leave_the_environment_alone(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.api.app import create_app
    from registry.cli import serve_cmds
    from registry.cli.main import cli

    before = dict(os.environ)
    app = create_app(home, Settings())
    app.state.ctx.close()
    assert dict(os.environ) == before

    served: list[tuple[Path, Settings]] = []

    def run_server(home: Path, settings: Settings, *, sock: socket.socket, workers: int) -> None:
        sock.close()
        served.append((home, settings))

    monkeypatch.setattr(serve_cmds, "run_server", run_server)
    result = CliRunner().invoke(cli, ["--home", str(home), "serve", "--port", "0", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert dict(os.environ) == before
    assert served and served[0][0] == home.resolve()


def test_the_factory_several_workers_get_is_picklable_and_cheap_to_unpickle(home: Path) -> None:
    """uvicorn pickles its config, factory included, into each worker process; unpickling must not import
    the API (a worker answers uvicorn's health check only after it)."""
    from registry.cli.serve_cmds import AppFactory

    data = pickle.dumps(AppFactory(home, Settings(lineage=LineageSettings(max_attempts=3))))
    probe = subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read()); "
                            "print('fastapi' in sys.modules)"], input=data, capture_output=True, cwd=ROOT, timeout=60)
    assert probe.stdout.strip() == b"False", probe.stderr
    app = pickle.loads(data)()
    try:
        assert app.state.ctx.settings.lineage.max_attempts == 3
    finally:
        app.state.ctx.close()


def test_the_config_module_stays_cheap_to_import() -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import registry.config"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not {"pyarrow", "duckdb", "sqlmodel", "sqlalchemy", "numpy"} & imported
