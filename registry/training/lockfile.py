"""Lockfiles: the snapshots a training job is pinned to, in a human-readable YAML file.

``registry pin`` writes one entry per (dataset, job), entries sorted by dataset then job, keys in a
fixed order, so a lockfile diffs cleanly in code review::

    version: 1
    pins:
    - dataset: street-signs
      job: train-resnet
      ref: v1
      snapshot_id: 3f2a...            # full id
      content_hash: sha256:9c1e...    # see registry.quality.content
      gate_result_id: 5b0c...
      waiver_id: null
      pinned_at: '2026-11-23T17:00:00.000000Z'
      pinned_by: alice
      registry: /srv/registry/.registry   # the home, or the server's URL, it was pinned in
      namespace: registry://ml-platform   # that registry's lineage namespace: reads check it

What the user asked for (``ref``) is kept apart from what it resolved to (``snapshot_id``), as in
DVC's lock files: pulling reads the snapshot id, never the ref.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from registry.errors import InvalidInput

__all__ = ["LOCKFILE_NAME", "LockEntry", "read_lockfile", "upsert_entry", "write_lockfile"]

LOCKFILE_NAME = "registry.lock"
FORMAT = 1
_HEADER = ("# Datasets pinned for training by `registry pin`; `registry pull` reads exactly these snapshots\n"
           "# and verifies their content hashes. Written by the registry: re-pin instead of editing.\n")


@dataclass(frozen=True)
class LockEntry:
    """One pinned snapshot."""

    dataset: str
    job: str | None
    ref: str
    snapshot_id: str
    content_hash: str
    gate_result_id: str | None
    waiver_id: str | None
    pinned_at: str
    pinned_by: str | None = None
    registry: str | None = None
    """Where it was pinned: the registry home, or the server's URL (informative: homes move)."""
    namespace: str | None = None
    """That registry's lineage namespace, which never changes: a read in another registry is refused."""

    @property
    def target(self) -> str:
        """``NAME@SNAPSHOT_ID``: what a pinned read resolves (never the moving ref)."""
        return f"{self.dataset}@{self.snapshot_id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "lock entry") -> LockEntry:
        """Parse one entry.

        Raises:
            InvalidInput: it is not a mapping or lacks a required field.
        """
        if not isinstance(data, dict):
            raise InvalidInput(f"{where}: expected a mapping with dataset, snapshot_id and content_hash")
        names = {f.name for f in fields(cls)}
        required = ("dataset", "snapshot_id", "content_hash")
        missing = [n for n in required if not data.get(n)]
        if missing:
            raise InvalidInput(f"{where}: missing {', '.join(missing)}")
        values = {n: (str(data[n]) if data.get(n) is not None else None) for n in names}
        values["ref"] = values["ref"] or str(data["snapshot_id"])
        values["pinned_at"] = values["pinned_at"] or ""
        return cls(**values)  # type: ignore[arg-type]


def read_lockfile(path: str | os.PathLike[str]) -> list[LockEntry]:
    """The entries of a lockfile (none if the file does not exist).

    Raises:
        InvalidInput: the file is not a lockfile of a known format.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not a readable lockfile: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != FORMAT or not isinstance(doc.get("pins", []), list):
        raise InvalidInput(f"{path}: not a registry lockfile (expected 'version: {FORMAT}' and a 'pins' list)")
    items = doc.get("pins") or []
    return [LockEntry.from_dict(item, f"{path} entry {number + 1}") for number, item in enumerate(items)]


def upsert_entry(entries: list[LockEntry], entry: LockEntry) -> list[LockEntry]:
    """``entries`` with ``entry`` replacing the one for the same (dataset, job), sorted."""
    kept = [e for e in entries if (e.dataset, e.job) != (entry.dataset, entry.job)]
    return sorted([*kept, entry], key=lambda e: (e.dataset, e.job or ""))


def write_lockfile(path: str | os.PathLike[str], entries: list[LockEntry]) -> None:
    """Write the lockfile atomically (a temporary file in the same folder, then a rename).

    Raises:
        InvalidInput: the file cannot be written.
    """
    path = Path(path)
    body = yaml.safe_dump({"version": FORMAT, "pins": [e.to_dict() for e in entries]}, sort_keys=False,
                          default_flow_style=False, allow_unicode=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        partial.write_text(_HEADER + body)
        partial.replace(path)
    except OSError as exc:
        raise InvalidInput(f"cannot write lockfile {path}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
