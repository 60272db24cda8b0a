"""What every importer shares: the batch it returns, canonical JSON, timestamps, columnar builders."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from registry.errors import InvalidInput
from registry.provenance.records import RECORD_SCHEMA

__all__ = [
    "FLUSH_ROWS",
    "ColumnBuilder",
    "ImportBatch",
    "UnknownTypes",
    "as_bool",
    "as_float",
    "as_str",
    "canonical_json",
    "iso_utc",
    "record_builder",
]

FLUSH_ROWS = 65_536
"""Rows buffered as Python lists before they become an Arrow record batch."""


@dataclass(frozen=True)
class ImportBatch:
    """What an importer read: one row per sample, one record per labeling act."""

    rows: pa.Table
    """One row per sample; the first column is ``key_column``."""
    records: pa.Table
    """Exactly :data:`~registry.provenance.records.RECORD_SCHEMA`, one row per annotation or prediction."""
    key_column: str
    label_column: str | None
    """The resolved-label column of ``rows`` (``"label"``), ``None`` when the format has no single label."""
    warnings: list[str] = field(default_factory=list)
    source_format: str = ""
    """``label-studio``, ``label-studio-min``, ``label-studio-csv``, ``coco``, ``yolo`` or ``table``."""
    config_text: str | None = None
    """The labeling configuration (XML) as given with ``--config``; its SHA-256 is on every record."""


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value``: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def iso_utc(value: Any) -> str | None:
    """``value`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` when it is an ISO-8601 text with a zone, epoch seconds
    or a ``datetime`` (a naive one, as Arrow readers give for zone-less timestamp columns, is taken as UTC).

    Text without a zone, or that does not parse, is kept as given; ``None`` stays ``None``.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    else:
        text = str(value)
        if len(text) == 27 and text[10] == "T" and text[19] == "." and text[26] == "Z":
            return text  # already canonical (Label Studio's own spelling)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        if moment.tzinfo is None:
            return text
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_str(value: Any) -> str | None:
    """A scalar as text (``None`` stays ``None``; integral floats lose their ``.0``)."""
    kind = type(value)
    if kind is str or value is None:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return canonical_json(value)
    return str(value)


def as_float(value: Any, what: str) -> float | None:
    """A number, or ``None``; anything else is :class:`InvalidInput` naming ``what``."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what}: expected a number, got {value!r}") from None


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def as_bool(value: Any, what: str) -> bool | None:
    """A boolean from a bool, 0/1 or true/false text; ``None`` stays ``None``."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text == "":
        return None
    raise InvalidInput(f"{what}: expected true/false, got {value!r}")


class ColumnBuilder:
    """Append rows as dicts; Arrow record batches are cut every :data:`FLUSH_ROWS` rows.

    ``constants`` are columns holding one value in every row: rows leave them out and each batch
    gets them as repeated arrays (cheaper than converting the same value per row).
    """

    def __init__(self, schema: pa.Schema, constants: Mapping[str, Any] | None = None) -> None:
        self.schema = schema
        self.constants = {name: pa.scalar(value, schema.field(name).type) for name, value in (constants or {}).items()}
        self._varying = pa.schema([f for f in schema if f.name not in self.constants])
        self._rows: list[Mapping[str, Any]] = []
        self._batches: list[pa.RecordBatch] = []

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one row; missing columns are null."""
        self._rows.append(row)
        if len(self._rows) >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        batch = pa.RecordBatch.from_pylist(self._rows, schema=self._varying)
        if self.constants:
            size = batch.num_rows
            batch = pa.RecordBatch.from_arrays(
                [pa.repeat(self.constants[f.name], size) if f.name in self.constants else batch.column(f.name)
                 for f in self.schema], schema=self.schema)
        self._batches.append(batch)
        self._rows = []

    def finish(self) -> pa.Table:
        """Everything appended, as one table of ``schema``."""
        self._flush()
        return pa.Table.from_batches(self._batches, schema=self.schema)


def record_builder(constants: Mapping[str, Any] | None = None) -> ColumnBuilder:
    """A builder for annotation records (:data:`RECORD_SCHEMA`), ``constants`` as in :class:`ColumnBuilder`."""
    return ColumnBuilder(RECORD_SCHEMA, constants)


class UnknownTypes:
    """Counts result types (or fields) the importer does not know, for one warning per kind."""

    def __init__(self, known: Iterable[str], what: str = "result type", unit: str = "result(s)",
                 fate: str = "kept raw") -> None:
        self.known = frozenset(known)
        self.what, self.unit, self.fate = what, unit, fate
        self._counts: Counter[str] = Counter()
        self._first: dict[str, str] = {}

    def see(self, kind: str, where: str) -> None:
        """Note one result of ``kind`` found at ``where`` (e.g. ``"task 12"``)."""
        if kind in self.known:
            return
        self._counts[kind] += 1
        self._first.setdefault(kind, where)

    def see_all(self, item: Mapping[str, Any], known: frozenset[str], where: Callable[[], str]) -> None:
        """Note each key of ``item`` not in ``known`` (``where`` is only called when there is one)."""
        if not item.keys() <= known:
            place = where()
            for name in item.keys() - known:
                self.see(name, place)

    def warnings(self) -> list[str]:
        """One sentence per unknown type, naming it, its count and where it first appeared."""
        return [f"unknown {self.what} {kind!r} in {count} {self.unit}, first in {self._first[kind]}: {self.fate}"
                for kind, count in sorted(self._counts.items())]
