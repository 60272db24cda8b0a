"""One Label Studio sync of a dataset at a time across processes: the catalog's sync lease.

Two webhook runners stand for two ``registry serve`` workers over one catalog (SQLite and PostgreSQL):
their syncs of one dataset never overlap and each event is still followed by a sync. A lease left by
a killed process, or an expired one, does not block the next sync."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from registry import Registry
from registry.errors import Conflict
from registry.sync import lease
from registry.sync.hooks import HookRunner


def test_a_held_lease_refuses_a_second_sync_naming_the_holder(reg: Registry) -> None:
    with lease.hold_lease(reg.ctx, "pets") as owner:
        with pytest.raises(Conflict, match=f"a sync of pets is already running \\({owner}"), \
                lease.hold_lease(reg.ctx, "pets"):
            pass
        with lease.hold_lease(reg.ctx, "other"):  # leases are per dataset
            pass
    with lease.hold_lease(reg.ctx, "pets"):  # released at the end of the block, even the refused one left it
        pass


def test_an_expired_lease_or_one_of_a_dead_process_is_taken_over(reg: Registry) -> None:
    assert lease.acquire(reg.ctx, "pets", "elsewhere:1:a", seconds=-1) is None
    assert lease.acquire(reg.ctx, "pets", "elsewhere:2:b") is None  # expired: taken
    assert lease.acquire(reg.ctx, "pets", "elsewhere:3:c") == lease.acquire(reg.ctx, "pets", "x:4:d")
    assert "elsewhere:2:b until" in str(lease.acquire(reg.ctx, "pets", "elsewhere:3:c"))
    lease.release(reg.ctx, "pets", "elsewhere:3:c")  # not the holder: nothing happens
    assert lease.acquire(reg.ctx, "pets", "elsewhere:3:c") is not None

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert lease.acquire(reg.ctx, "cats", f"{lease._HOST}:{dead}:killed") is None
    assert lease.acquire(reg.ctx, "cats", "elsewhere:5:e") is None  # its holder no longer runs


def test_two_workers_never_sync_one_dataset_at_once_and_miss_no_event(reg: Registry) -> None:
    spans: list[tuple[float, float]] = []
    guard = threading.Lock()

    def sync(name: str) -> None:
        with lease.hold_lease(reg.ctx, name):
            start = time.monotonic()
            time.sleep(0.3)
            with guard:
                spans.append((start, time.monotonic()))

    workers = [HookRunner(sync, busy_wait=0.05), HookRunner(sync, busy_wait=0.05)]
    events = []
    for round_ in range(3):
        for runner in workers:
            events.append(time.monotonic())
            runner.request("pets")
        time.sleep(0.1 * round_)
    assert all(runner.wait("pets", 30) for runner in workers)
    spans.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)), spans
    assert all(any(start >= event for start, _ in spans) for event in events)  # each event: a sync after it
    assert len(spans) <= 2 * len(workers) + 1  # bursts coalesce
