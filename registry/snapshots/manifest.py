"""Manifests (the physical read plan of a snapshot) and content-derived snapshot ids.

A snapshot's id is the SHA-256 of canonical JSON naming its parents, the object of rows it
upserted, the object of keys it deleted, its schema fingerprint, author, message and time. The
objects are themselves named by the SHA-256 of their bytes, so the id commits to the snapshot's
content through its parents' ids, like a git commit. Where the rows physically sit (the layers in
its manifest) is not part of the id, so compaction can rewrite layers without changing any id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from registry.context import Context
from registry.errors import VerifyFailed
from registry.models import SnapshotRow
from registry.storage.verified import corrupt

__all__ = ["Layer", "Manifest", "canonical_json", "layer_names", "load_manifest", "snapshot_id"]

FORMAT = 1


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Layer:
    """Rows upserted and keys deleted, applied over the layers beneath."""

    rows: str | None
    rows_count: int
    deletes: str | None = None
    deletes_count: int = 0


def layer_names(layers: tuple[Layer, ...]) -> list[list[str | None]]:
    """Each layer's objects (rows, deletes): what a set of layers is, for comparing two of them."""
    return [[layer.rows, layer.deletes] for layer in layers]


@dataclass(frozen=True)
class Manifest:
    """How to read one snapshot: its layers, oldest (the base) first."""

    key_columns: tuple[str, ...]
    schema_fingerprint: str
    rows: int
    layers: tuple[Layer, ...] = field(default_factory=tuple)

    def to_bytes(self) -> bytes:
        """The canonical JSON stored as the manifest object."""
        return canonical_json({
            "format": FORMAT,
            "key_columns": list(self.key_columns),
            "schema_fingerprint": self.schema_fingerprint,
            "rows": self.rows,
            "layers": [asdict(layer) for layer in self.layers],
        })

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "manifest") -> Manifest:
        """Parse a stored manifest.

        Raises:
            VerifyFailed: the bytes are not a manifest of a known format.
        """
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            return cls(
                key_columns=tuple(doc["key_columns"]),
                schema_fingerprint=doc["schema_fingerprint"],
                rows=int(doc["rows"]),
                layers=tuple(Layer(**layer) for layer in doc["layers"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise VerifyFailed(f"{name} is not a valid manifest: {exc}") from exc

    def objects(self) -> list[str]:
        """Every object this manifest reads."""
        found: list[str] = []
        for layer in self.layers:
            found += [sha for sha in (layer.rows, layer.deletes) if sha]
        return found


def snapshot_id(
    *,
    dataset: str,
    parents: list[str],
    change_sha256: str,
    deletes_sha256: str | None,
    schema_fingerprint: str,
    author: str,
    message: str,
    created_at: str,
    annotations_sha256: str | None = None,
) -> str:
    """The content-derived id of a snapshot (64 hex characters); its annotation records object, when it
    has one, is part of it."""
    fields: dict[str, object] = {
        "format": FORMAT,
        "dataset": dataset,
        "parents": parents,
        "change": change_sha256,
        "deletes": deletes_sha256,
        "schema": schema_fingerprint,
        "author": author,
        "message": message,
        "created_at": created_at,
    }
    if annotations_sha256 is not None:
        fields["annotations"] = annotations_sha256
    return hashlib.sha256(canonical_json(fields)).hexdigest()


def load_manifest(ctx: Context, snapshot: SnapshotRow) -> Manifest:
    """The snapshot's manifest, its bytes checked against its name.

    Raises:
        VerifyFailed: the manifest object is damaged.
    """
    data = ctx.store.read_bytes(snapshot.manifest_sha256)
    if hashlib.sha256(data).hexdigest() != snapshot.manifest_sha256:
        raise corrupt(snapshot.manifest_sha256, f"manifest of {snapshot.id[:12]}", "its bytes hash to "
                      f"{hashlib.sha256(data).hexdigest()}")
    return Manifest.from_bytes(data, f"manifest of {snapshot.id}")
