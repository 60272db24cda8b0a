"""Scan plans: read tasks that together yield exactly a snapshot's rows, for external engines.

A snapshot is layers of Parquet objects where a newer layer hides older rows with the same key, so
globbing its objects double-counts changed rows. A plan lists, per row group of each layer object,
which rows of it are hidden (as row positions within the row group): reading every task and
dropping its hidden rows yields each visible row exactly once. A task names its object by SHA-256,
so a reader on any machine can verify the bytes it reads without asking the registry.

:func:`split` cuts a task list into ``n`` contiguous shards of equal visible-row counts (within one
row), splitting a row group where a cut falls inside it; it is pure, so every DataLoader worker or
rank computes the same cut from the same plan.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from registry.arrays import arrow_array
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput, NotFound, StorageError, VerifyFailed
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.manifest import load_manifest
from registry.storage.verified import verify_file

__all__ = ["MAX_SHARDS", "ReadTask", "ScanPlan", "build_plan", "group", "read_task", "snapshot_objects", "split",
           "verify_object"]

MAX_SHARDS = 65_536
"""More shards than this is a mistake (a shard per row of a small table), refused as bad input."""


@dataclass(frozen=True)
class ReadTask:
    """Rows ``[offset, offset + length)`` of row group ``row_group`` of the Parquet object ``object``,
    minus the positions (within the row group) in ``hidden``."""

    object: str
    row_group: int
    offset: int
    length: int
    hidden: tuple[int, ...] = ()

    @property
    def rows(self) -> int:
        """Visible rows this task yields."""
        return self.length - len(self.hidden)

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "row_group": self.row_group, "offset": self.offset, "length": self.length,
                "hidden": list(self.hidden), "rows": self.rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadTask:
        """Parse a task as :meth:`to_dict` (or the API) writes it.

        Raises:
            InvalidInput: a field is missing or of the wrong type.
        """
        try:
            return cls(str(data["object"]), int(data["row_group"]), int(data["offset"]), int(data["length"]),
                       tuple(int(h) for h in data.get("hidden", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not a read task: {exc}") from exc

    def split_at(self, visible: int) -> tuple[ReadTask, ReadTask]:
        """This task cut after its first ``visible`` visible rows (0 < visible < rows)."""
        hidden = np.asarray(self.hidden, np.int64)
        stop = self.offset + visible
        while True:  # the smallest stop with `visible` visible rows before it
            before = int(np.searchsorted(hidden, stop))
            wanted = self.offset + visible + before
            if wanted == stop:
                break
            stop = wanted
        head = ReadTask(self.object, self.row_group, self.offset, stop - self.offset, tuple(self.hidden[:before]))
        tail = ReadTask(self.object, self.row_group, stop, self.offset + self.length - stop,
                        tuple(self.hidden[before:]))
        return head, tail


def _schema_text(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


@dataclass(frozen=True)
class ScanPlan:
    """Everything a reader needs to yield exactly one snapshot's rows: the tasks in ``shards`` (in
    storage order within each shard), the Arrow schema, and which columns to read."""

    dataset: str
    snapshot_id: str
    key_columns: tuple[str, ...]
    rows: int
    schema: pa.Schema
    columns: tuple[str, ...] | None
    shards: tuple[tuple[ReadTask, ...], ...]

    @property
    def tasks(self) -> list[ReadTask]:
        return [task for shard in self.shards for task in shard]

    @property
    def objects(self) -> list[str]:
        """Every object the plan reads, once each, in first-use order."""
        return list(dict.fromkeys(task.object for task in self.tasks))

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "snapshot_id": self.snapshot_id, "key_columns": list(self.key_columns),
                "rows": self.rows, "schema": _schema_text(self.schema),
                "columns": list(self.columns) if self.columns is not None else None,
                "shards": [[t.to_dict() for t in shard] for shard in self.shards]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanPlan:
        """Parse a plan as :meth:`to_dict` (or ``GET /snapshots/{ref}/plan``) writes it.

        Raises:
            InvalidInput: it is not a plan.
        """
        try:
            schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["schema"])))
            columns = data.get("columns")
            return cls(str(data["dataset"]), str(data["snapshot_id"]), tuple(data["key_columns"]), int(data["rows"]),
                       schema, tuple(columns) if columns is not None else None,
                       tuple(tuple(ReadTask.from_dict(t) for t in shard) for shard in data["shards"]))
        except (KeyError, TypeError, ValueError, pa.ArrowInvalid) as exc:
            raise InvalidInput(f"not a scan plan: {exc}") from exc

    def reshard(self, shards: int) -> ScanPlan:
        """The same rows cut into ``shards`` shards (see :func:`split`)."""
        return ScanPlan(self.dataset, self.snapshot_id, self.key_columns, self.rows, self.schema, self.columns,
                        tuple(tuple(s) for s in split(self.tasks, shards)))


def check_shards(shards: int) -> int:
    """``shards`` if it is a usable shard count.

    Raises:
        InvalidInput: below 1 or above :data:`MAX_SHARDS`.
    """
    if not 1 <= shards <= MAX_SHARDS:
        raise InvalidInput(f"shards must be between 1 and {MAX_SHARDS}, got {shards}")
    return shards


def split(tasks: Sequence[ReadTask], shards: int) -> list[list[ReadTask]]:
    """``tasks`` cut into ``shards`` contiguous runs of equal visible rows (the first ``total % shards``
    runs hold one more row); a shard may be empty only when there are fewer rows than shards.

    Raises:
        InvalidInput: ``shards`` is out of range.
    """
    check_shards(shards)
    total = sum(task.rows for task in tasks)
    quotas = [total // shards + (1 if n < total % shards else 0) for n in range(shards)]
    out: list[list[ReadTask]] = [[] for _ in range(shards)]
    pending = [task for task in tasks if task.rows]
    pending.reverse()
    for n, quota in enumerate(quotas):
        while quota and pending:
            task = pending.pop()
            if task.rows <= quota:
                out[n].append(task)
                quota -= task.rows
            else:
                head, tail = task.split_at(quota)
                out[n].append(head)
                pending.append(tail)
                quota = 0
    return out


def group(tasks: Sequence[ReadTask], shards: int) -> list[list[ReadTask]]:
    """``tasks`` in ``shards`` contiguous runs of whole tasks, as equal in rows as whole tasks allow (a
    reader then decodes every row group once); :func:`split` when there are fewer tasks than shards.

    Raises:
        InvalidInput: ``shards`` is out of range.
    """
    check_shards(shards)
    live = [task for task in tasks if task.rows]
    if len(live) < shards:
        return split(live, shards)
    total = sum(task.rows for task in live)
    out: list[list[ReadTask]] = [[]]
    done = 0
    for n, task in enumerate(live):
        unopened = shards - len(out)
        past_share = done + task.rows / 2 > len(out) * total / shards
        if out[-1] and unopened and (past_share or len(live) - n <= unopened):
            out.append([])
        out[-1].append(task)
        done += task.rows
    return out


def build_plan(ctx: Context, ref: Ref | str, shards: int = 1, columns: Sequence[str] | None = None) -> ScanPlan:
    """The scan plan of the snapshot ``ref`` names, cut into ``shards`` shards.

    Raises:
        NotFound: no such dataset or ref.
        InvalidInput: ``shards`` is out of range, or a column does not exist.
    """
    check_shards(shards)
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
    reader = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, snapshot))
    layers = reader.manifest.layers
    has_rows = any(layer.rows for layer in layers)
    schema = reader.schema() if has_rows else pa.schema([])
    if columns is not None:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise InvalidInput(f"{ref}: no column {', '.join(map(repr, unknown))}; it has {', '.join(schema.names)}")
        schema = pa.schema([schema.field(c) for c in columns])
    hidden_by_layer = reader.hidden_entries() if len(layers) > 1 else [np.zeros(0, np.int64)] * len(layers)
    tasks: list[ReadTask] = []
    for n, layer in enumerate(layers):
        if not layer.rows:
            continue
        hidden = reader.hidden_rows(n, hidden_by_layer[n]) if len(hidden_by_layer[n]) else np.zeros(0, np.int64)
        meta = pq.ParquetFile(reader.layer_path(n)).metadata
        start = 0
        for group in range(meta.num_row_groups):
            size = meta.row_group(group).num_rows
            low, high = np.searchsorted(hidden, [start, start + size])
            tasks.append(ReadTask(layer.rows, group, 0, size, tuple((hidden[low:high] - start).tolist())))
            start += size
    return ScanPlan(dataset.name, snapshot.id, tuple(reader.keys), sum(t.rows for t in tasks), schema,
                    tuple(columns) if columns is not None else None, tuple(tuple(s) for s in split(tasks, shards)))


def snapshot_objects(ctx: Context, ref: Ref | str) -> list[str]:
    """The row objects the snapshot ``ref`` names reads (what its plan's tasks may name).

    Raises:
        NotFound: no such dataset or ref.
    """
    with transaction(ctx.engine, readonly=True) as session:
        _, snapshot = resolve_ref(session, ref)
    return [layer.rows for layer in load_manifest(ctx, snapshot).layers if layer.rows]


def verify_object(path: str | Path, sha256: str, markers: str | Path | None = None) -> None:
    """Check one object's bytes against its name, through the verified-read helper: hashed the first time
    this process (with ``markers``, a folder of verified markers: any process on the machine) reads the
    file, and again after any change to it, not on every call.

    Raises:
        VerifyFailed: they do not hash to ``sha256``, or the file cannot be read.
    """
    try:
        verify_file(Path(path), sha256, markers=Path(markers) if markers is not None else None)
    except (NotFound, StorageError) as exc:
        raise VerifyFailed(f"object {sha256} cannot be read: {exc}") from exc


def read_task(path: str | Path, task: ReadTask, columns: Sequence[str] | None = None,
              use_threads: bool = False) -> pa.Table:
    """The visible rows of one task from its object's local ``path`` (already verified by the caller).
    ``use_threads``: decode columns in parallel (off by default: engines run one task per core)."""
    group = pq.ParquetFile(path).read_row_group(task.row_group, columns=list(columns) if columns else None,
                                                use_threads=use_threads)
    if task.offset or task.length != group.num_rows:
        group = group.slice(task.offset, task.length)
    if not task.hidden:
        return group
    keep = np.ones(task.length, bool)
    keep[np.asarray(task.hidden, np.int64) - task.offset] = False
    return group.filter(arrow_array(keep))
