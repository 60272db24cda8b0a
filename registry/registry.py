"""``Registry``: the Python API over one registry home, the same service functions the CLI calls."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from registry.config import Settings, find_home
from registry.context import Context, create_home, open_context
from registry.datasets import DatasetInfo, create_dataset, list_datasets
from registry.snapshots import history
from registry.snapshots.commit import CommitResult, Mode, commit
from registry.snapshots.compact import CompactResult, compact
from registry.snapshots.diff import ChangeSet, DiffResult, change_set, diff
from registry.snapshots.gc import DEFAULT_MIN_AGE, GcReport, gc
from registry.snapshots.history import SchemaVersionInfo, SnapshotInfo
from registry.snapshots.read import export, read
from registry.snapshots.verify import VerifyReport, verify

__all__ = ["Registry"]


class Registry:
    """An open registry home.

    >>> reg = Registry.open()                      # doctest: +SKIP
    >>> table = reg.read("street-signs@v1")        # doctest: +SKIP
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @classmethod
    def init(cls, path: str | os.PathLike[str] | None = None) -> Registry:
        """Create a home at ``path`` (default ``./.registry``) and open it."""
        paths = create_home(Path(path) if path is not None else None)
        return cls(open_context(paths.home))

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None) -> Registry:
        """Open the home at ``home``, ``REGISTRY_HOME``, or the nearest ``.registry`` above the cwd.

        Raises:
            HomeNotFound: no home was found.
            CatalogOutOfDate: the catalog needs `registry db upgrade`.
        """
        settings = Settings()
        return cls(open_context(find_home(home), settings))

    def close(self) -> None:
        self.ctx.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def home(self) -> Path:
        return self.ctx.paths.home

    def create_dataset(self, name: str, key: str | Sequence[str], description: str = "",
                       owner: str | None = None, actor: str | None = None) -> DatasetInfo:
        """Create a dataset keyed by ``key`` (a column name or several)."""
        keys = [key] if isinstance(key, str) else list(key)
        return create_dataset(self.ctx, name, keys, description, owner, actor)

    def datasets(self) -> list[DatasetInfo]:
        return list_datasets(self.ctx)

    def commit(self, name: str, table_or_path: pa.Table | str | os.PathLike[str] | None, *, message: str = "",
               author: str | None = None, mode: Mode = "replace",
               delete_keys: pa.Table | str | os.PathLike[str] | None = None, expect_parent: str | None = None,
               allow_breaking: bool = False, progress: Callable[[str], None] | None = None) -> CommitResult:
        """Commit a table or file to ``name``'s ``main`` branch; see :func:`registry.snapshots.commit.commit`."""
        source = Path(table_or_path) if isinstance(table_or_path, os.PathLike) else table_or_path
        deletes = Path(delete_keys) if isinstance(delete_keys, os.PathLike) else delete_keys
        return commit(self.ctx, name, source, message=message, author=author, mode=mode, delete_keys=deletes,
                      expect_parent=expect_parent, allow_breaking=allow_breaking, progress=progress)

    def read(self, ref: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows of ``ref`` as a ``pyarrow.Table``."""
        return read(self.ctx, ref, columns)

    def export(self, ref: str, out: str | os.PathLike[str]) -> int:
        return export(self.ctx, ref, Path(out))

    def diff(self, a: str, b: str, rows: int = 10) -> DiffResult:
        return diff(self.ctx, a, b, rows)

    def changes(self, a: str, b: str) -> ChangeSet:
        """Rows to upsert and keys to delete that turn ``a`` into ``b``."""
        return change_set(self.ctx, a, b)

    def log(self, name: str, limit: int | None = None) -> list[SnapshotInfo]:
        return history.log(self.ctx, name, limit)

    def show(self, ref: str) -> SnapshotInfo:
        return history.show(self.ctx, ref)

    def tag(self, ref: str, tag: str, actor: str | None = None) -> SnapshotInfo:
        return history.tag(self.ctx, ref, tag, actor)

    def schema(self, name: str) -> list[SchemaVersionInfo]:
        return history.schema_versions(self.ctx, name)

    def verify(self, name: str | None = None) -> VerifyReport:
        return verify(self.ctx, name)

    def gc(self, dry_run: bool = False, min_age: float = DEFAULT_MIN_AGE, actor: str | None = None) -> GcReport:
        return gc(self.ctx, dry_run, min_age, actor)

    def compact(self, ref: str, full: bool = True, actor: str | None = None) -> CompactResult:
        return compact(self.ctx, ref, full, actor)
