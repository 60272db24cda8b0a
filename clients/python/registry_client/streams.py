"""Streaming both ways without a second copy of the data in memory.

* :func:`arrow_chunks` encodes a ``pyarrow.Table`` as an Arrow IPC stream one record batch at a
  time, so an upload holds the table plus about one encoded batch.
* :class:`ByteStream` is a read-only file object over an iterator of byte chunks (an httpx
  response's ``iter_bytes``), so ``pyarrow.ipc.open_stream`` decodes a download as it arrives.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa

__all__ = ["ByteStream", "arrow_chunks"]

BATCH_ROWS = 65_536


class _Sink:
    """A write-only file object that hands out what was written since the last :meth:`take`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def arrow_chunks(table: pa.Table, batch_rows: int = BATCH_ROWS) -> Iterator[bytes]:
    """The Arrow IPC stream of ``table``, yielded batch by batch."""
    sink = _Sink()
    writer = pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema)
    try:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
            if chunk := sink.take():
                yield chunk
    finally:
        writer.close()
    if tail := sink.take():
        yield tail


class ByteStream(io.RawIOBase):
    """A readable file object over ``chunks``; reads block on the next chunk as it arrives."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self.error: Exception | None = None
        """What the chunk iterator raised (pyarrow reports it only as an I/O error)."""

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        """Take the next chunk into ``_pending``; False at the end of the stream."""
        try:
            chunk = next(self._chunks, None)
        except Exception as exc:
            self.error = exc
            raise
        if chunk is None:
            return False
        self._pending = memoryview(chunk)
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            if not self._next():
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def read(self, size: int = -1) -> bytes:
        """Exactly ``size`` bytes unless the stream ends first (pyarrow takes a short read as the end)."""
        out = bytearray()
        while size < 0 or len(out) < size:
            if not self._pending and not self._next():
                break
            take = len(self._pending) if size < 0 else min(size - len(out), len(self._pending))
            out += self._pending[:take]
            self._pending = self._pending[take:]
        return bytes(out)
