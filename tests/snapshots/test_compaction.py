"""Compaction outside the commit: the size-relative policy, ``registry compact --auto``, the serve worker,
crash safety at every compaction failpoint, compaction racing commits (SQLite and PostgreSQL) and reads
during compaction."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.config import Settings
from registry.db import transaction
from registry.models import SnapshotRow
from registry.snapshots.compact import COMPACT_POINTS, plan_compaction
from registry.snapshots.manifest import Layer, load_manifest
from tests.conftest import Cli
from tests.support.api_support import serve
from tests.support.helpers import labels_table, sorted_rows

NAME = "labels"
SQLITE = pytest.mark.parametrize("backend", ["sqlite"])


def _layers(n_rows: list[int]) -> list[Layer]:
    return [Layer(rows=f"{i:064x}", rows_count=n) for i, n in enumerate(n_rows)]


def test_policy_rewrites_the_base_only_past_its_fraction() -> None:
    assert plan_compaction(_layers([1000]), 8, 0.25) is None
    assert plan_compaction(_layers([1000, 100, 100]), 8, 0.25) is None
    assert plan_compaction(_layers([1000, 100, 100, 50]), 8, 0.25) == 0
    assert plan_compaction(_layers([1000, *[10] * 30]), 8, 0.25) == 0  # 300 rows above: 30%
    assert plan_compaction(_layers([1000, *[10] * 30]), 8, 0) != 0  # 0: the base is never rewritten


def test_policy_merges_upper_layers_in_size_tiers() -> None:
    # The newest small layers merge with each other once FAN_IN (4) of one size class pile up, not with
    # the bigger layers below them.
    assert plan_compaction(_layers([10**7, 40_000, 10_000, 10_000, 10_000]), 8, 0.25) is None
    assert plan_compaction(_layers([10**7, 160_000, 10_000, 10_000, 10_000, 10_000]), 8, 0.25) == 2
    # Like a carry, the merged 40,000 rows take in the layer of their size class below them.
    assert plan_compaction(_layers([10**7, 40_000, 10_000, 10_000, 10_000, 10_000]), 8, 0.25) == 1
    assert plan_compaction(_layers([10**7, 40_000, 40_000, 40_000, 40_000]), 8, 0.25) == 1
    # A head above max_layers (layers of unequal sizes) merges its newest layers to fit.
    sizes = [10**7, 10**6, 300_000, 80_000, 20_000, 5000, 1200, 300, 80]
    first = plan_compaction(_layers(sizes), 6, 0.5)
    assert first == 5


def test_every_row_is_rewritten_a_logarithmic_number_of_times() -> None:
    """Simulate 200 commits of 1,000 rows under the policy: the rows the upper tiers rewrite stay a
    small multiple of the rows committed (size tiers), and the base is never rewritten at 2%."""
    layers = [10**8]
    rewritten = 0
    for _ in range(200):
        layers.append(1000)
        first = plan_compaction(_layers(layers), 8, 0.25)
        assert first != 0
        if first is not None:
            rewritten += sum(layers[first:])
            layers = [*layers[:first], sum(layers[first:])]
        assert len(layers) <= 8
    assert rewritten <= 4 * 200 * 1000  # log_4(200) ~ 3.8 rewrites per row


def _head(reg: Registry) -> SnapshotRow:
    with transaction(reg.ctx.engine, readonly=True) as session:
        snap = session.get(SnapshotRow, reg.show(NAME).id)
        assert snap is not None
        session.expunge(snap)
    return snap


def _layer_count(reg: Registry) -> int:
    return len(load_manifest(reg.ctx, _head(reg)).layers)


def _history(reg: Registry, commits: int, rows: int = 40) -> pa.Table:
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, labels_table(2000))
    for i in range(commits):
        reg.commit(NAME, labels_table(rows, seed=i + 1, prefix=f"u{i:03d}-"), mode="upsert")
    return reg.read(NAME)


@SQLITE
def test_commits_never_compact_and_compact_auto_does(reg: Registry, cli: Cli) -> None:
    reg.ctx.settings = reg.ctx.settings.replace(compaction={"max_layers": 4})
    expected = _history(reg, 6)
    assert _layer_count(reg) == 7, "a commit compacted"
    ids = [s.id for s in reg.log(NAME)]
    res = cli("compact", "--auto", "--json", env={"REGISTRY_MAX_LAYERS": "4"})
    assert res.code == 0, res.stderr
    [done] = json.loads(res.stdout)
    assert done["dataset"] == NAME and done["ref"] == "main" and done["layers_before"] == 7
    assert 2 <= done["layers_after"] <= 4 and not done["full"]
    assert [s.id for s in reg.log(NAME)] == ids
    assert sorted_rows(reg.read(NAME)) == sorted_rows(expected)
    again = cli("compact", "--auto", env={"REGISTRY_MAX_LAYERS": "4"})
    assert again.code == 0 and "nothing to compact" in again.stdout
    assert reg.verify().ok


@SQLITE
def test_compact_auto_rewrites_the_base_past_its_fraction(reg: Registry, cli: Cli) -> None:
    expected = _history(reg, 3, rows=200)  # 600 rows above a 2,000-row base: 30% >= 25%
    res = cli("compact", "--auto", "--json", NAME)
    [done] = json.loads(res.stdout)
    assert done["full"] and done["layers_after"] == 1
    assert sorted_rows(reg.read(NAME)) == sorted_rows(expected)


@SQLITE
def test_compact_usage_errors(reg: Registry, cli: Cli) -> None:
    reg.create_dataset(NAME, "sample_id")
    res = cli("compact")
    assert res.code == 2 and "NAME" in res.stderr
    res = cli("compact", "--auto", "nosuch")
    assert res.code == 2 and "nosuch" in res.stderr


def _objects(home: Path) -> set[str]:
    return {p.parent.name + p.name for p in (home / "objects").glob("??/*")}


@SQLITE
@pytest.mark.parametrize("point", COMPACT_POINTS)
def test_compaction_killed_at_every_failpoint_leaves_old_or_new_manifest(point: str, reg: Registry, cli: Cli
                                                                          ) -> None:
    expected = _history(reg, 3, rows=200)
    before_manifest = _head(reg).manifest_sha256
    ids = [s.id for s in reg.log(NAME)]
    before = _objects(reg.home)
    res = cli("compact", "--auto", env={"REGISTRY_FAILPOINT": point})
    assert res.code == -signal.SIGKILL, res.stderr
    after = _head(reg).manifest_sha256
    assert (after != before_manifest) == (point == "compact:after-catalog-commit")
    assert [s.id for s in reg.log(NAME)] == ids
    assert sorted_rows(reg.read(NAME)) == sorted_rows(expected)
    assert cli("verify").code == 0
    res = cli("gc", "--min-age", "0", "--json")
    assert res.code == 0, res.stderr
    if after == before_manifest:
        assert _objects(reg.home) == before, "gc left what the killed compaction wrote"
    assert not list((reg.home / "objects" / "tmp").iterdir())
    # The next pass finishes the job.
    assert cli("compact", "--auto").code == 0
    assert _layer_count(reg) == 1
    assert sorted_rows(reg.read(NAME)) == sorted_rows(expected)
    assert cli("verify").code == 0


def _commit_loop(cli: Cli, tag: str, files: list[Path]) -> subprocess.Popen[bytes]:
    script = ("import subprocess, sys, json\n"
              "codes = []\n"
              "for path in sys.argv[1:]:\n"
              "    p = subprocess.run([sys.executable, '-m', 'registry.cli.main', 'commit', 'labels', path,"
              " '--mode', 'upsert', '--json'], capture_output=True, text=True)\n"
              "    codes.append([path, p.returncode, p.stdout, p.stderr])\n"
              "print(json.dumps(codes))\n")
    return subprocess.Popen([sys.executable, "-c", script, *map(str, files)], cwd=cli.cwd, env=cli.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_compaction_racing_commits_loses_nothing(reg: Registry, cli: Cli, tmp_path: Path) -> None:
    """Two writers commit upserts while a third process runs the policy in a loop (low layer limit, so
    it compacts heads that commits build on): every successful commit's rows are in the head, ids and
    history are unchanged by compaction, and verify passes (SQLite and PostgreSQL)."""
    reg.create_dataset(NAME, "sample_id")
    base = labels_table(3000)
    reg.commit(NAME, base)
    files: dict[int, list[Path]] = {0: [], 1: []}
    for writer in (0, 1):
        for step in range(6):
            table = labels_table(30, seed=100 * writer + step, prefix=f"w{writer}-{step}-")
            path = tmp_path / f"w{writer}-{step}.parquet"
            pq.write_table(table, path)
            files[writer].append(path)
    loop = ("import subprocess, sys, time\n"
            "end = time.time() + 600\n"
            "while time.time() < end:\n"
            "    p = subprocess.run([sys.executable, '-m', 'registry.cli.main', 'compact', '--auto'],"
            " capture_output=True, text=True)\n"
            "    if p.returncode != 0: print(p.stderr, file=sys.stderr); sys.exit(p.returncode)\n"
            "    if open(sys.argv[1]).read() == 'stop': break\n")
    stop = tmp_path / "stop"
    stop.write_text("")
    compactor = subprocess.Popen([sys.executable, "-c", loop, str(stop)], cwd=cli.cwd,
                                 env=cli.env({"REGISTRY_MAX_LAYERS": "2"}), stderr=subprocess.PIPE)
    writers = [_commit_loop(cli, f"w{i}", files[i]) for i in (0, 1)]
    outcomes = []
    try:
        for proc in writers:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
            outcomes += json.loads(out)
    finally:
        stop.write_text("stop")
        _, err = compactor.communicate(timeout=600)
    assert compactor.returncode == 0, err
    committed = [Path(path) for path, code, _, _ in outcomes if code == 0]
    assert all(code in (0, 3) for _, code, _, _ in outcomes), outcomes
    assert len(committed) >= 6
    head = {r["sample_id"]: r for r in reg.read(NAME).to_pylist()}
    for path in committed:
        for row in pq.read_table(path).to_pylist():
            assert head[row["sample_id"]] == row
    log = reg.log(NAME)
    assert len(log) == 1 + len(committed)
    assert len(head) == 3000 + 30 * len(committed)
    assert reg.compact_auto() is not None and reg.verify().ok
    assert [s.id for s in reg.log(NAME)] == [s.id for s in log]


@SQLITE
def test_reads_during_compaction_see_the_same_rows(reg: Registry, cli: Cli) -> None:
    """Reads in another thread while ``compact --auto`` rewrites the layers in another process: each sees
    the same rows. Each read's interval is kept, so the test knows that one overlapped the compaction and
    that one ran wholly after it, however slow the machine (no count of reads in a fixed time)."""
    expected = sorted_rows(_history(reg, 4, rows=300))
    reads: list[tuple[float, float]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        other = Registry.open(reg.home)
        try:
            while not stop.is_set():
                started = time.monotonic()
                rows = sorted_rows(other.read(NAME))
                if rows != expected:
                    failures.append(AssertionError("a read during compaction differed"))
                reads.append((started, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            other.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        began = time.monotonic()
        res = cli("compact", "--auto", "--json")
        ended = time.monotonic()
        assert res.code == 0 and json.loads(res.stdout)[0]["full"]
        deadline = ended + 60
        while not any(start > ended for start, _ in reads) and not failures and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(60)
    assert not failures, failures
    assert any(start < ended and end > began for start, end in reads), "no read overlapped the compaction"
    assert any(start > ended for start, _ in reads), "no read after the compaction"


@SQLITE
def test_serve_runs_the_compaction_worker(reg: Registry) -> None:
    reg.ctx.settings = reg.ctx.settings.replace(compaction={"max_layers": 3})
    expected = _history(reg, 5)
    assert _layer_count(reg) == 6
    settings = Settings(compaction={"interval": 0.2, "max_layers": 3})
    with serve(create_app(reg.home, settings)):
        deadline = time.time() + 30
        while _layer_count(reg) > 3 and time.time() < deadline:
            time.sleep(0.2)
    assert _layer_count(reg) <= 3
    assert sorted_rows(reg.read(NAME)) == sorted_rows(expected)
    events = reg.audit_log(action="snapshot.compact")
    assert events and events[-1].actor == "registry"


@SQLITE
def test_compaction_killed_at_random_moments_leaves_old_or_new_manifest(reg: Registry, cli: Cli) -> None:
    """SIGKILL a `compact --auto` process at seeded random moments (each time after new commits gave it a
    base to rewrite): the head reads the same rows through the old or the new manifest, ids never change,
    verify passes, and gc leaves only referenced objects and no temporary files."""
    import random

    _history(reg, 0)
    rng = random.Random(19)
    outcomes: list[str] = []
    for attempt in range(5):
        for i in range(3):
            reg.commit(NAME, labels_table(400, seed=100 + 10 * attempt + i, prefix=f"r{attempt}-{i}-"),
                       mode="upsert")
        expected = sorted_rows(reg.read(NAME))
        ids = [s.id for s in reg.log(NAME)]
        before = _head(reg).manifest_sha256
        proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "compact", "--auto"], cwd=cli.cwd,
                                env=cli.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        outcomes.append("new" if _head(reg).manifest_sha256 != before else "old")
        assert [s.id for s in reg.log(NAME)] == ids
        assert sorted_rows(reg.read(NAME)) == expected
        assert cli("verify").code == 0
        assert cli("gc", "--min-age", "0").code == 0
        assert not list((reg.home / "objects" / "tmp").iterdir())
        assert sorted_rows(reg.read(NAME)) == expected
    print("outcomes:", outcomes)


@SQLITE
def test_compact_auto_drops_the_cached_indexes_no_ref_uses(reg: Registry, cli: Cli, home: Path) -> None:
    expected = _history(reg, 6)
    older = reg.log(NAME)[2]
    older_rows = sorted_rows(reg.read(f"{NAME}@{older.id}"))
    folder = reg.ctx.cache.folder
    before = set(load_manifest(reg.ctx, _head(reg)).objects())
    assert all((folder / sha).is_dir() for sha in before)
    assert cli("compact", "--auto", env={"REGISTRY_MAX_LAYERS": "4"}).code == 0
    after = set(load_manifest(reg.ctx, _head(reg)).objects())
    gone = before - after
    assert gone, "the policy merged nothing"
    assert not any((folder / sha).exists() for sha in gone), "indexes of merged-away layers were kept"
    assert all((folder / sha).is_dir() for sha in after), "an index the head uses was dropped"
    # The older snapshot still names the merged-away layers: a fresh process rebuilds their indexes on use.
    with Registry.open(home) as fresh:
        assert sorted_rows(fresh.read(f"{NAME}@{older.id}")) == older_rows
        assert fresh.diff(f"{NAME}@{older.id}", NAME).to_dict() == reg.diff(f"{NAME}@{older.id}", NAME).to_dict()
        assert sorted_rows(fresh.read(NAME)) == sorted_rows(expected)
        assert fresh.verify().ok
