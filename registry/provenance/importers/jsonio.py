"""Reading JSON inputs: streaming arrays, exact positions of syntax errors, telling formats apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from registry.errors import InvalidInput
from registry.snapshots.inputs import check_json_depth  # nesting is bounded before ijson or json sees a file

__all__ = [
    "describe_json_shape",
    "describe_non_json",
    "first_byte",
    "iter_array",
    "load_json",
    "malformed",
    "top_level_keys",
]

_HEAD = 4096
_LOCATE_LIMIT = 512 * 1024 * 1024
"""Up to this size a syntax error is located by re-reading the file with the standard parser."""


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")


def first_byte(path: Path) -> tuple[str, bytes]:
    """The first non-blank character of ``path`` ('' when empty) and the file's first bytes."""
    _require_file(path)
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return (chr(stripped[0]) if stripped else ""), head


def describe_non_json(head: bytes) -> str:
    """A guess of what a file that is not one JSON document is, from its first bytes."""
    if head.startswith(b"PAR1"):
        return "this looks like Parquet"
    if head.startswith(b"PK\x03\x04"):
        return "this is a zip archive (Label Studio's COCO or YOLO export? import it as coco or yolo)"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "the file is empty"
    if len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines[:2]):
        return "this looks like JSON lines (one object per line)"
    if "," in lines[0] or "\t" in lines[0]:
        return "this looks like CSV"
    return "this is not JSON"


def _position(path: Path, exc: Exception) -> str:
    """Where parsing failed, as 'line L, column C (byte B)'."""
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}, column {exc.colno} (byte {exc.pos})"
    if path.stat().st_size <= _LOCATE_LIMIT:
        try:
            json.loads(path.read_bytes())
        except json.JSONDecodeError as located:
            return f"line {located.lineno}, column {located.colno} (byte {located.pos})"
        except (UnicodeDecodeError, ValueError):
            pass
    detail = str(exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__


def malformed(path: Path, exc: Exception) -> InvalidInput:
    """The error for a file that is not well-formed JSON, naming where parsing failed."""
    message = str(exc).strip().splitlines()
    reason = message[0] if message else type(exc).__name__
    if isinstance(exc, json.JSONDecodeError):
        reason = exc.msg
    return InvalidInput(f"{path}: malformed JSON at {_position(path, exc)}: {reason}")


def iter_array(path: Path) -> Iterator[Any]:
    """Stream the items of the top-level JSON array in ``path`` (floats as ``float``).

    Raises:
        InvalidInput: the file is not well-formed JSON (with the position of the error).
    """
    check_json_depth(path, per_line=False)
    with path.open("rb") as fh:
        try:
            yield from ijson.items(fh, "item", use_float=True)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise malformed(path, exc) from None


def load_json(path: Path) -> Any:
    """Parse all of ``path`` (for formats that are one object, like COCO).

    Raises:
        InvalidInput: missing file, or not well-formed JSON (with the position of the error).
    """
    _require_file(path)
    check_json_depth(path, per_line=False)
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise malformed(path, exc) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start}): not a JSON file") from None


def top_level_keys(path: Path, limit: int = 64) -> list[str]:
    """The keys of the top-level JSON object in ``path``, streamed (at most ``limit``)."""
    keys: list[str] = []
    check_json_depth(path, per_line=False)
    with path.open("rb") as fh:
        try:
            for prefix, event, value in ijson.parse(fh):
                if prefix == "" and event == "map_key":
                    keys.append(str(value))
                    if len(keys) >= limit or {"images", "annotations"} <= set(keys):
                        break
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise malformed(path, exc) from None
    return keys


def describe_json_shape(keys: list[str] | None = None, item: Any = None) -> str:
    """Name the format a JSON object (by its ``keys``) or an array (by its first ``item``) looks like."""
    if keys is not None:
        if "images" in keys and "annotations" in keys:
            return "this looks like COCO (has 'images' and 'annotations')"
        if "data" in keys and ("annotations" in keys or "predictions" in keys or "id" in keys):
            return "this looks like a single Label Studio task, not a list of tasks"
        shown = ", ".join(repr(k) for k in keys[:8]) or "none"
        return f"it is a JSON object with keys {shown}"
    if isinstance(item, dict):
        if "data" in item or "annotations" in item or "predictions" in item:
            return "this looks like a Label Studio JSON export (a list of tasks)"
        if "image_id" in item and "bbox" in item:
            return "this looks like a list of COCO annotations or detection results"
        shown = ", ".join(repr(k) for k in list(item)[:8]) or "none"
        return f"it is a JSON array of objects with keys {shown}"
    return f"it is a JSON array of {type(item).__name__}"
