"""Crash safety of the commit write path (design invariant 2) and gc's protection of commits in flight.

A commit writes its objects, then its manifest, then moves ``main`` in one catalog transaction. A
process killed anywhere must leave either the old state or the new one (never a half state), plus at
most unreferenced objects that ``gc`` removes; after that, verify passes and the next commit works.
Crashes are real: ``REGISTRY_FAILPOINT`` makes the CLI process SIGKILL itself at a named point, or
the test SIGKILLs a running commit from outside at a random moment.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from registry import Registry
from registry.errors import NotFound
from registry.failpoints import POINTS
from registry.snapshots.gc import DEFAULT_MIN_AGE, referenced_objects
from tests.conftest import Cli
from tests.support.helpers import labels_table

DATASET = "labels"
COMMITTED_POINT = "commit:after-catalog-commit"
# Objects a v1 -> v2 replace commit (rows changed, added and removed) has written when killed at each point:
# the change rows, then the deleted keys, then the manifest.
WRITTEN_AT = {
    "commit:after-change-object": 1,
    "commit:after-objects": 2,
    "commit:after-manifest": 3,
    "commit:before-catalog-commit": 3,
    "commit:after-catalog-commit": 3,
}
# Objects a dataset's first commit of a Parquet file (streamed) has written at each point: the rows, then
# the manifest (nothing is deleted, so there is no deletes object).
FIRST_WRITTEN_AT = {
    "commit:after-change-object": 1,
    "commit:after-objects": 1,
    "commit:after-manifest": 2,
    "commit:before-catalog-commit": 2,
    "commit:after-catalog-commit": 2,
}
BIG_ROWS = 300_000
RANDOM_KILLS = 3
POSTGRES_ONLY = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])


# ----------------------------------------------------------------------------------------------- helpers


def _store_objects(home: Path) -> set[str]:
    """Every object file in the home's store, listed straight from the folder."""
    root = home / "objects"
    return {prefix.name + item.name for prefix in root.iterdir() if prefix.is_dir() and len(prefix.name) == 2
            for item in prefix.iterdir()}


def _object_path(home: Path, sha: str) -> Path:
    return home / "objects" / sha[:2] / sha[2:]


def _temp_files(home: Path) -> list[Path]:
    return sorted((home / "objects" / "tmp").iterdir())


def _same_rows(actual: pa.Table, expected: pa.Table) -> bool:
    """Equal as sets of rows (storage order differs)."""
    if sorted(actual.column_names) != sorted(expected.column_names):
        return False
    expected = expected.select(actual.column_names)
    return bool(actual.sort_by("sample_id").equals(expected.sort_by("sample_id")))


def _v2_of(v1: pa.Table) -> pa.Table:
    """v1 with 100 rows removed, 200 relabelled and 200 added: a commit writes rows, deletes, manifest."""
    kept = v1.slice(100)
    labels = kept.column("label").to_pylist()
    labels[:200] = ["relabelled"] * 200
    kept = kept.set_column(kept.schema.get_field_index("label"), "label", pa.array(labels, pa.string()))
    return pa.concat_tables([kept, labels_table(200, seed=7, prefix="new_")])


@contextmanager
def _opened(home: Path) -> Iterator[Registry]:
    """A fresh registry (no memoised indexes), as a new process would open it."""
    reg = Registry.open(home)
    try:
        yield reg
    finally:
        reg.close()


def _start_v1(home: Path, v1: pa.Table) -> str:
    with _opened(home) as reg:
        reg.create_dataset(DATASET, "sample_id")
        return reg.commit(DATASET, v1, message="v1").snapshot_id


def _gc_json(cli: Cli, *args: str) -> dict[str, Any]:
    res = cli("gc", *args, "--json")
    assert res.code == 0, res.stderr
    report: dict[str, Any] = json.loads(res.stdout)
    return report


def _spawn_commit(cli: Cli, path: Path, message: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "registry.cli.main", "commit", DATASET, str(path),
                             "-m", message, "--json"], cwd=cli.cwd, env=cli.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _killed_after(proc: subprocess.Popen[bytes], delay: float, seed: int) -> subprocess.Popen[bytes]:
    """``proc`` SIGKILLed ``delay`` seconds after its start, unless it ended first (then it must have
    succeeded); waited for."""
    try:
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGKILL), f"seed {seed}: {proc.returncode} {err!r}"
    return proc


def _check_consistent_and_collect(home: Path, old_head: str, new_content: pa.Table, old_content: pa.Table,
                                  message: str) -> str:
    """After a kill: main is at the old head (old rows) or at one new child of it holding the new rows;
    verify passes; gc with min-age 0 leaves exactly the referenced objects and no temporary files, and
    verify still passes. Returns the head."""
    with _opened(home) as reg:
        head = reg.log(DATASET)[0]
        if head.id == old_head:
            assert _same_rows(reg.read(DATASET), old_content)
        else:
            assert head.parents == [old_head] and head.message == message, "main moved somewhere unexpected"
            assert head.rows == new_content.num_rows
            assert _same_rows(reg.read(DATASET), new_content)
        report = reg.verify()
        assert report.ok, report.problems
        gc_report = reg.gc(min_age=0)
        referenced = referenced_objects(reg.ctx)
        assert _store_objects(home) == referenced
        assert set(gc_report.deleted).isdisjoint(referenced)
    assert _temp_files(home) == []
    with _opened(home) as reg:
        after = reg.verify()
        assert after.ok, after.problems
        assert after.objects == len(referenced)
    return head.id


@contextmanager
def _ref_row_locked(database_url: str) -> Iterator[None]:
    """Hold a row lock on ``main`` (PostgreSQL), so a commit pauses right before its ref move."""
    engine = create_engine(database_url)
    conn = engine.connect()
    try:
        conn.execute(text("SELECT snapshot_id FROM ref WHERE name = 'main' FOR UPDATE")).all()
        yield
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()


def _wait_until_blocked_on_lock(database_url: str, proc: subprocess.Popen[bytes], timeout: float = 60
                                ) -> None:
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as conn:
            while True:
                waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                            "current_database() AND wait_event_type = 'Lock'")).scalar_one()
                if waiting:
                    return
                assert proc.poll() is None, f"commit ended ({proc.returncode}) instead of waiting"
                assert time.monotonic() < deadline, "commit never reached its catalog transaction"
                time.sleep(0.05)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pa.Table]]:
    """Two different 300k-row contents of one dataset (same keys, other values), as Parquet files."""
    folder = tmp_path_factory.mktemp("big")
    found = {}
    for name, seed in (("a", 1), ("b", 2)):
        table = labels_table(BIG_ROWS, seed=seed)
        pq.write_table(table, folder / f"{name}.parquet")
        found[name] = (folder / f"{name}.parquet", table)
    return found


def _v1_committed_v2_on_disk(home: Path, tmp_path: Path) -> tuple[pa.Table, pa.Table, Path, str, set[str]]:
    """v1 committed; v2 written to a file; returns (v1, v2, v2 path, v1 head id, objects after v1)."""
    v1 = labels_table(3000, seed=1)
    v2 = _v2_of(v1)
    v2_path = tmp_path / "v2.parquet"
    pq.write_table(v2, v2_path)
    head1 = _start_v1(home, v1)
    return v1, v2, v2_path, head1, _store_objects(home)


@contextmanager
def _commit_paused_before_catalog(cli: Cli, database_url: str, v2_path: Path) -> Iterator[None]:
    """A real commit of v2, held (by a lock on the ref row) after writing its objects and before its
    catalog transaction; on leaving, the lock is released and the commit must succeed."""
    proc = None
    try:
        with _ref_row_locked(database_url):
            proc = _spawn_commit(cli, v2_path, "v2")
            _wait_until_blocked_on_lock(database_url, proc)
            yield
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------------- tests


def test_every_failpoint_has_an_expectation() -> None:
    assert set(POINTS) == set(WRITTEN_AT) == set(FIRST_WRITTEN_AT), \
        "a failpoint was added or renamed: say what it leaves behind"
    assert POINTS[-1] == COMMITTED_POINT


@pytest.mark.parametrize("point", POINTS)
def test_commit_killed_at_failpoint_leaves_old_or_new_state(point: str, home: Path, cli: Cli,
                                                            tmp_path: Path) -> None:
    v1, v2, v2_path, head1, before = _v1_committed_v2_on_disk(home, tmp_path)

    res = cli("commit", DATASET, str(v2_path), "-m", "v2", "--json", env={"REGISTRY_FAILPOINT": point})
    assert res.code == -signal.SIGKILL, f"expected death by SIGKILL at {point}: {res.code} {res.stderr}"
    assert res.stdout == ""
    written = _store_objects(home) - before
    assert len(written) == WRITTEN_AT[point]
    assert _temp_files(home) == []
    committed = point == COMMITTED_POINT

    with _opened(home) as reg:
        log = reg.log(DATASET)
        if committed:
            assert len(log) == 2 and log[0].parents == [head1] and log[0].message == "v2"
            assert _same_rows(reg.read(DATASET), v2)
        else:
            assert [s.id for s in log] == [head1]
            assert _same_rows(reg.read(DATASET), v1)
        referenced = referenced_objects(reg.ctx)
        # The default min-age protects what a (possibly still running) commit just wrote.
        young = reg.gc()
        assert young.deleted == [] and young.kept_young == (0 if committed else len(written))
    head = log[0].id
    if committed:
        assert written <= referenced
    else:
        assert written.isdisjoint(referenced)

    assert cli("verify").code == 0

    report = _gc_json(cli, "--min-age", "0")
    assert set(report["deleted"]) == (set() if committed else written)
    assert report["leftovers"] == []
    assert _store_objects(home) == before | (written if committed else set())

    with _opened(home) as reg:
        assert reg.verify().ok
        assert _same_rows(reg.read(DATASET), v2 if committed else v1)
        again = reg.commit(DATASET, v2_path, message="v2 again")
        if committed:
            assert not again.created and again.snapshot_id == head
        else:
            assert again.created and again.parent == head1
        assert _same_rows(reg.read(DATASET), v2)
        assert [s.id for s in reg.log(DATASET)][-1] == head1
        assert len(reg.log(DATASET)) == 2
        final = reg.verify()
        assert final.ok and final.snapshots == 2


def test_gc_with_default_min_age_keeps_young_unreferenced_objects(home: Path, cli: Cli, tmp_path: Path
                                                                   ) -> None:
    v1, _, v2_path, head1, before = _v1_committed_v2_on_disk(home, tmp_path)
    res = cli("commit", DATASET, str(v2_path), env={"REGISTRY_FAILPOINT": "commit:after-manifest"})
    assert res.code == -signal.SIGKILL
    written = _store_objects(home) - before
    assert len(written) == 3

    report = _gc_json(cli)
    assert report["deleted"] == []
    assert report["kept_young"] == len(written)
    assert _store_objects(home) == before | written
    with _opened(home) as reg:
        dry = reg.gc(dry_run=True, min_age=0)
        assert set(dry.deleted) == written
        assert _store_objects(home) == before | written
        assert reg.log(DATASET)[0].id == head1
        assert reg.verify().ok


@POSTGRES_ONLY
def test_gc_during_a_commit_in_flight_keeps_its_new_objects(home: Path, cli: Cli, tmp_path: Path,
                                                            database_url: str) -> None:
    v1, v2, v2_path, head1, before = _v1_committed_v2_on_disk(home, tmp_path)
    with _commit_paused_before_catalog(cli, database_url, v2_path):
        in_flight = _store_objects(home) - before
        assert len(in_flight) == 3
        with _opened(home) as reg:
            report = reg.gc()
        assert report.deleted == [] and report.kept_young == 3
    with _opened(home) as reg:
        assert reg.log(DATASET)[0].parents == [head1]
        assert _same_rows(reg.read(DATASET), v2)
        assert reg.verify().ok


@POSTGRES_ONLY
def test_gc_during_a_commit_in_flight_keeps_old_objects_the_commit_reuses(home: Path, cli: Cli,
                                                                          tmp_path: Path, database_url: str
                                                                          ) -> None:
    """A commit killed long ago left its objects; retrying the same commit reuses them (content addressing).

    While the retry is between writing its objects and its catalog transaction, gc with the default
    min-age must not delete them: the retry's snapshot would name missing objects.
    """
    v1, v2, v2_path, head1, before = _v1_committed_v2_on_disk(home, tmp_path)
    res = cli("commit", DATASET, str(v2_path), "-m", "v2",
              env={"REGISTRY_FAILPOINT": "commit:after-manifest"})
    assert res.code == -signal.SIGKILL
    leftovers = _store_objects(home) - before
    assert len(leftovers) == 3
    # The crash happened two hours ago (and no gc has run since).
    long_ago = time.time() - 2 * DEFAULT_MIN_AGE
    for sha in leftovers:
        os.utime(_object_path(home, sha), (long_ago, long_ago))

    with _commit_paused_before_catalog(cli, database_url, v2_path), _opened(home) as reg:
        report = reg.gc()
    with _opened(home) as reg:
        head = reg.log(DATASET)[0]
        assert head.parents == [head1]
        used = referenced_objects(reg.ctx)
        assert leftovers <= used, "the retried commit reuses the objects the killed one left"
        lost = sorted(set(report.deleted) & used)
        assert lost == [], f"gc deleted {len(lost)} object(s) a commit in flight had just written: {lost}"
        verified = reg.verify()
        assert verified.ok, verified.problems
        assert _same_rows(reg.read(DATASET), v2)


@pytest.mark.slow
def test_commit_killed_at_a_random_moment_leaves_old_or_new_state(home: Path, cli: Cli,
                                                                  big_inputs: dict[str, tuple[Path, pa.Table]]
                                                                  ) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    contents = {name: table for name, (_, table) in big_inputs.items()}
    with _opened(home) as reg:
        reg.create_dataset(DATASET, "sample_id")
        reg.commit(DATASET, big_inputs["a"][0], message="a")

    # Calibrate: how long a whole commit process takes here (startup, hashing, writing, catalog).
    started = time.monotonic()
    res = cli("commit", DATASET, str(big_inputs["b"][0]), "-m", "b", "--json")
    duration = time.monotonic() - started
    assert res.code == 0, res.stderr
    head, current = str(json.loads(res.stdout)["snapshot_id"]), "b"

    outcomes = []
    for round_no in range(RANDOM_KILLS):
        target = "a" if current == "b" else "b"
        message = f"round {round_no}: {target}"
        # One random moment in each slice of the commit's life, so the kills spread over all of it.
        low = 0.4 + 0.65 * round_no / RANDOM_KILLS
        delay = rng.uniform(low, low + 0.65 / RANDOM_KILLS) * duration
        proc = _killed_after(_spawn_commit(cli, big_inputs[target][0], message), delay, seed)
        new_head = _check_consistent_and_collect(home, head, contents[target], contents[current], message)
        if proc.returncode == 0:
            assert new_head != head, f"seed {seed}: the commit finished but main did not move"
        outcomes.append((round(delay, 2), proc.returncode, "new" if new_head != head else "old"))
        if new_head != head:
            head, current = new_head, target
    print(f"random kills (seed {seed}, full commit {duration:.2f}s): {outcomes}")

    assert cli("verify").code == 0
    target = "a" if current == "b" else "b"
    with _opened(home) as reg:
        result = reg.commit(DATASET, big_inputs[target][0], message="after the kills")
        assert result.created and result.parent == head
        assert _same_rows(reg.read(DATASET), contents[target])
        assert reg.verify().ok


def _snapshots(reg: Registry) -> list[str]:
    """The ids on ``main``, newest first; none before the first commit."""
    try:
        return [s.id for s in reg.log(DATASET)]
    except NotFound:
        return []


def _scratch_folders(home: Path) -> list[Path]:
    """Index folders a writer was still filling (a streamed commit's buckets, cells and keys)."""
    return sorted((home / "cache").rglob(".*.tmp"))


@pytest.mark.parametrize("point", POINTS)
def test_first_commit_of_a_file_killed_at_failpoint_leaves_nothing_or_the_snapshot(point: str, home: Path,
                                                                                   cli: Cli, tmp_path: Path) -> None:
    """The streamed first commit (no parent, a row group at a time): killed at each point, the dataset has
    no snapshot or the whole new one; gc removes what the dead process wrote; the commit then succeeds."""
    v1 = labels_table(3000, seed=1)
    path = tmp_path / "v1.parquet"
    pq.write_table(v1, path, row_group_size=500)
    with _opened(home) as reg:
        reg.create_dataset(DATASET, "sample_id")
    before = _store_objects(home)
    res = cli("commit", DATASET, str(path), "-m", "v1", "--json", env={"REGISTRY_FAILPOINT": point})
    assert res.code == -signal.SIGKILL, f"expected death by SIGKILL at {point}: {res.code} {res.stderr}"
    written = _store_objects(home) - before
    assert len(written) == FIRST_WRITTEN_AT[point]
    assert _temp_files(home) == [] and _scratch_folders(home) == []
    committed = point == COMMITTED_POINT
    with _opened(home) as reg:
        assert len(_snapshots(reg)) == (1 if committed else 0)
        if committed:
            assert _same_rows(reg.read(DATASET), v1)
    assert cli("verify").code == 0
    report = _gc_json(cli, "--min-age", "0")
    assert set(report["deleted"]) == (set() if committed else written)
    assert report["leftovers"] == []
    with _opened(home) as reg:
        again = reg.commit(DATASET, path, message="v1 again")
        assert again.created is not committed
        assert _same_rows(reg.read(DATASET), v1) and reg.verify().ok


def test_first_commit_killed_at_a_random_moment_leaves_nothing_or_the_snapshot(
        home: Path, cli: Cli, big_inputs: dict[str, tuple[Path, pa.Table]]) -> None:
    """Kills while the 300k-row first commit streams (reading, sorting buckets, naming objects): never a
    half snapshot; the scratch folder a kill leaves is gc's to remove, and then nothing is left over."""
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    path, table = big_inputs["a"]
    with _opened(home) as reg:
        reg.create_dataset(DATASET, "sample_id")
        reg.create_dataset("calibration", "sample_id")
    # Calibrate: how long a whole first-commit process takes here, on another dataset.
    started = time.monotonic()
    assert cli("commit", "calibration", str(path), "-m", "calibration").code == 0
    duration = time.monotonic() - started
    outcomes = []
    for round_no in range(RANDOM_KILLS):
        low = 0.4 + 0.6 * round_no / RANDOM_KILLS  # one moment in each slice of the commit's life
        delay = rng.uniform(low, low + 0.6 / RANDOM_KILLS) * duration
        proc = _killed_after(_spawn_commit(cli, path, f"round {round_no}"), delay, seed)
        with _opened(home) as reg:
            heads = _snapshots(reg)
            assert len(heads) <= 1, f"seed {seed}"
            if heads:
                assert _same_rows(reg.read(DATASET), table)
            assert reg.verify().ok
        outcomes.append((round(delay, 2), proc.returncode, len(heads)))
        if heads:
            break
    report = _gc_json(cli, "--min-age", "0")
    print(f"random kills of a first commit (seed {seed}): {outcomes}; gc removed {report['leftovers']}")
    assert _temp_files(home) == [] and _scratch_folders(home) == []
    assert all(name.startswith("cache/") or name.endswith(".tmp") for name in report["leftovers"])
    with _opened(home) as reg:
        if not _snapshots(reg):
            reg.commit(DATASET, path, message="after the kills")
        assert _same_rows(reg.read(DATASET), table) and reg.verify().ok
        assert reg.gc(min_age=0).referenced == len(_store_objects(home))


def _streamed_v1(home: Path, tmp_path: Path) -> pa.Table:
    """A dataset whose first commit streamed a 500-row Parquet file; the rows."""
    v1 = labels_table(500, seed=2)
    path = tmp_path / "v1.parquet"
    pq.write_table(v1, path)
    with _opened(home) as reg:
        reg.create_dataset(DATASET, "sample_id")
        reg.commit(DATASET, path, message="v1")
    return v1


def test_gc_keeps_a_young_scratch_folder_and_removes_an_old_one(home: Path, cli: Cli, tmp_path: Path) -> None:
    """A streamed commit's scratch folder in ``cache/`` is a commit in flight while anything in it is younger
    than gc's min-age (its bucket files grow while the folder's own mtime stands still)."""
    v1 = _streamed_v1(home, tmp_path)
    with _opened(home) as reg:
        scratch = reg.ctx.cache.folder / ".0123456789abcdef.tmp"  # where IndexCache.new_staging_folder puts them
        label = f"cache/{scratch.relative_to(home / 'cache').as_posix()}"
    (scratch / "buckets").mkdir(parents=True)
    (scratch / "buckets" / "07").write_bytes(b"\0" * 24)
    hour_ago = time.time() - 2 * DEFAULT_MIN_AGE
    os.utime(scratch, (hour_ago, hour_ago))  # old folder, young file: still being written
    assert _gc_json(cli)["leftovers"] == [] and scratch.is_dir()
    for path_ in (scratch / "buckets" / "07", scratch / "buckets", scratch):
        os.utime(path_, (hour_ago, hour_ago))
    dry = _gc_json(cli, "--dry-run")
    assert dry["leftovers"] == [label] and scratch.is_dir()
    assert _gc_json(cli)["leftovers"] == [label]
    assert not scratch.exists()
    with _opened(home) as reg:
        assert _same_rows(reg.read(DATASET), v1) and reg.verify().ok


def test_gc_removes_index_caches_of_an_earlier_format_once_they_are_old(home: Path, cli: Cli, tmp_path: Path) -> None:
    """An upgrade that changes the index format leaves ``cache/index-v<N>`` behind: nothing reads it, so gc
    removes it (past min-age, like any leftover); a newer format's folder (a newer registry on the same home)
    is kept, and so is the current one."""
    from registry.snapshots.layers import INDEX_FORMAT

    v1 = _streamed_v1(home, tmp_path)
    current, earlier, newer = (home / "cache" / f"index-v{n}" for n in (INDEX_FORMAT, INDEX_FORMAT - 1,
                                                                         INDEX_FORMAT + 1))
    for folder in (earlier, newer):
        (folder / ("a" * 64)).mkdir(parents=True)
        (folder / ("a" * 64) / "entries.npy").write_bytes(b"\0" * 128)
    assert _gc_json(cli)["leftovers"] == [] and earlier.is_dir()  # young: maybe an older process still writes
    hour_ago = time.time() - 2 * DEFAULT_MIN_AGE
    for folder in (earlier, newer):
        os.utime(folder, (hour_ago, hour_ago))
    dry = _gc_json(cli, "--dry-run")
    assert dry["leftovers"] == [f"cache/{earlier.name}"] and earlier.is_dir()
    assert _gc_json(cli)["leftovers"] == [f"cache/{earlier.name}"]
    assert not earlier.exists() and newer.is_dir() and current.is_dir()
    with _opened(home) as reg:
        assert _same_rows(reg.read(DATASET), v1) and reg.verify().ok
