"""Encoding a stream of record batches as Arrow IPC or Parquet bytes, chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["MEDIA_TYPES", "encode"]

MEDIA_TYPES = {"arrow": "application/vnd.apache.arrow.stream", "parquet": "application/vnd.apache.parquet"}


class _Chunks:
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


def encode(schema: pa.Schema, batches: Iterator[pa.RecordBatch], fmt: str) -> Iterator[bytes]:
    """The bytes of ``batches`` as an Arrow IPC stream or a Parquet file (one row group per batch),
    yielded as each batch is written, so memory stays at about one batch."""
    sink = _Chunks()
    stream = pa.PythonFile(sink, mode="w")
    writer: pa.ipc.RecordBatchStreamWriter | pq.ParquetWriter
    writer = pq.ParquetWriter(stream, schema) if fmt == "parquet" else pa.ipc.new_stream(stream, schema)
    try:
        for batch in batches:
            writer.write_batch(batch)
            if chunk := sink.take():
                yield chunk
    finally:
        writer.close()
    yield sink.take()
