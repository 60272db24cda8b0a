"""``registry export NAME@REF -``: rows to stdout, so they pipe into other tools."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput
from registry.refs import Ref

__all__ = ["export_rows"]


def export_rows(registry: Any, ref: Ref | str, out: str, fmt: str | None) -> int:
    """Write ``ref``'s rows to the file ``out`` (format from ``fmt`` or its suffix) or, for ``-``, to stdout
    as ``fmt``; the row count.

    Raises:
        InvalidInput: ``-`` without ``fmt``, or ``fmt`` disagrees with ``out``'s suffix.
    """
    from registry.snapshots.tables import EXPORT_FORMATS  # lazy: CLI start-up (pyarrow)

    if out != "-":
        suffix_format = EXPORT_FORMATS.get(Path(out).suffix.lower())
        if fmt is not None and suffix_format is not None and suffix_format != fmt:
            raise InvalidInput(f"{out}: the suffix says {suffix_format}, --format says {fmt}; make them agree")
        if fmt is not None and suffix_format is None:
            raise InvalidInput(f"{out}: name the file with the format's suffix (.{fmt})")
        return int(registry.export(ref, out))
    if fmt is None:
        raise InvalidInput("writing to stdout (-) needs --format csv, jsonl or parquet")
    if fmt == "parquet" and sys.stdout.isatty():
        raise InvalidInput("will not write Parquet to a terminal; redirect stdout to a file or a pipe")
    sys.stdout.flush()
    rows = int(registry.write_rows(ref, fmt, sys.stdout.buffer))
    sys.stdout.buffer.flush()
    return rows
