"""Two API server processes over one PostgreSQL catalog and one object folder, many writers at once.

Each server is a real ``registry serve`` process with its own home (as on two hosts), both pointing at
the same fresh PostgreSQL database and the same object store folder. Writers split between the two
servers commit upserts of their own rows to one dataset with ``If-Match`` (compare-and-swap on the head
they read) and retry on 409. Afterwards: the head holds every writer's rows (no lost update), the log is
one linear chain with one snapshot per successful commit, and ``registry audit verify`` passes over one
unbroken chain that holds every commit event and nothing from the losers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from registry import Registry
from registry.auth.tokens import create_token
from registry.context import create_home
from tests.support.api_support import ARROW, arrow_bytes
from tests.support.serve_process import start_serve

pytestmark = pytest.mark.postgres

WRITERS = 6
COMMITS_PER_WRITER = 3
ROWS_PER_COMMIT = 50
MAX_ATTEMPTS = 60
DATASET = "labels"


@contextmanager
def _server(home: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """``registry serve`` on a port of its own as its own process; yields its base URL."""
    proc, url = start_serve(["--home", str(home)], cwd=home, env=env, log=log, serve_options=["--workers", "1"])
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _rows(writer: int, step: int) -> pa.Table:
    start = (writer * COMMITS_PER_WRITER + step) * ROWS_PER_COMMIT
    ids = list(range(start, start + ROWS_PER_COMMIT))
    return pa.table({"id": ids, "label": [f"w{writer}c{step}"] * ROWS_PER_COMMIT})


@contextmanager
def _patched(env: dict[str, str]) -> Iterator[None]:
    """This process acts with the registry processes' settings (catalog, store) while inside."""
    mp = pytest.MonkeyPatch()
    for name, value in env.items():
        if name.startswith(("REGISTRY_", "OPENLINEAGE")):
            mp.setenv(name, value)
    try:
        yield
    finally:
        mp.undo()


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two servers (``urls``), writer and auditor headers, the first ``home``, the registry processes' ``env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OPENLINEAGE"))}
    env.update({"REGISTRY_DATABASE_URL": postgres_url, "REGISTRY_STORAGE_URL": (tmp_path / "objects").as_uri(),
                "OPENLINEAGE_DISABLED": "true"})
    homes = [tmp_path / "host-a", tmp_path / "host-b"]
    with _patched(env):
        for home in homes:
            create_home(home)
        with Registry.open(homes[0]) as reg:
            reg.create_dataset(DATASET, "id")
            reg.commit(DATASET, pa.table({"id": [-1], "label": ["seed"]}), message="seed")
            writer, _ = create_token(reg.ctx, "writers", "writer", [], actor="setup")
            auditor, _ = create_token(reg.ctx, "auditor", "auditor", [], actor="setup")
    with ExitStack() as stack:
        urls = [stack.enter_context(_server(home, env, tmp_path / f"{home.name}.log")) for home in homes]
        yield {"urls": urls, "writer": {"Authorization": f"Bearer {writer}"},
               "auditor": {"Authorization": f"Bearer {auditor}"}, "home": homes[0], "env": env}


def _writer(url: str, headers: dict[str, str], writer: int, outcome: dict[str, Any]) -> None:
    """Commit this writer's upserts one after another, each by compare-and-swap, retrying on 409."""
    with httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=60) as client:
        for step in range(COMMITS_PER_WRITER):
            body = arrow_bytes(_rows(writer, step))
            for _attempt in range(MAX_ATTEMPTS):
                head = client.get(f"/refs/{DATASET}@main")
                assert head.status_code == 200, head.text
                parent = head.json()["snapshot_id"]
                response = client.post(f"/datasets/{DATASET}/commits", content=body,
                                       params={"mode": "upsert", "message": f"writer {writer} step {step}"},
                                       headers={"Content-Type": ARROW, "If-Match": f'"{parent}"'})
                if response.status_code == 409:
                    assert response.json()["error"]["code"] == "ref_conflict", response.text
                    outcome["conflicts"] += 1
                    continue
                assert response.status_code == 201, response.text
                result = response.json()
                assert result["parent"] == parent and result["added"] == ROWS_PER_COMMIT
                outcome["snapshots"].append(result["snapshot_id"])
                break
            else:
                raise AssertionError(f"writer {writer} lost {MAX_ATTEMPTS} races in a row")


def test_two_servers_many_writers_no_lost_update(cluster: dict[str, Any]) -> None:
    urls, headers, home, env = cluster["urls"], cluster["writer"], cluster["home"], cluster["env"]
    outcomes = [{"conflicts": 0, "snapshots": []} for _ in range(WRITERS)]
    errors: list[BaseException] = []

    def run(writer: int) -> None:
        try:
            _writer(urls[writer % 2], headers, writer, outcomes[writer])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not errors, errors[0]
    committed = {s for o in outcomes for s in o["snapshots"]}
    assert len(committed) == WRITERS * COMMITS_PER_WRITER
    conflicts = sum(o["conflicts"] for o in outcomes)
    assert conflicts > 0, "the writers never raced; the test proves nothing"
    print(f"{len(committed)} commits through 2 servers, {conflicts} compare-and-swap conflicts retried")

    with httpx.Client(base_url=urls[1] + "/api/v1", headers=headers, timeout=60) as client:
        # No lost update: the head has every writer's rows, with the value of that writer's commit.
        data = client.get(f"/snapshots/{DATASET}@main/data", params={"format": "arrow"})
        assert data.status_code == 200
        table = pa.ipc.open_stream(io.BytesIO(data.content)).read_all().sort_by("id")
        expected = pa.concat_tables([pa.table({"id": [-1], "label": ["seed"]})] +
                                    [_rows(w, s) for w in range(WRITERS) for s in range(COMMITS_PER_WRITER)])
        assert table.select(["id", "label"]).to_pylist() == expected.sort_by("id").to_pylist()

        # One linear chain: every successful commit once, each the parent of the next, the seed at the end.
        log = client.get(f"/datasets/{DATASET}/log").json()["data"]
        assert len(log) == WRITERS * COMMITS_PER_WRITER + 1
        assert {entry["id"] for entry in log[:-1]} == committed
        for newer, older in zip(log, log[1:], strict=False):
            assert newer["parents"] == [older["id"]]
            assert newer["rows"] == older["rows"] + ROWS_PER_COMMIT
        assert log[-1]["parents"] == [] and log[-1]["message"] == "seed"

    # One unbroken audit chain, verified by the CLI, holding exactly the winners' commit events.
    verify = subprocess.run([sys.executable, "-m", "registry.cli.main", "--home", str(home), "audit", "verify",
                             "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True and report["problem"] is None and report["first_bad_seq"] is None
    response = httpx.get(urls[0] + "/api/v1/audit/events", headers=cluster["auditor"], timeout=60)
    assert response.status_code == 200, response.text
    events = response.json()["data"]
    assert report["events"] == len(events) == report["head_seq"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for before, after in zip(events, events[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    commits = [e for e in events if e["action"] == "snapshot.commit" and e["dataset"] == DATASET]
    assert {e["snapshot"] for e in commits} == committed | {log[-1]["id"]}
    assert len(commits) == len(committed) + 1
    assert {e["actor"] for e in commits if e["snapshot"] in committed} == {"writers"}
