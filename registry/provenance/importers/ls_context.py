"""State of one Label Studio import: options, sample keys, the record and row builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from registry.errors import Hint, InvalidInput
from registry.provenance.importers.common import ColumnBuilder, ImportBatch, UnknownTypes, as_str, record_builder
from registry.provenance.importers.ls_results import KNOWN_RESULT_TYPES, LabelConfig
from registry.provenance.importers.resolve import Resolution

__all__ = ["ROW_COLUMNS", "LSContext", "row_schema"]

ROW_COLUMNS = ("label", "annotations", "agreement", "disputed", "task_id", "data")
"""Columns of a Label Studio rows table after the key column."""


def row_schema(key_column: str) -> pa.Schema:
    """Rows of a Label Studio import keyed by ``key_column`` (``task_id`` appears once)."""
    fields = [
        pa.field(key_column, pa.string()),
        pa.field("label", pa.string()),
        pa.field("annotations", pa.int64()),
        pa.field("agreement", pa.float64()),
        pa.field("disputed", pa.bool_()),
        pa.field("task_id", pa.string()),
        pa.field("data", pa.string()),
    ]
    return pa.schema([f for f in fields if f.name != key_column or f is fields[0]])


@dataclass
class LSContext:
    """Options and accumulators shared by the full-JSON and JSON_MIN readers."""

    path: Path
    key: str | None
    resolve: str
    batch_id: str
    guideline_version: str | None
    tool_version: str | None
    config: LabelConfig | None
    unknown: UnknownTypes = field(default_factory=lambda: UnknownTypes(KNOWN_RESULT_TYPES))
    unknown_fields: UnknownTypes = field(default_factory=lambda: UnknownTypes(
        (), "field", "object(s)", "kept raw in the records' extra"))
    warnings: list[str] = field(default_factory=list)
    id_only_predictions: int = 0
    drafts: int = 0
    _owners: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key is not None and self.key in ROW_COLUMNS:
            raise InvalidInput(f"key field {self.key!r} clashes with a column the import adds "
                               f"({', '.join(ROW_COLUMNS)})", hint=Hint("option", "key"))
        self.rows = ColumnBuilder(row_schema(self.key_column))
        self.records = record_builder(self.base)

    @property
    def key_column(self) -> str:
        return self.key or "task_id"

    @cached_property
    def base(self) -> dict[str, Any]:
        """Record fields that are the same for every record of this import (records leave them out)."""
        return {
            "tool": "label-studio",
            "tool_version": self.tool_version,
            "guideline_version": self.guideline_version,
            "config_sha256": self.config.sha256 if self.config else None,
            "import_batch": self.batch_id,
        }

    def sample_key(self, task_id: str, data: dict[str, Any]) -> str:
        """The sample key of a task: its id, or its ``--key`` data field (a dotted path may reach inside).

        Raises:
            InvalidInput: the field is missing, null, empty or not a scalar; or two tasks share the key.
        """
        if self.key is None:
            return task_id
        value: Any = data
        for part in [self.key] if self.key in data else self.key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or value == "" or isinstance(value, dict | list):
            shown = "has no" if value is None else "has an empty" if value == "" else "has a non-scalar"
            raise InvalidInput(f"{self.path}: task {task_id} {shown} key field {self.key!r} in its data "
                               f"(data fields: {', '.join(sorted(data)) or 'none'})")
        key = as_str(value)
        assert key is not None
        return key

    def claim(self, key: str, task_id: str) -> bool:
        """Record that ``task_id`` owns ``key``; False if it did already.

        Raises:
            InvalidInput: another task owns ``key``.
        """
        owner = self._owners.get(key)
        if owner is None:
            self._owners[key] = task_id
            return True
        if owner != task_id:
            raise InvalidInput(f"{self.path}: tasks {owner} and {task_id} share {self.key_column} {key!r}; "
                               "the sample key must be unique (choose another key field)", hint=Hint("option", "key"))
        return False

    def add_row(self, key: str, task_id: str, data: str, resolution: Resolution) -> None:
        """Append the rows-table entry of one sample."""
        self.rows.append({self.key_column: key, "task_id": task_id, "data": data, "label": resolution.label,
                          "annotations": resolution.annotations, "agreement": resolution.agreement,
                          "disputed": resolution.disputed})

    def finish(self, source_format: str) -> ImportBatch:
        """The batch: rows, records, and the warnings gathered."""
        return ImportBatch(
            rows=self.rows.finish(),
            records=self.records.finish(),
            key_column=self.key_column,
            label_column="label",
            warnings=self.warnings + self.unknown.warnings() + self.unknown_fields.warnings(),
            source_format=source_format,
            config_text=self.config.text if self.config else None,
        )
