"""The compaction worker of ``registry serve``: automatic compaction in a thread, outside every commit.

Every ``compact_interval`` seconds (the first pass one interval after start) the worker runs
:func:`registry.snapshots.compact.auto_compact` over every dataset. A failure is logged and retried on
the next pass; it never reaches a request.
"""

from __future__ import annotations

import logging
import threading

from registry.context import Context
from registry.snapshots.compact import auto_compact

__all__ = ["CompactionWorker", "start_worker", "stop_worker"]

log = logging.getLogger("registry.compaction")
_workers: dict[int, CompactionWorker] = {}
_lock = threading.Lock()


class CompactionWorker:
    """A daemon thread applying the compaction policy to one home."""

    def __init__(self, ctx: Context, interval: float) -> None:
        self.ctx = ctx
        self.interval = interval
        self.passes = 0
        self.compacted = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-compaction", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)  # a pass every interval (stop() wakes it to leave)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.compacted += len(auto_compact(self.ctx))
            except Exception:  # noqa: BLE001 - a failed pass is retried; it must not kill the server
                log.exception("automatic compaction failed; retrying in %.0f s", self.interval)
            self.passes += 1


def start_worker(ctx: Context) -> CompactionWorker | None:
    """Start the worker for ``ctx``'s home unless ``compact_interval`` is 0."""
    if ctx.settings.compaction.interval <= 0:
        return None
    worker = CompactionWorker(ctx, ctx.settings.compaction.interval)
    with _lock:
        _workers[_key(ctx)] = worker
    worker.start()
    return worker


def _key(ctx: Context) -> int:
    return hash(str(ctx.cache.folder))


def stop_worker(ctx: Context) -> None:
    """Stop the worker started for ``ctx``'s home, if any."""
    with _lock:
        worker = _workers.pop(_key(ctx), None)
    if worker is not None:
        worker.stop()
