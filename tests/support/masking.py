"""Masking what differs by nature between two registries that did the same things: snapshot ids and
times (a snapshot id includes its commit time), and the fields naming the client or the machine."""

from __future__ import annotations

import re
from typing import Any

_HEX = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{12,64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
_MS = re.compile(r"\(\d[\d,]* ms\)")
_CLIENT_FIELDS = {"seq", "hash", "prev_hash", "client", "remote_addr", "actor_kind", "duration_ms", "home",
                  "lockfile", "path", "registry", "namespace"}
_FILE_DIR = re.compile(r"/[^\s'\"]*/(?=[^/\s'\"]+\.(?:csv|json)\b)")
"""The folder of an imported file: the client's on one side, the server's upload folder on the other."""


def mask_text(text: str) -> str:
    return _FILE_DIR.sub("<dir>/", _MS.sub("(<ms>)", _HEX.sub("<id>", _TIME.sub("<time>", text))))


def mask(value: Any) -> Any:
    """``value`` with ids and times replaced and the fields naming the client or the machine dropped."""
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items() if k not in _CLIENT_FIELDS}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
