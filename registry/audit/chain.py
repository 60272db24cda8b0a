"""The hash chain: canonical bytes of an event and ``hash = SHA-256(prev_hash || canonical bytes)``.

Canonical JSON is what ``json.dumps(event, sort_keys=True, separators=(",", ":"))`` prints for the
event without its ``hash`` (a test holds the two equal); building it from a fixed template with the
C string encoder makes verifying a million events take seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = ["FIELDS", "GENESIS", "canonical_bytes", "canonical_json", "event_hash"]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event."""

FIELDS = ("seq", "event_id", "time", "actor", "actor_kind", "action", "object_type", "object_id", "dataset",
          "snapshot", "details", "client", "prev_hash", "hash")
"""Every stored column of an event, in the order segments and views show them."""

_TEMPLATE = ('{"action":%s,"actor":%s,"actor_kind":%s,"client":%s,"dataset":%s,"details":%s,"event_id":%s,'
             '"object_id":%s,"object_type":%s,"prev_hash":%s,"seq":%d,"snapshot":%s,"time":%s}')


def canonical_json(value: Any) -> str:
    """Canonical JSON of details or client info: sorted keys, no spaces, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def canonical_bytes(seq: int, event_id: str, time: str, actor: str, actor_kind: str, action: str,
                    object_type: str, object_id: str, dataset: str | None, snapshot: str | None,
                    details: str, client: str, prev_hash: str) -> bytes:
    """The bytes an event's hash covers. ``details`` and ``client`` are canonical JSON texts."""
    return (_TEMPLATE % (_text(action), _text(actor), _text(actor_kind), client, _text(dataset), details,
                         _text(event_id), _text(object_id), _text(object_type), _text(prev_hash), seq,
                         _text(snapshot), _text(time))).encode("ascii")


def event_hash(prev_hash: str, canonical: bytes) -> str:
    """``SHA-256(prev_hash || canonical)`` in hex; ``prev_hash`` enters as its 64 hex characters."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()
