"""``prefetched``: produce an iterator's next item on a second thread while the caller works on this one."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each produced on a worker thread while the caller handles the one before: decoding (which
    releases the GIL) overlaps with comparing. At most two items exist at once. An error raised while
    producing an item is raised here, where the caller would have met it; a caller that stops early stops
    the worker after its current item."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending = pool.submit(next, items, _DONE)
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = pool.submit(next, items, _DONE)
            yield item  # type: ignore[misc]
