"""Streamed reads: batch by batch, the same rows in the same order as a whole read, for compacted and
layered snapshots, encoded as Arrow IPC or Parquet."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.api.streaming import encode
from registry.snapshots.read import STREAM_BATCH_ROWS, stream


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
def test_stream_equals_read_for_layered_snapshots(reg: Registry, fmt: str) -> None:
    n = STREAM_BATCH_ROWS + 1000
    reg.create_dataset("big", "id")
    reg.commit("big", pa.table({"id": list(range(n)), "v": ["a"] * n}))
    reg.commit("big", pa.table({"id": [1, 2, n + 5], "v": ["b"] * 3}), mode="upsert",
               delete_keys=pa.table({"id": [3, 4]}))
    for ref in ("big@main~1", "big"):
        schema, batches = stream(reg.ctx, ref)
        parts = list(batches)
        assert len(parts) >= 2 and max(b.num_rows for b in parts) <= STREAM_BATCH_ROWS
        body = b"".join(encode(schema, iter(parts), fmt))
        table = pa.ipc.open_stream(body).read_all() if fmt == "arrow" else pq.read_table(io.BytesIO(body))
        assert table.equals(reg.read(ref))
    assert reg.read("big").num_rows == n - 1


def test_stream_of_an_empty_snapshot(reg: Registry) -> None:
    reg.create_dataset("empty", "id")
    reg.commit("empty", pa.table({"id": pa.array([], pa.int64())}))
    schema, batches = stream(reg.ctx, "empty")
    table = pa.ipc.open_stream(b"".join(encode(schema, batches, "arrow"))).read_all()
    assert table.num_rows == 0
