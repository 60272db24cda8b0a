"""The CLI against a server (``REGISTRY_URL``) prints what it prints locally, with the same exit codes.

Two identical homes: one used directly, one served by a real uvicorn on 127.0.0.1. Each command runs
against both (in-process through ``registry.cli.main.main``, one run as a real subprocess); the JSON
and text outputs must be equal once the values that differ by nature are masked (snapshot ids and
times, which include the commit time, and the audit fields naming the client).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.auth.tokens import create_token
from registry.cli.main import main
from registry.context import create_home
from tests.support.api_support import POLICY, run_event, serve
from tests.support.masking import mask, mask_text

NAME = "signs"
V1 = "sample_id,label,score\ns1,stop,1\ns2,yield,2\ns3,stop,3\n"
V2 = "sample_id,label,score\ns1,stop,1\ns2,stop,2\ns4,yield,4\n"
@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Pair:
    """The same commands against a local home and against a server holding an identical home."""

    local_home: Path
    url: str
    token: str
    work: Path
    capsys: pytest.CaptureFixture[str]

    def _env(self, remote: bool, url: str | None = None) -> dict[str, str | None]:
        if remote:
            return {"REGISTRY_URL": url or self.url, "REGISTRY_TOKEN": self.token, "REGISTRY_HOME": None}
        return {"REGISTRY_URL": None, "REGISTRY_TOKEN": None, "REGISTRY_HOME": str(self.local_home)}

    def run(self, *args: str, remote: bool, url: str | None = None) -> Run:
        saved = {k: os.environ.get(k) for k in ("REGISTRY_URL", "REGISTRY_TOKEN", "REGISTRY_HOME")}
        side = self.work / ("remote" if remote else "local")
        side.mkdir(exist_ok=True)
        cwd = Path.cwd()
        try:
            for key, value in self._env(remote, url).items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            os.chdir(side)
            self.capsys.readouterr()
            code = main(list(args))
            out = self.capsys.readouterr()
        finally:
            os.chdir(cwd)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return Run(code, out.out, out.err)

    def both(self, *args: str, code: int = 0) -> tuple[Run, Run]:
        """Run ``args`` locally and remotely; both exit with ``code`` and print the same (masked)."""
        local, remote = self.run(*args, remote=False), self.run(*args, remote=True)
        assert (local.code, remote.code) == (code, code), (local, remote)
        if "--json" in args or "json" in args:
            assert mask(_json(local.stdout)) == mask(_json(remote.stdout)), args
        else:
            assert mask_text(local.stdout) == mask_text(remote.stdout), args
        assert mask_text(local.stderr) == mask_text(remote.stderr), args
        return local, remote


def _json(text: str) -> Any:
    return json.loads(text) if text.strip() else None


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Pair]:
    for name in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL", "REGISTRY_URL",
                 "REGISTRY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    monkeypatch.setenv("REGISTRY_ACTOR", "alice")  # the local actor is named as the server's token is
    local_home = create_home(tmp_path / "local").home
    server_home = create_home(tmp_path / "server").home
    for home in (local_home, server_home):  # the same token in both, so both audit chains match
        with Registry.open(home) as reg:
            token, _ = create_token(reg.ctx, "alice", "admin", actor="setup")
    work = tmp_path / "work"
    work.mkdir()
    (work / "v1.csv").write_text(V1)
    (work / "v2.csv").write_text(V2)
    (work / "policy.yaml").write_text(POLICY)
    with serve(create_app(server_home)) as url:
        yield Pair(local_home, url, token, work, capsys)


def test_every_remote_command_prints_what_the_local_one_prints(pair: Pair) -> None:
    w = pair.work
    pair.both("dataset", "create", NAME, "--key", "sample_id", "--json")
    pair.both("dataset", "create", NAME, "--key", "sample_id", code=2)  # already exists: same message
    pair.both("commit", NAME, str(w / "v1.csv"), "-m", "first", "--json")
    pair.both("commit", NAME, str(w / "v2.csv"), "-m", "second")
    pair.both("commit", NAME, str(w / "v1.csv"), "--expect-parent", "0" * 12, "--json", code=3)
    pair.both("commit", NAME, "nope.csv", code=2)
    listed, _ = pair.both("dataset", "list", "--json")
    assert json.loads(listed.stdout)[0]["rows"] == 3
    pair.both("dataset", "list")
    pair.both("log", NAME, "--json")
    pair.both("log", NAME)
    pair.both("show", f"{NAME}@main", "--json")
    pair.both("show", f"{NAME}@main~1")
    pair.both("show", f"{NAME}@nope", code=2)
    pair.both("show", f"{NAME}@nope", "--json", code=2)
    pair.both("diff", f"{NAME}@main~1", f"{NAME}@main", "--json")
    pair.both("diff", f"{NAME}@main~1", f"{NAME}@main", "--rows", "1")
    labels, _ = pair.both("diff", f"{NAME}@main~1", f"{NAME}@main", "--labels", "--json")
    assert json.loads(labels.stdout)["relabeled"] == 1
    pair.both("diff", f"{NAME}@main~1", f"{NAME}@main", "--labels")
    pair.both("tag", f"{NAME}@main~1", "v1", "--json")
    pair.both("tag", f"{NAME}@main", "v1", code=2)
    pair.both("schema", NAME, "--json")
    pair.both("gate", "check", NAME, "--json", code=1)  # no policy: never evaluated
    pair.both("policy", "set", NAME, str(w / "policy.yaml"), "--json")
    pair.both("policy", "show", NAME, "--json")
    pair.both("qa", "run", f"{NAME}@v1", "--json")
    pair.both("gate", "check", f"{NAME}@v1", "--json")
    pair.both("gate", "check", NAME, code=1)  # main was not evaluated under this policy
    pair.both("gate", "check", NAME, "--evaluate", "--json")
    pair.both("audit", "log", "--dataset", NAME, "--action", "snapshot.commit", "--json")
    pair.both("audit", "log", "--dataset", NAME, "--action", "qa.")
    pair.both("query", "SELECT name, key_columns, description FROM datasets", "--format", "json")
    pair.both("query", "SELECT label, count(*) AS n FROM data GROUP BY label ORDER BY label", "--dataset", NAME,
              "--format", "csv")
    pair.both("query", "SELECT * FROM read_csv('/etc/passwd')", code=2)
    pair.both("export", f"{NAME}@v1", "out.csv", "--json")
    assert (w / "local" / "out.csv").read_text() == (w / "remote" / "out.csv").read_text()
    pair.both("export", f"{NAME}@v1", "out.xlsx", code=2)
    pair.both("verify", NAME, "--json")
    pair.both("audit", "verify", "--json")
    pair.both("blame", f"{NAME}@main", "--json")
    pair.both("lineage", f"{NAME}@main", "--json")
    pair.both("lineage", f"{NAME}@main", "--dot")


def test_pin_and_pull_write_the_same_lockfile_and_files(pair: Pair) -> None:
    w = pair.work
    for remote in (False, True):
        for args in (("dataset", "create", NAME, "--key", "sample_id"), ("commit", NAME, str(w / "v1.csv")),
                     ("policy", "set", NAME, str(w / "policy.yaml")), ("qa", "run", NAME)):
            assert pair.run(*args, remote=remote).code == 0
    pair.both("pin", NAME, "--job", "train", "--lockfile", "train.lock", "--json")
    local, remote = (_lock(w / side / "train.lock") for side in ("local", "remote"))
    assert mask(local) == mask(remote)
    assert local["pins"][0]["registry"].endswith("local") and remote["pins"][0]["registry"].startswith("http://")
    assert local["pins"][0]["content_hash"] == remote["pins"][0]["content_hash"]  # the same rows
    pulled, _ = pair.both("pull", "data", "--lockfile", "train.lock", "--json")
    local_file = w / "local" / json.loads(pulled.stdout)[0]["path"]
    remote_files = list((w / "remote" / "data").iterdir())
    assert len(remote_files) == 1 and mask_text(remote_files[0].name) == mask_text(local_file.name)  # no partial
    assert pq.read_table(local_file).equals(pq.read_table(remote_files[0]))
    pair.both("pull", "data", "--lockfile", "train.lock", "--job", "other", code=2)
    pair.both("pull", "data", "--lockfile", "missing.lock", code=2)


def _lock(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def test_pull_refuses_rows_that_differ_from_the_pin(pair: Pair) -> None:
    w = pair.work
    for args in (("dataset", "create", NAME, "--key", "sample_id"), ("commit", NAME, str(w / "v1.csv")),
                 ("policy", "set", NAME, str(w / "policy.yaml")), ("qa", "run", NAME),
                 ("pin", NAME, "--lockfile", "train.lock")):
        assert pair.run(*args, remote=True).code == 0
    lockfile = w / "remote" / "train.lock"
    lockfile.write_text(lockfile.read_text().replace("content_hash: sha256:", "content_hash: sha256:0"))
    refused = pair.run("pull", "data", "--lockfile", "train.lock", remote=True)
    assert refused.code == 1 and "the pin recorded" in refused.stderr
    assert not list((w / "remote" / "data").iterdir())


def test_local_only_commands_are_refused_against_a_server(pair: Pair) -> None:
    for args in (("init",), ("db", "upgrade"), ("gc",), ("compact", NAME), ("token", "list"), ("audit", "seal"),
                 ("lineage", "status"), ("lineage", "flush"), ("serve",)):
        result = pair.run(*args, remote=True)
        assert result.code == 2, (args, result)
        assert "only on the registry host" in result.stderr, (args, result)
        assert f"registry {' '.join(a for a in args if a != NAME)}" in result.stderr
    assert not (pair.work / "remote" / ".registry").exists()


def test_a_server_that_is_down_is_exit_2_naming_the_url(pair: Pair) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = pair.run("dataset", "list", remote=True, url=url)
    assert result.code == 2 and url in result.stderr and result.stdout == ""
    result = pair.run("gate", "check", NAME, "--json", remote=True, url=url)
    assert result.code == 2 and json.loads(result.stderr)["error"]["code"] == "storage_error"


def test_a_bad_token_and_options_without_an_endpoint_are_exit_2(pair: Pair) -> None:
    pair.token = "wrong"
    result = pair.run("dataset", "list", "--json", remote=True)
    assert result.code == 2 and json.loads(result.stderr)["error"]["code"] == "unauthenticated"
    result = pair.run("--author", "bob", "dataset", "list", remote=True)
    assert result.code == 2 and "--author" in result.stderr
    (pair.work / "keys.csv").write_text("sample_id\ns1\n")
    for flags in (("--delete-keys", str(pair.work / "keys.csv"), "--mode", "upsert"), ("--job", "etl/clean")):
        result = pair.run("commit", NAME, str(pair.work / "keys.csv"), *flags, remote=True)
        assert result.code == 2 and flags[0] in result.stderr and "cannot be sent to a server" in result.stderr
    os.environ["REGISTRY_TIMEOUT"] = "soon"
    try:
        result = pair.run("dataset", "list", remote=True)
    finally:
        del os.environ["REGISTRY_TIMEOUT"]
    assert result.code == 2 and "REGISTRY_TIMEOUT" in result.stderr


def test_the_installed_command_works_against_a_server(pair: Pair) -> None:
    assert pair.run("dataset", "create", NAME, "--key", "sample_id", remote=True).code == 0
    env = {**os.environ, "REGISTRY_URL": pair.url, "REGISTRY_TOKEN": pair.token}
    env.pop("REGISTRY_HOME", None)
    proc = subprocess.run([sys.executable, "-m", "registry.cli.main", "dataset", "list", "--json"], cwd=pair.work,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [d["name"] for d in json.loads(proc.stdout)] == [NAME]


ANSWERS = ("item,worker_id,answer,gold\ns1,w1,cat,false\ns1,w2,cat,false\ns1,w3,dog,false\ns2,w1,dog,false\n"
           "s2,w2,cat,true\n")


def test_imports_provenance_waivers_checkpoints_and_lineage_intake(pair: Pair) -> None:
    w = pair.work
    (w / "answers.csv").write_text(ANSWERS)
    (w / "strict.yaml").write_text(POLICY.replace("min: 2", "min: 3"))
    (w / "event.json").write_text(json.dumps(run_event([{"namespace": "registry", "name": "votes"}])))
    pair.both("import", "table", "votes", str(w / "answers.csv"), "--map",
              "key=item,annotator=worker_id,value=answer,ground_truth=gold", "--guideline-version", "g1", "--json")
    pair.both("history", "votes", "s1", "--json")
    pair.both("history", "votes", "s1")
    pair.both("blame", "votes", "--json")
    pair.both("blame", "votes")
    pair.both("policy", "set", "votes", str(w / "strict.yaml"))
    pair.both("qa", "run", "votes", code=1)
    pair.both("gate", "check", "votes", code=1)
    pair.both("gate", "waive", "votes", "--reason", "reviewed by hand", "--expires", "7d", "--json")
    pair.both("gate", "check", "votes")
    pair.both("audit", "checkpoint", "--out", "checkpoint.json")
    pair.both("audit", "verify", "--checkpoint", "checkpoint.json")
    pair.both("audit", "verify", "--checkpoint", "missing.json", code=2)
    pair.both("lineage", "ingest", str(w / "event.json"), "--json")
    pair.both("lineage", "votes", "--json")
