"""Reading a snapshot's rows and exporting them to a file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa

from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.manifest import load_manifest
from registry.snapshots.tables import write_batches_atomically

__all__ = ["export", "read", "stream"]


def read(ctx: Context, ref: Ref | str, columns: Sequence[str] | None = None) -> pa.Table:
    """Every row of the snapshot ``ref`` names (``NAME``, ``NAME@TAG``, ``NAME@ID``, ``NAME@main~2``).

    Row order is the storage order (by key hash within each layer); sort by key if you need one.

    Raises:
        NotFound: the dataset or ref does not exist.
        InvalidInput: a requested column does not exist.
    """
    with transaction(ctx.engine, readonly=True) as session:
        _, snapshot = resolve_ref(session, ref)
    reader = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, snapshot))
    try:
        return reader.read(columns)
    except (pa.ArrowInvalid, KeyError) as exc:
        raise InvalidInput(f"{ref}: cannot read columns {list(columns or [])}: {exc}") from exc


STREAM_BATCH_ROWS = 65_536


def stream(ctx: Context, ref: Ref | str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and record batches of the snapshot ``ref`` names, in :func:`read`'s row order, for a
    reader that must not hold the whole snapshot (the HTTP API, export). Memory is bounded by one row
    group of a layer (:meth:`ManifestReader.iter_rows`).

    Raises:
        NotFound: the dataset or ref does not exist.
    """
    with transaction(ctx.engine, readonly=True) as session:
        _, snapshot = resolve_ref(session, ref)
    reader = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, snapshot))
    layers = reader.manifest.layers
    if not any(layer.rows for layer in layers):
        return pa.schema([]), iter(())
    schema = reader.schema()
    for n, layer in enumerate(layers):  # verified before the first byte goes out, not mid-stream
        if layer.rows:
            reader.layer_path(n)
    hidden_by_layer = None if len(layers) == 1 else reader.hidden_entries()  # before the first byte, too
    return schema, reader.iter_rows(None, STREAM_BATCH_ROWS, hidden_by_layer)


def export(ctx: Context, ref: Ref | str, out: str | Path) -> int:
    """Write the snapshot's rows to ``out`` (.parquet, .csv or .jsonl); returns the row count.

    The file is written next to ``out`` first and renamed, so a failed export leaves nothing; rows go out a
    batch at a time (:func:`stream`), so memory does not grow with the snapshot.
    """
    out = Path(out)
    if out.suffix.lower() not in (".parquet", ".pq", ".csv", ".jsonl", ".ndjson"):
        raise InvalidInput(f"{out}: cannot export to {out.suffix or '(no suffix)'}; use .parquet, .csv or .jsonl")
    schema, batches = stream(ctx, ref)  # every object verified before the first byte is written
    return write_batches_atomically(schema, batches, out)
