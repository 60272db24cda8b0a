"""Encoding a stream of record batches as Arrow IPC or Parquet bytes, chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from registry.writeonly import WriteOnlyFile

__all__ = ["MEDIA_TYPES", "encode"]

MEDIA_TYPES = {"arrow": "application/vnd.apache.arrow.stream", "parquet": "application/vnd.apache.parquet"}


class _Chunks(WriteOnlyFile):
    """A write-only file object that hands out what was written since the last :meth:`take`."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def _store(self, data: bytes | bytearray | memoryview) -> int:
        self._parts.append(bytes(data))
        return len(data)

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
