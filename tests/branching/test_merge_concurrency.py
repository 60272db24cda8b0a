"""A merge moves its target by compare-and-swap: a commit landing on the target during the merge makes
the merge fail with exit 3 (or start over with ``--retry``), and neither change is ever lost. Real OS
processes race on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import registry.branching.merge as merge_service
from registry import Registry
from registry.errors import RefConflict
from tests.conftest import Cli
from tests.support.helpers import labels_table

SCHEMA = labels_table(1).schema


def _setup(reg: Registry) -> pa.Table:
    reg.create_dataset("ds", "sample_id")
    table = labels_table(500)
    reg.commit("ds", table)
    reg.branch("ds/feat")
    reg.commit("ds@feat", labels_table(20, seed=5, prefix="feat_"), mode="upsert")
    reg.commit("ds", labels_table(20, seed=6, prefix="main_"), mode="upsert")
    return table


def _commit_from_another_process(cli: Cli, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / f"{prefix}.parquet"
    pq.write_table(labels_table(10, seed=7, prefix=prefix), path)
    res = cli("commit", "ds", str(path), "--mode", "upsert", "--json")
    assert res.code == 0, res.stderr


def _race_once(monkeypatch: pytest.MonkeyPatch, cli: Cli, tmp_path: Path, prefixes: list[str]) -> None:
    """Make another process commit to main while the merge is between its plan and its transaction."""
    real = merge_service.write_merge_layer

    def racing(*args: Any, **kwargs: Any) -> Any:
        if prefixes:
            _commit_from_another_process(cli, tmp_path, prefixes.pop(0))
        return real(*args, **kwargs)

    monkeypatch.setattr(merge_service, "write_merge_layer", racing)


def test_a_commit_during_the_merge_fails_it_with_a_conflict(reg: Registry, cli: Cli, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _setup(reg)
    _race_once(monkeypatch, cli, tmp_path, ["race1_"])
    with pytest.raises(RefConflict, match="moved"):
        reg.merge("ds@feat", "main")
    rows = set(reg.read("ds").column("sample_id").to_pylist())
    assert "race1_00000000" in rows and "feat_00000000" not in rows
    assert len(reg.show("ds").parents) == 1, "the losing merge left no snapshot on main"
    assert reg.verify().ok


def test_retry_starts_over_and_keeps_both(reg: Registry, cli: Cli, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _setup(reg)
    _race_once(monkeypatch, cli, tmp_path, ["race1_", "race2_"])
    result = reg.merge("ds@feat", "main", retry=3)
    assert result.attempts == 3
    rows = set(reg.read("ds").column("sample_id").to_pylist())
    assert {"race1_00000000", "race2_00000000", "feat_00000000", "main_00000000"} <= rows
    assert reg.show("ds").parents[1] == reg.show("ds@feat").id


def _spawn(cli: Cli, tag: str, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = cli.cwd / f"{tag}.out", cli.cwd / f"{tag}.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", *args], cwd=cli.cwd, env=cli.env(),
                                stdout=o, stderr=e)
    return proc, out, err


def test_concurrent_commits_and_merges_lose_nothing(reg: Registry, cli: Cli, tmp_path: Path) -> None:
    _setup(reg)
    reg.branch("ds/other", from_ref="main~1")
    reg.commit("ds@other", labels_table(20, seed=8, prefix="other_"), mode="upsert")
    files = []
    for worker in range(3):
        path = tmp_path / f"w{worker}.parquet"
        pq.write_table(labels_table(5, seed=worker, prefix=f"w{worker}_"), path)
        files.append(path)
    runs = [_spawn(cli, f"commit{w}", "commit", "ds", str(p), "--mode", "upsert", "--json")
            for w, p in enumerate(files)]
    runs += [_spawn(cli, "merge-feat", "merge", "ds@feat", "--into", "main", "--retry", "20", "--json"),
             _spawn(cli, "merge-other", "merge", "ds@other", "--into", "main", "--json")]
    outcomes = []
    for proc, _out, err in runs:
        code = proc.wait(timeout=300)
        assert code in (0, 3), err.read_text()
        if code == 3:
            assert json.loads(err.read_text().strip().splitlines()[-1])["error"]["code"] == "ref_conflict"
        outcomes.append(code)
    rows = set(reg.read("ds").column("sample_id").to_pylist())
    for worker, code in enumerate(outcomes[:3]):
        assert (f"w{worker}_00000000" in rows) == (code == 0), "a reported commit is on main, a refused one not"
    assert outcomes[3] == 0, "the merge with --retry lands"
    assert "feat_00000000" in rows
    assert ("other_00000000" in rows) == (outcomes[4] == 0)
    history = reg.log("ds")
    merges = [s for s in history if len(s.parents) == 2]
    assert len(merges) == 1 + (outcomes[4] == 0)
    assert reg.verify().ok
