"""Annotation logs as tables (``table``): CSV, Parquet or JSON lines, one row per labeling act.

``--map target=column,...`` names the column holding each record field (see :data:`TARGETS`);
``key`` and ``value`` are required. Values are labels (``value_type`` ``label`` unless mapped).
Without a mapped ``annotation_id``, a record's id is ``row:`` + a hash of its mapped fields (a
repeat of the same fields adds ``:2``, ``:3`` ... in file order).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from registry.errors import Hint, InvalidInput
from registry.provenance.importers.common import (
    ImportBatch,
    as_bool,
    as_float,
    as_str,
    canonical_json,
    iso_utc,
    record_builder,
)
from registry.provenance.importers.jsonio import first_byte
from registry.provenance.importers.resolve import resolve_labels
from registry.snapshots.inputs import InputLimits
from registry.snapshots.tables import read_table_file

__all__ = ["ALIASES", "TARGETS", "parse_mapping", "read_annotation_table"]

TARGETS = ("key", "value", "annotation_id", "annotator_id", "annotator_email", "annotator_name", "source_kind",
           "model_version", "score", "value_type", "created_at", "updated_at", "lead_time", "was_cancelled",
           "ground_truth", "reviewer", "review_state", "tool", "tool_version", "project_id", "task_id",
           "guideline_version")
"""Mapping targets: record fields (``key`` is ``sample_key``)."""

ALIASES = {"annotator": "annotator_id", "label": "value", "sample_key": "key", "id": "annotation_id"}
_FLOATS = {"score", "lead_time"}
_BOOLS = {"was_cancelled", "ground_truth"}
_TIMES = {"created_at", "updated_at"}
_MAP = Hint("option", "map")


def parse_mapping(text: str) -> dict[str, str]:
    """``"annotator=worker_id,value=answer,key=item"`` -> ``{"annotator_id": "worker_id", ...}``.

    Aliases (``annotator``, ``label``, ``sample_key``, ``id``) become their target names.

    Raises:
        InvalidInput: an entry is not ``target=column``, a target is unknown or given twice.
    """
    mapping: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        target, sep, column = (part.strip() for part in entry.partition("="))
        if not sep or not target or not column:
            raise InvalidInput(f"mapping entry {entry!r} is not target=column (e.g. annotator=worker_id,value=answer)",
                               hint=_MAP)
        target = ALIASES.get(target, target)
        if target not in TARGETS:
            raise InvalidInput(f"mapping: unknown target {target!r}; targets are {', '.join(TARGETS)} "
                               f"(aliases: {', '.join(ALIASES)})", hint=_MAP)
        if target in mapping:
            raise InvalidInput(f"mapping: target {target!r} given twice", hint=_MAP)
        mapping[target] = column
    return mapping


def _check_mapping(path: Path, table: pa.Table, mapping: dict[str, str]) -> None:
    for target in ("key", "value"):
        if target not in mapping:
            raise InvalidInput(f"the mapping must name the {target} column ({target}=COLUMN)", hint=_MAP)
    unknown = [f"{t}={c}" for t, c in mapping.items() if t in TARGETS and c not in table.column_names]
    if unknown:
        raise InvalidInput(f"{path}: the mapping names missing column(s) {', '.join(unknown)} "
                           f"(columns are: {', '.join(table.column_names)})", hint=_MAP)


def _convert(target: str, value: Any, where: str) -> Any:
    if target in _FLOATS:
        return as_float(value, f"{where}: {target}")
    if target in _BOOLS:
        return as_bool(value, f"{where}: {target}")
    if target in _TIMES:
        return iso_utc(value)
    return as_str(value)


def _read(path: Path, limits: InputLimits | None) -> pa.Table:
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson") and path.is_file():
        char, _ = first_byte(path)
        if char == "[":
            raise InvalidInput(f"{path}: expected an annotation table (CSV, Parquet or JSON lines); this is a "
                               f"JSON array (a Label Studio export? use the label-studio format)")
    return read_table_file(path, limits)


def read_annotation_table(path: Path, *, mapping: dict[str, str], guideline_version: str | None = None,
                          batch_id: str, limits: InputLimits | None = None) -> ImportBatch:
    """Read an annotation log with a column mapping into records and resolved rows.

    Raises:
        InvalidInput: unreadable file, a mapping without key/value or naming missing columns, a null
            key, a bad number/boolean/source kind, or a repeated mapped annotation id.
    """
    path = Path(path)
    mapping = {ALIASES.get(t, t): c for t, c in mapping.items()}
    table = _read(path, limits)
    _check_mapping(path, table, mapping)
    columns = {target: table.column(column).to_pylist() for target, column in mapping.items()}
    base = {"tool": path.name, "guideline_version": guideline_version, "value_type": "label"}
    records = record_builder()
    ids: Counter[str] = Counter()
    for index in range(table.num_rows):
        where = f"{path}: row {index + 1}"
        fields = {target: _convert(target, values[index], where) for target, values in columns.items()}
        key = fields.pop("key")
        if key is None or key == "":
            raise InvalidInput(f"{where}: key column {mapping['key']!r} is empty")
        kind = fields.get("source_kind") or "human"
        if kind not in ("human", "model"):
            raise InvalidInput(f"{where}: source_kind must be 'human' or 'model', not {kind!r}")
        given = fields.get("annotation_id")
        ident = given or "row:" + hashlib.sha256(canonical_json([key, fields]).encode()).hexdigest()[:32]
        ids[ident] += 1
        if ids[ident] > 1:
            if given:
                raise InvalidInput(f"{where}: annotation id {given!r} appears more than once")
            ident = f"{ident}:{ids[ident]}"
        records.append(base | {k: v for k, v in fields.items() if v is not None} | {
            "sample_key": key, "annotation_id": ident, "source_kind": kind, "import_batch": batch_id})
    record_table = records.finish()
    resolved = resolve_labels(record_table).rename_columns([mapping["key"], "label", "annotations", "agreement",
                                                            "disputed"])
    return ImportBatch(rows=resolved, records=record_table, key_column=mapping["key"], label_column="label",
                       warnings=[], source_format="table")
