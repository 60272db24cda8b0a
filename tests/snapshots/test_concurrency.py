"""Several OS processes committing to one dataset at once, on SQLite and on PostgreSQL.

The registry retries nothing itself: ``main`` moves by compare-and-swap, so of several writers that
read the same head exactly one can move it; every other one must exit 3 (conflict) and leave no
trace in history. No commit that reported success may be lost, and history must stay linear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from registry import Registry, catalog
from registry.db import transaction
from registry.snapshots.manifest import load_manifest
from tests.conftest import Cli
from tests.support.helpers import labels_table, sorted_rows

N_PROCESSES = 6
UPSERT_ROWS = 3000
LOOP_COMMITS = 4
DATASET = "labels"
PROCESS_TIMEOUT = 120.0


@dataclass
class Run:
    """One `registry` subprocess started with Popen; output goes to files so pipes never fill up."""

    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()


def _spawn(cli: Cli, tag: str, *args: str) -> Run:
    out_path, err_path = cli.cwd / f"{tag}.out", cli.cwd / f"{tag}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", *args], cwd=cli.cwd,
                                env=cli.env(), stdout=out, stderr=err)
    return Run(proc, out_path, err_path)


def _kill_all(runs: list[Run]) -> None:
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def _setup_dataset(home: Path, rows: int) -> tuple[str, pa.Table]:
    initial = labels_table(rows, seed=1, prefix="base_")
    with Registry.open(home) as reg:
        reg.create_dataset(DATASET, "sample_id")
        head = reg.commit(DATASET, initial, message="initial").snapshot_id
    return head, initial


def _write_upsert(folder: Path, worker: int, step: int) -> tuple[Path, pa.Table]:
    table = labels_table(UPSERT_ROWS, seed=100 * worker + step, prefix=f"w{worker}c{step}_")
    path = folder / f"upsert-w{worker}-c{step}.parquet"
    pq.write_table(table, path)
    return path, table


def _check_outcome(code: int | None, stdout: str, stderr: str, expected_parent: str | None = None
                   ) -> dict[str, Any] | None:
    """The commit's JSON result on exit 0; None on a conflict (exit 3). Anything else fails the test."""
    assert code in (0, 3), f"commit exited {code}; stderr: {stderr!r}"
    if code == 0:
        result: dict[str, Any] = json.loads(stdout)
        assert result["created"] is True
        assert result["added"] == UPSERT_ROWS and result["changed"] == 0 and result["removed"] == 0
        if expected_parent is not None:
            assert result["parent"] == expected_parent
        return result
    assert stdout == "", "a losing commit must print no snapshot id"
    error = json.loads(stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "ref_conflict", error
    assert "another writer" in error["message"], error
    return None


def _read_all(home: Path) -> pa.Table:
    with Registry.open(home) as reg:
        return reg.read(DATASET)


def _check_linear_history(cli: Cli, expected_ids: set[str], initial: str) -> list[dict[str, Any]]:
    """`registry log --json` is one chain from the head back to the initial snapshot, nothing else."""
    res = cli("log", DATASET, "--json")
    assert res.code == 0, res.stderr
    entries: list[dict[str, Any]] = json.loads(res.stdout)
    assert {str(e["id"]) for e in entries} == expected_ids
    assert len(entries) == len(expected_ids)
    for newer, older in zip(entries, entries[1:], strict=False):
        assert newer["parents"] == [older["id"]]
        assert newer["rows"] == older["rows"] + UPSERT_ROWS
    assert entries[-1]["id"] == initial and entries[-1]["parents"] == []
    assert entries[0]["branches"] == ["main"]
    return entries


def _check_verify(cli: Cli, snapshots: int) -> None:
    res = cli("verify", "--json")
    assert res.code == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] is True and report["problems"] == []
    # A loser's snapshot row must have been rolled back with its failed ref move.
    assert report["snapshots"] == snapshots


def test_cli_subprocesses_use_the_parametrised_catalog(backend: str, home: Path, cli: Cli,
                                                       database_url: str | None) -> None:
    env = cli.env()
    assert env["REGISTRY_HOME"] == str(home)
    if backend == "postgres":
        assert env.get("REGISTRY_DATABASE_URL") == database_url
    else:
        assert "REGISTRY_DATABASE_URL" not in env
    res = cli("dataset", "create", "probe", "--key", "sample_id", "--json")
    assert res.code == 0, res.stderr
    engine = create_engine(database_url or f"sqlite:///{home / 'catalog.db'}")
    try:
        with engine.connect() as conn:
            names = [row[0] for row in conn.execute(text("SELECT name FROM dataset"))]
    finally:
        engine.dispose()
    assert names == ["probe"]
    assert (home / "catalog.db").exists() == (backend == "sqlite")


@pytest.mark.slow
def test_concurrent_commits_expecting_the_same_parent_exactly_one_wins(home: Path, cli: Cli) -> None:
    head, initial = _setup_dataset(home, 5000)
    inputs = [_write_upsert(cli.cwd, worker, 0) for worker in range(N_PROCESSES)]
    runs: list[Run] = []
    try:
        for worker, (path, _) in enumerate(inputs):
            run = _spawn(cli, f"w{worker}", "commit", DATASET, str(path), "--mode", "upsert",
                         "--expect-parent", head, "-m", f"worker {worker}", "--json")
            runs.append(run)
        for run in runs:
            run.proc.wait(timeout=PROCESS_TIMEOUT)
    finally:
        _kill_all(runs)

    results = [_check_outcome(run.proc.returncode, run.stdout, run.stderr, expected_parent=head)
               for run in runs]
    winners = [i for i, result in enumerate(results) if result is not None]
    assert len(winners) == 1, f"exit codes {[r.proc.returncode for r in runs]}"
    winner = winners[0]
    winner_result = results[winner]
    assert winner_result is not None
    winner_id = str(winner_result["snapshot_id"])

    final = _read_all(home)
    expected = pa.concat_tables([initial, inputs[winner][1]])
    assert sorted_rows(final) == sorted_rows(expected)
    _check_linear_history(cli, {head, winner_id}, head)
    _check_verify(cli, snapshots=2)


# A worker process: runs several `registry commit` invocations one after another through the CLI's own
# entry point (same argument parsing, error mapping and exit codes), paying Python's start-up once.
WORKER = """
import contextlib, io, json, sys
from registry.cli.main import main

results = []
for path in sys.argv[2:]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["commit", sys.argv[1], path, "--mode", "upsert", "-m", path, "--json"])
    results.append({"path": path, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


@pytest.mark.slow
def test_concurrent_commit_loops_lose_no_commit_and_keep_history_linear(home: Path, cli: Cli) -> None:
    head, initial = _setup_dataset(home, 5000)
    inputs = {(w, s): _write_upsert(cli.cwd, w, s) for w in range(N_PROCESSES) for s in range(LOOP_COMMITS)}
    script = cli.cwd / "commit_loop.py"
    script.write_text(WORKER)
    by_path = {str(path): (table, ws) for ws, (path, table) in inputs.items()}

    runs: list[Run] = []
    try:
        for worker in range(N_PROCESSES):
            out_path, err_path = cli.cwd / f"loop{worker}.out", cli.cwd / f"loop{worker}.err"
            paths = [str(inputs[(worker, step)][0]) for step in range(LOOP_COMMITS)]
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen([sys.executable, str(script), DATASET, *paths], cwd=cli.cwd,
                                        env=cli.env({"REGISTRY_MAX_LAYERS": "3"}), stdout=out, stderr=err)
            runs.append(Run(proc, out_path, err_path))
        for run in runs:
            run.proc.wait(timeout=PROCESS_TIMEOUT)
    finally:
        _kill_all(runs)

    committed: dict[str, tuple[int, int]] = {}
    attempts = 0
    for run in runs:
        assert run.proc.returncode == 0, run.stderr
        for entry in json.loads(run.stdout):
            attempts += 1
            outcome = _check_outcome(entry["code"], entry["stdout"], entry["stderr"])
            if outcome is not None:
                snapshot = str(outcome["snapshot_id"])
                assert snapshot not in committed
                committed[snapshot] = by_path[entry["path"]][1]
    assert attempts == N_PROCESSES * LOOP_COMMITS
    assert committed, "at least the first commit to reach the catalog must win"
    print(f"{len(committed)} of {attempts} concurrent commits won, {attempts - len(committed)} conflicted")

    # No commit lost, none half-applied: the head holds exactly the initial rows plus every winner's rows.
    final = _read_all(home)
    expected = pa.concat_tables([initial, *(inputs[ws][1] for ws in committed.values())])
    assert final.num_rows == expected.num_rows
    assert sorted_rows(final) == sorted_rows(expected)

    entries = _check_linear_history(cli, {head, *committed}, head)
    assert len(entries) == len(committed) + 1
    with Registry.open(home) as reg, transaction(reg.ctx.engine) as session:
        layers = len(load_manifest(reg.ctx, catalog.get_snapshot(session, str(entries[0]["id"]))).layers)
    assert layers == len(committed) + 1, "a commit compacted (compaction runs outside commits)"
    res = cli("compact", "--auto", env={"REGISTRY_MAX_LAYERS": "3"})
    assert res.code == 0, res.stderr
    with Registry.open(home) as reg, transaction(reg.ctx.engine) as session:
        layers = len(load_manifest(reg.ctx, catalog.get_snapshot(session, str(entries[0]["id"]))).layers)
    assert layers <= 3
    assert sorted_rows(_read_all(home)) == sorted_rows(expected)
    _check_verify(cli, snapshots=len(committed) + 1)
