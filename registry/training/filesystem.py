"""``registry://``: an fsspec filesystem that shows each snapshot as one flat, correct Parquet file.

- ``registry://NAME@REF/data.parquet``: the registry home given as ``home=`` (storage option),
  ``REGISTRY_HOME``, or the nearest ``.registry`` above the working directory;
- ``registry+https://HOST[:PORT]/NAME@REF/data.parquet`` (or ``registry+http://``): a registry server,
  with the token from ``token=`` or ``REGISTRY_TOKEN`` (needs ``dataset-ledger-client``).

Append ``?training=1`` (and ``&job=NAME``) to read for training: the gate is checked (a blocked
gate raises ``GateBlocked``) and the read audited once per filesystem instance and snapshot. So
``pd.read_parquet``, ``pl.read_parquet``, DuckDB (``duckdb.register_filesystem``) and
``datasets.load_dataset("parquet", data_files=...)`` read exactly the snapshot's rows, never the
stored layers (which overlap). Installed as an fsspec entry point: no import is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fsspec import AbstractFileSystem

from registry.config import find_home
from registry.context import open_context
from registry.errors import Hint, InvalidInput, NotFound
from registry.refs import Ref
from registry.snapshots import history
from registry.snapshots.plan import ScanPlan, build_plan
from registry.training.admission import admit_training, local_objects
from registry.training.view import write_view

__all__ = ["FILE_NAME", "RegistryFileSystem"]

FILE_NAME = "data.parquet"
_TRUE = {"1", "true", "yes"}


@dataclass(frozen=True)
class _Target:
    server: str | None  # scheme://host[:port] of a registry server, None for a local home
    ref: str
    file: str | None
    training: bool
    job: str | None


class RegistryFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Read-only: each ``NAME@REF`` is a folder holding ``data.parquet`` (see the module docstring)."""

    protocol = ("registry", "registry+https", "registry+http")
    root_marker = ""

    def __init__(self, home: str | os.PathLike[str] | None = None, token: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.home = home
        self.token = token
        self.cache_dir = cache_dir
        self._views: dict[tuple[Any, ...], Path] = {}

    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        for scheme in ("registry+https", "registry+http"):
            if text.startswith(f"{scheme}://"):
                return f"{scheme[len('registry+'):]}://{text[len(scheme) + 3:]}".rstrip("/")
        return text.removeprefix("registry://").rstrip("/")

    def unstrip_protocol(self, name: str) -> str:
        if name.startswith(("https://", "http://")):
            return f"registry+{name}"
        return f"registry://{name}"

    def _parse(self, path: str) -> _Target:
        text = self._strip_protocol(path)
        text, _, query = text.partition("?")
        options = {k: v[-1] for k, v in parse_qs(query).items()}
        server = None
        if text.startswith(("https://", "http://")):
            scheme, _, rest = text.partition("://")
            host, _, text = rest.partition("/")
            server = f"{scheme}://{host}"
        ref, _, file = text.partition("/")
        if not ref or "/" in file:
            raise InvalidInput(f"{path}: expected registry://NAME@REF/{FILE_NAME}")
        training = options.get("training", "").lower() in _TRUE
        unknown = set(options) - {"training", "job"}
        if unknown:
            raise InvalidInput(f"{path}: unknown option(s) {', '.join(sorted(unknown))}; use training=1 and job=NAME")
        return _Target(server, ref, file or None, training, options.get("job"))

    # --- the view -----------------------------------------------------------------------------------

    def _view(self, target: _Target) -> Path:
        """The local Parquet view of ``target``: the ref is resolved on every call (a branch moves), the
        view written (and a training read admitted) once per snapshot.

        Raises:
            FileNotFoundError: no such dataset or ref (also a ``NotFound``'s message).
        """
        try:
            return self._remote(target) if target.server else self._local(target)
        except NotFound as exc:
            raise FileNotFoundError(str(exc)) from exc

    def _local(self, target: _Target) -> Path:
        ctx = open_context(find_home(self.home))
        try:
            snapshot_id = history.show(ctx, target.ref).id
            key = (str(ctx.paths.home), snapshot_id, target.training, target.job)
            if key not in self._views:
                pinned = Ref.parse(target.ref).at(snapshot_id)
                plan = admit_training(ctx, pinned, job=target.job).plan if target.training else build_plan(ctx, pinned)
                self._views[key] = write_view(plan, local_objects(ctx, plan), ctx.paths.cache_dir / "views")
        finally:
            ctx.close()
        return self._views[key]

    def _remote(self, target: _Target) -> Path:
        from registry_client import Client  # lazy: only registry+http(s) URLs use the client
        from registry_client.training import default_cache_dir  # lazy: only registry+http(s) URLs use the client

        assert target.server is not None
        with Client(target.server, self.token or os.environ.get("REGISTRY_TOKEN")) as client:
            snapshot_id = client.show(target.ref).id
            key = (target.server, snapshot_id, target.training, target.job)
            if key not in self._views:
                pinned = str(Ref.parse(target.ref).at(snapshot_id))
                if target.training:
                    plan = ScanPlan.from_dict(client.admit_training(pinned, job=target.job).plan.to_dict())
                else:
                    plan = ScanPlan.from_dict(client.plan(pinned).to_dict())
                cache = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
                objects = client.object_cache(pinned, cache)
                self._views[key] = write_view(plan, objects, cache.parent / "views")
        return self._views[key]

    # --- the fsspec interface -----------------------------------------------------------------------

    def _file_entry(self, target: _Target, name: str) -> dict[str, Any]:
        view = self._view(target)
        return {"name": name, "size": view.stat().st_size, "type": "file", "ETag": view.stem}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        target = self._parse(path)
        base = self._strip_protocol(path).partition("?")[0]
        if target.file is None:
            entries = [self._file_entry(target, f"{base}/{FILE_NAME}")]
        elif target.file == FILE_NAME:
            entries = [self._file_entry(target, base)]
        else:
            raise FileNotFoundError(f"{path}: a snapshot holds only {FILE_NAME}")
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        target = self._parse(path)
        base = self._strip_protocol(path).partition("?")[0]
        if target.file is None:
            return {"name": base, "size": 0, "type": "directory"}
        if target.file != FILE_NAME:
            raise FileNotFoundError(f"{path}: a snapshot holds only {FILE_NAME}")
        return self._file_entry(target, base)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode != "rb":
            raise InvalidInput(f"{path}: registry:// is read-only (commit through the registry instead)",
                               hint=Hint("command", "commit"))
        target = self._parse(path)
        if target.file != FILE_NAME:
            raise FileNotFoundError(f"{path}: a snapshot holds only {FILE_NAME}")
        return open(self._view(target), "rb")

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        with self._open(path) as fh:
            fh.seek(start or 0)
            data: bytes = fh.read(None if end is None else end - (start or 0))
        return data

    def modified(self, path: str) -> datetime:
        """When the view was written (DuckDB asks; a snapshot never changes)."""
        return datetime.fromtimestamp(self._view(self._parse(path)).stat().st_mtime, tz=UTC)

    created = modified

    def local_path(self, path: str) -> str:
        """The local file of the view (for readers that want a path: polars, DuckDB without fsspec)."""
        target = self._parse(path)
        if target.file not in (None, FILE_NAME):
            raise FileNotFoundError(f"{path}: a snapshot holds only {FILE_NAME}")
        return str(self._view(target))

    def ukey(self, path: str) -> str:
        """The view's name (the snapshot id, or the hash of the one object it is): caches key on it."""
        return str(self.info(path)["ETag"])
