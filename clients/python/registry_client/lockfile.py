"""Reading the lockfiles ``registry pin`` writes (YAML, ``version: 1``), without the registry package.

Each entry names the dataset, the full snapshot id, the content hash the server verifies on a pinned
read, and the registry it was pinned in (its URL or home, and its lineage namespace): a read against
a registry with another namespace is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from registry_client.errors import InvalidInput

__all__ = ["read_lockfile"]

_REQUIRED = ("dataset", "snapshot_id", "content_hash")


def read_lockfile(path: str | os.PathLike[str], job: str | None = None) -> list[dict[str, Any]]:
    """The entries of the lockfile at ``path`` (those of ``job`` if given), as dicts.

    Raises:
        InvalidInput: the file is missing, not a lockfile, or an entry lacks a required field.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: not a readable lockfile: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("pins") or [], list):
        raise InvalidInput(f"{path}: not a registry lockfile (expected 'version: 1' and a 'pins' list)")
    entries = []
    for number, item in enumerate(doc.get("pins") or [], 1):
        if not isinstance(item, dict) or any(not item.get(k) for k in _REQUIRED):
            raise InvalidInput(f"{path} entry {number}: needs {', '.join(_REQUIRED)}")
        if job is None or item.get("job") == job:
            entries.append(item)
    return entries
