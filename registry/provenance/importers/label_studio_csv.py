"""Label Studio's CSV and TSV exports: JSON_MIN flattened into one row per annotation.

Label Studio writes one row per (non-cancelled) annotation, plus a row with empty annotation cells
for a task nobody annotated. Columns are the JSON_MIN keys in alphabetical order: ``annotation_id``,
``annotator`` (a quoted user id), ``created_at``, ``id`` (the task id), the task data fields, one
column per control tag, ``lead_time`` and ``updated_at``. An answer cell is the plain choice
(``dog``) or JSON (a list of choices, or a list of region values with no ``from_name`` or ``type``).
The TSV export is the same with tabs. Rows become JSON_MIN items (empty cells left out, JSON cells
decoded) and are read by :mod:`.label_studio_min`, so both exports give the same records.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput

__all__ = ["csv_items", "looks_like_csv"]

_REQUIRED = ("id", "annotation_id", "annotator")
_NUMBERS = {"id", "annotation_id"}
MAX_CELL = 16 * 1024 * 1024


def looks_like_csv(head: bytes) -> bool:
    """Whether the first bytes of a file are a Label Studio CSV/TSV header."""
    first = head.split(b"\n", 1)[0]
    return b"annotation_id" in first and (b"," in first or b"\t" in first)


def _cell(name: str, text: str) -> Any:
    if name in _NUMBERS and text.isdigit():
        return int(text)
    if name == "lead_time":
        try:
            return float(text)
        except ValueError:
            return text
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def csv_items(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a Label Studio CSV/TSV export as JSON_MIN items.

    Raises:
        InvalidInput: not UTF-8, a malformed row, a row longer than the header, or no ``id``,
            ``annotation_id`` and ``annotator`` columns.
    """
    csv.field_size_limit(MAX_CELL)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = handle.readline()
            delimiter = "\t" if header.count("\t") > header.count(",") else ","
            handle.seek(0)
            reader = csv.DictReader(handle, delimiter=delimiter)
            columns = reader.fieldnames or []
            missing = [c for c in _REQUIRED if c not in columns]
            if missing:
                raise InvalidInput(f"{path}: expected a Label Studio CSV export; the header lacks "
                                   f"{', '.join(missing)} (columns: {', '.join(columns) or 'none'})")
            for row in reader:
                if None in row:
                    raise InvalidInput(f"{path}: line {reader.line_num} has more cells than the header")
                if None in row.values():
                    raise InvalidInput(f"{path}: line {reader.line_num} has fewer cells than the header "
                                       "(a truncated export?)")
                yield {name: _cell(name, text) for name, text in row.items() if text not in ("", None)}
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text at byte {exc.start}") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path}: malformed CSV: {exc}") from None
