"""Branch and merge commands against a server (``REGISTRY_URL``), mixed into ``RemoteRegistry``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import registry_client

from registry.branching.branches import split_branch
from registry.catalog import split_ref
from registry.errors import UnresolvedConflicts

__all__ = ["RemoteBranches"]


class RemoteBranches:
    """``branch``, ``branches``, ``delete_branch``, ``protect`` and ``merge`` over HTTP."""

    client: registry_client.Client

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...  # RemoteRegistry's

    def branch(self, name_branch: str, from_ref: str | None = None) -> Any:
        from registry.cli.remote import Remote  # lazy: cycle: remote.py imports this module (protocol replaces both)

        name, branch = split_branch(name_branch)
        return Remote(self._call(self.client.create_branch, name, branch, from_ref))

    def branches(self, name: str) -> list[Any]:
        from registry.cli.remote import Remote  # lazy: cycle: remote.py imports this module (protocol replaces both)

        return [Remote(b) for b in self._call(self.client.branches, name)]

    def delete_branch(self, name_branch: str, force: bool = False) -> Any:
        from registry.cli.remote import Remote  # lazy: cycle: remote.py imports this module (protocol replaces both)

        name, branch = split_branch(name_branch)
        return Remote(self._call(self.client.delete_branch, name, branch, force))

    def protect(self, name_branch: str, protected: bool = True) -> Any:
        from registry.cli.remote import Remote  # lazy: cycle: remote.py imports this module (protocol replaces both)

        name, branch = split_branch(name_branch)
        return Remote(self._call(self.client.protect_branch, name, branch, protected))

    def merge(self, source: str, into: str = "main", *, strategy: str = "fail", prefer: str | None = None,
              resolutions: str | os.PathLike[str] | None = None, dry_run: bool = False, message: str = "",
              expect_target: str | None = None, retry: int = 0) -> Any:
        """Merge on the server; a resolutions file is read here and sent as JSON."""
        from registry.cli.remote import Remote  # lazy: cycle: remote.py imports this module (protocol replaces both)

        name, ref = split_ref(source)
        rows: list[dict[str, Any]] = []
        if resolutions is not None:
            from registry.snapshots.tables import read_table_file  # lazy: CLI start-up

            keys = next(d["key_columns"] for d in self._call(self.client.datasets) if d["name"] == name)
            rows = [{"key": {k: r[k] for k in keys}, "column": r["column"], "value": r["value"]}
                    for r in read_table_file(Path(resolutions)).to_pylist()]
        try:
            return Remote(self.client.merge(name, ref, into, strategy=strategy, prefer=prefer,
                                            resolutions=rows, dry_run=dry_run, message=message,
                                            expect_target=expect_target, retry=retry))
        except registry_client.UnresolvedConflicts as exc:
            raise UnresolvedConflicts(exc.message, exc.conflicts) from exc
        except registry_client.RegistryError as exc:
            from registry.cli.remote import (
                to_local,  # lazy: cycle: remote.py imports this module (protocol replaces both)
            )

            raise to_local(exc) from exc
