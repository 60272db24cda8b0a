"""A delivery thread for long-lived processes (the API server), instead of a process per operation.

The CLI hands delivery to a configured OpenLineage backend off to a detached process running this
module (``python -m registry.lineage.worker --home HOME --wait SECONDS``: one delivery with backoff,
then exit), because a command must return at once and its process then ends. A server lives
on, and under load a process per commit would cost more than the commit's own lineage work: so
``registry serve`` starts one :class:`DeliveryWorker` per catalog, operations only wake it, and it
delivers through the same outbox and lease as every other deliverer (so several workers and CLI
flushes never send an event twice or out of order).
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from registry.context import Context, open_context
from registry.lineage.outbox import deliver

__all__ = ["DeliveryWorker", "main", "notify_worker", "start_worker", "stop_worker"]

log = logging.getLogger(__name__)
_WORKERS: dict[str, DeliveryWorker] = {}
_LOCK = threading.Lock()


class DeliveryWorker:
    """One daemon thread delivering a catalog's queued events whenever an operation wakes it.

    After a pass that left events behind (the backend failed, or another deliverer held the
    lease), it tries again after a delay that doubles up to ``REGISTRY_LINEAGE_BACKOFF_MAX_SECONDS``;
    otherwise it sleeps until the next wake-up.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.passes = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lineage-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """Ask for a delivery pass soon (never blocks)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the pass in progress, if any, and end the thread; events left stay queued."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        retry_in: float | None = None
        while True:
            self._wake.wait(timeout=retry_in)
            if self._stopping:
                return
            self._wake.clear()
            retry_in = self._pass(retry_in)

    def _pass(self, previous_delay: float | None) -> float | None:
        """One delivery pass; the delay before the next unprompted pass, or None to wait for a wake-up."""
        settings = self.ctx.settings.lineage
        try:
            report = deliver(self.ctx, respect_backoff=True)
        except Exception:  # noqa: BLE001 - the worker outlives any one failure (design invariant 9)
            log.warning("lineage delivery pass failed; events stay queued", exc_info=True)
            report = None
        self.passes += 1
        if report is not None and not (report.failed_attempts or report.busy or report.errors):
            return None
        if previous_delay is None:
            return settings.backoff_seconds
        return min(previous_delay * 2, settings.backoff_max_seconds)


def start_worker(ctx: Context) -> DeliveryWorker:
    """Start (or return the running) worker for ``ctx``'s catalog in this process."""
    key = ctx.paths.database_url
    with _LOCK:
        worker = _WORKERS.get(key)
        if worker is None or not worker.alive:
            worker = DeliveryWorker(ctx)
            worker.start()
            _WORKERS[key] = worker
        return worker


def stop_worker(ctx: Context) -> None:
    """Stop this process's worker for ``ctx``'s catalog, if one runs."""
    with _LOCK:
        worker = _WORKERS.pop(ctx.paths.database_url, None)
    if worker is not None:
        worker.stop()


def notify_worker(ctx: Context) -> bool:
    """Wake this process's worker for ``ctx``'s catalog; False if none runs (the caller delivers otherwise)."""
    worker = _WORKERS.get(ctx.paths.database_url)
    if worker is None or not worker.alive:
        return False
    worker.notify()
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Background delivery as its own process (started by :func:`registry.lineage.dispatch.spawn_background_flush`):
    deliver the home's pending events, honouring backoff and retrying for up to ``--wait`` seconds,
    print nothing, and exit 0 (events left stay queued for the next deliverer)."""
    parser = argparse.ArgumentParser(prog="python -m registry.lineage.worker",
                                     description="Deliver a registry home's pending lineage events, then exit.")
    parser.add_argument("--home", required=True, type=Path, help="the registry home whose outbox to deliver")
    parser.add_argument("--wait", type=float, default=0.0, help="keep retrying with backoff this many seconds")
    args = parser.parse_args(argv)
    ctx = open_context(args.home)
    try:
        deliver(ctx, respect_backoff=True, wait=max(args.wait, 0.0))
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
