"""What checks look at: one snapshot's columns, its parent and last passed snapshot, gold and records.

Everything is read lazily and once: a policy that only counts rows reads no data, and ten checks
over the ``label`` column read it once. Checks that only count (nulls, values outside a set) read their
columns a batch at a time instead, so they need no more memory on a billion rows than on a thousand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput
from registry.models import SnapshotRow
from registry.quality.records import Ratings, latest_ratings, load_records
from registry.refs import Ref
from registry.snapshots.hashing import is_text
from registry.snapshots.history import show
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.manifest import load_manifest
from registry.snapshots.read import read

__all__ = ["Subject"]

BATCH_ROWS = 1 << 20
"""Rows per batch for the checks that count as they read (``not_null``, ``allowed_values``)."""


@dataclass
class Subject:
    """The snapshot under evaluation and its points of comparison."""

    ctx: Context
    dataset: str
    keys: list[str]
    snapshot: SnapshotRow
    schema: list[dict[str, Any]]
    parent: SnapshotRow | None = None
    baseline: SnapshotRow | None = None
    """The newest earlier snapshot of the dataset whose gate passed (schema and distribution checks)."""
    baseline_schema: list[dict[str, Any]] | None = None
    _readers: dict[str, ManifestReader] = field(default_factory=dict)
    _key_hashes: np.ndarray | None = None
    _hidden: list[np.ndarray] | None = None
    _counts: dict[tuple[str, str], dict[Any, int]] = field(default_factory=dict)
    _columns: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    _others: dict[tuple[str, tuple[str, ...]], tuple[pa.Table, str]] = field(default_factory=dict)
    _records: dict[str | None, tuple[pa.Table, str]] = field(default_factory=dict)
    _ratings: dict[tuple[str | None, bool], Ratings] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.dataset}@{self.snapshot.id[:12]}"

    def reader(self, snapshot: SnapshotRow | None = None) -> ManifestReader:
        """The manifest reader of the snapshot (or ``snapshot``), made once."""
        snapshot = snapshot or self.snapshot
        if snapshot.id not in self._readers:
            manifest = load_manifest(self.ctx, snapshot)
            self._readers[snapshot.id] = ManifestReader(self.ctx.store, self.ctx.cache, manifest)
        return self._readers[snapshot.id]

    def require(self, columns: Sequence[str], schema: list[dict[str, Any]] | None = None, where: str | None = None
                ) -> None:
        """Refuse columns a schema lacks.

        Raises:
            InvalidInput: naming the missing columns and those there are.
        """
        names = [c["name"] for c in (schema if schema is not None else self.schema)]
        missing = [c for c in columns if c not in names]
        if missing:
            raise InvalidInput(f"{where or self.where} has no column {', '.join(map(repr, missing))} "
                               f"(columns: {', '.join(names)})")

    def columns(self, names: Sequence[str]) -> pa.Table:
        """These columns of the snapshot, in storage order (each read once per evaluation)."""
        self.require(names)
        wanted = [c for c in dict.fromkeys(names) if c not in self._columns]
        if wanted:
            table = self.reader().read(wanted)
            self._columns.update({c: table.column(c) for c in wanted})
        return pa.table({c: self._columns[c] for c in dict.fromkeys(names)})

    def batches(self, names: Sequence[str], as_codes: bool = False) -> Iterator[pa.Table]:
        """These columns of the snapshot a batch at a time (memory: one row group), or from the columns
        another check already read. ``as_codes``: text columns may come as dictionary arrays, as Parquet
        stores them (see :meth:`ManifestReader.visible_row_groups`), or as plain text."""
        self.require(names)
        wanted = list(dict.fromkeys(names))
        if all(c in self._columns for c in wanted):
            yield pa.table({c: self._columns[c] for c in wanted})
            return
        reader = self.reader()
        codes = [c for c in wanted if as_codes and is_text(reader.schema().field(c).type)]
        if self._hidden is None and len(reader.manifest.layers) > 1:
            self._hidden = reader.hidden_entries()  # once per evaluation, not once per check
        for batch in reader.iter_rows(wanted, BATCH_ROWS, self._hidden, read_dictionary=codes):
            yield pa.Table.from_batches([batch])

    def stored_keys(self) -> list[str]:
        """The key columns the snapshot's rows were committed with (never null: a commit refuses a null key)."""
        return list(self.reader().manifest.key_columns)

    def key_hashes(self) -> np.ndarray:
        """The sorted key hashes of the snapshot's rows (from the key index, no row read)."""
        if self._key_hashes is None:
            self._key_hashes, _ = self.reader().effective_index()
        return self._key_hashes

    def value_counts(self, column: str, snapshot: SnapshotRow | None = None) -> dict[Any, int]:
        """How many rows of the snapshot (or ``snapshot``) hold each value of ``column`` (None: null), counted
        a row group at a time, text by its dictionary codes (:meth:`ManifestReader.count_values`); once per
        evaluation. The caller checks that ``snapshot`` has the column (this one's is checked here).

        Raises:
            InvalidInput: this snapshot has no ``column``.
        """
        if snapshot is None:
            self.require([column])
            snapshot = self.snapshot
        if (snapshot.id, column) not in self._counts:
            self._counts[snapshot.id, column] = self.reader(snapshot).count_values(column)
        return self._counts[snapshot.id, column]

    def other(self, ref: str, columns: Sequence[str]) -> tuple[pa.Table, str]:
        """Columns of another dataset's snapshot (gold labels) and the ``NAME@ID`` they came from."""
        cache_key = (ref, tuple(columns))
        if cache_key not in self._others:
            info = show(self.ctx, ref)
            resolved = f"{info.dataset}@{info.id}"
            self.require(columns, info.schema, resolved)
            self._others[cache_key] = (read(self.ctx, Ref(info.dataset, info.id), list(columns)), resolved)
        return self._others[cache_key]

    def keys_of(self, ref: Ref | str) -> list[str]:
        """The key columns of the dataset ``ref`` names."""
        with transaction(self.ctx.engine, readonly=True) as session:
            return catalog.key_columns(catalog.get_dataset(session, Ref.coerce(ref).dataset))

    def records(self, source: str | None) -> tuple[pa.Table, str]:
        """The annotation records (see :mod:`registry.quality.records`)."""
        if source not in self._records:
            self._records[source] = load_records(self.ctx, self.snapshot, source)
        return self._records[source]

    def ratings(self, source: str | None, include_models: bool) -> Ratings:
        """The latest rating per (sample, annotator) of those records."""
        cache_key = (source, include_models)
        if cache_key not in self._ratings:
            self._ratings[cache_key] = latest_ratings(self.records(source)[0], include_models)
        return self._ratings[cache_key]
