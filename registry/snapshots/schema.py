"""Schema fingerprints and the compatible/breaking classification of schema changes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from registry.snapshots.manifest import canonical_json

__all__ = ["SchemaChange", "compare_schemas", "fingerprint", "schema_from_json", "schema_to_json"]

# Type changes that keep every old value readable as the new type.
_WIDENINGS: dict[str, set[str]] = {
    "int8": {"int16", "int32", "int64", "float", "double"},
    "int16": {"int32", "int64", "float", "double"},
    "int32": {"int64", "double"},
    "uint8": {"uint16", "uint32", "uint64", "int16", "int32", "int64", "float", "double"},
    "uint16": {"uint32", "uint64", "int32", "int64", "float", "double"},
    "uint32": {"uint64", "int64", "double"},
    "halffloat": {"float", "double"},
    "float": {"double"},
    "string": {"large_string"},
    "binary": {"large_binary"},
    "date32[day]": {"timestamp[s]", "timestamp[ms]", "timestamp[us]", "timestamp[ns]"},
}


def schema_to_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """Columns as ``[{"name", "type", "nullable"}]`` in order."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def fingerprint(schema: pa.Schema) -> str:
    """SHA-256 of the schema's canonical JSON."""
    return hashlib.sha256(canonical_json(schema_to_json(schema))).hexdigest()


def schema_from_json(text: str) -> list[dict[str, Any]]:
    """The column list stored in the catalog."""
    result: list[dict[str, Any]] = json.loads(text)
    return result


@dataclass(frozen=True)
class SchemaChange:
    """One column-level difference between two schemas."""

    kind: str  # column_added, column_removed, type_changed, nullability_changed, columns_reordered
    column: str
    before: str | None
    after: str | None
    breaking: bool

    def describe(self) -> str:
        if self.kind == "column_added":
            return f"+ {self.column} {self.after}"
        if self.kind == "column_removed":
            return f"- {self.column} {self.before}"
        if self.kind == "columns_reordered":
            return f"order {self.before} -> {self.after}"
        return f"~ {self.column} {self.before} -> {self.after}"


def compare_schemas(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[SchemaChange]:
    """Column changes from ``before`` to ``after``; removing or narrowing a column is breaking."""
    old = {c["name"]: c for c in before}
    new = {c["name"]: c for c in after}
    changes: list[SchemaChange] = []
    for name, col in old.items():
        if name not in new:
            changes.append(SchemaChange("column_removed", name, col["type"], None, True))
            continue
        other = new[name]
        if col["type"] != other["type"]:
            widening = other["type"] in _WIDENINGS.get(col["type"], set())
            changes.append(SchemaChange("type_changed", name, col["type"], other["type"], not widening))
        elif col["nullable"] != other["nullable"]:
            changes.append(SchemaChange("nullability_changed", name, "nullable" if col["nullable"] else
                                        "not null", "nullable" if other["nullable"] else "not null",
                                        not other["nullable"]))
    for name, col in new.items():
        if name not in old:
            changes.append(SchemaChange("column_added", name, None, col["type"], False))
    kept_before = [c["name"] for c in before if c["name"] in new]
    kept_after = [c["name"] for c in after if c["name"] in old]
    if kept_before != kept_after:
        changes.append(SchemaChange("columns_reordered", "*", ",".join(kept_before), ",".join(kept_after), False))
    return changes
