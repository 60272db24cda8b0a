"""The content hash a pin records and a pinned read verifies: layout-independent, so compaction
(which rewrites a snapshot's layers without changing its id) never breaks a pin.

Definition (format 1)::

    "sha256:" + SHA-256( b"registry-content/1\n"
                         + canonical JSON {"keys": key columns, "rows": n, "schema": fingerprint} + b"\n"
                         + for each row, ordered by key hash: key hash, row hash (little-endian uint64) )

where key and row hashes are :func:`registry.snapshots.hashing.hash_table` of the rows exactly as a
reader gets them, and the fingerprint is :func:`registry.snapshots.schema.fingerprint` of their
Arrow schema. Equal rows (in any order, in any number of layers) give equal hashes; any changed
value, added or removed row, renamed column or changed type changes it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from registry.snapshots.hashing import hash_table
from registry.snapshots.id_sort import argsort_ids
from registry.snapshots.manifest import canonical_json
from registry.snapshots.schema import fingerprint

__all__ = ["content_hash"]

_PREFIX = b"registry-content/1\n"
_CHUNK = 1 << 20


def content_hash(table: pa.Table, key_columns: list[str]) -> str:
    """The content hash of ``table`` (see the module docstring)."""
    kh, rh, _ = hash_table(table, key_columns)
    order = argsort_ids(kh)
    digest = hashlib.sha256(_PREFIX)
    digest.update(canonical_json({"keys": key_columns, "rows": table.num_rows, "schema": fingerprint(table.schema)}))
    digest.update(b"\n")
    pairs = np.empty((min(_CHUNK, len(order)), 2), "<u8")
    for start in range(0, len(order), _CHUNK):
        part = order[start:start + _CHUNK]
        view = pairs[:len(part)]
        view[:, 0] = kh[part]
        view[:, 1] = rh[part]
        digest.update(view.tobytes())
    return "sha256:" + digest.hexdigest()
