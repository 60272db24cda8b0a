"""The CLI's fast read path: everyday read-only commands answered from the embedded SQLite catalog through
the standard library's ``sqlite3`` (read-only URI), without importing SQLAlchemy, SQLModel, pydantic's
models, pyarrow or numpy, which on a small registry is most of a command's time.

Each reader gives exactly what the normal path's ``.to_dict()`` gives (same keys in the same order, same
values), or None when it cannot answer: then the command runs through :class:`registry.registry.Registry`,
which gives the full answer or the proper error. It answers only when the home's catalog is a plain
``sqlite:///`` file at the newest migration (:func:`registry.quality.gatecheck.open_readonly_catalog`);
PostgreSQL, a server at ``REGISTRY_URL``, an older or newer schema, an unknown name, an ambiguous id prefix
or any SQLite error go the normal way. ``tests/cli/test_fast_reads.py`` runs each command both ways on the
same home and compares the output byte for byte.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from registry.refs import ANCESTOR, HEX_ID, MAIN, Ref, full_match
from registry.snapshots.describe import describe_change
from registry.timeutil import utc_now

if TYPE_CHECKING:
    from registry.config import Settings
    from registry.storage import ObjectStore

__all__ = ["FastReads"]

T = TypeVar("T")

_SNAPSHOT_COLUMNS = ("id, parents, author, created_at, message, rows, added, changed, removed, bytes_written, "
                     "schema_version, summary, annotations_sha256")


class FastReads:
    """Read-only answers over one open ``sqlite3`` connection to an up-to-date catalog of ``home``, with the
    settings a context on that home would carry (``Settings.for_home``)."""

    def __init__(self, conn: sqlite3.Connection, home: Path, settings: Settings, store: ObjectStore) -> None:
        self.conn = conn
        self.home = home
        self.settings = settings
        self.store = store

    @classmethod
    def begin(cls, conn: sqlite3.Connection, home: Path, settings: Settings) -> FastReads | None:
        """Readers in one read transaction (every query of a command sees the same catalog state, as the
        normal path's one read transaction does), or None (and ``conn`` closed) when SQLite refuses or the
        home's object store does not open: opening a home opens its store, so a misconfigured store fails
        every command the normal way, in its words."""
        from registry.config import RegistryPaths  # lazy: only read-only commands use it
        from registry.storage import open_store  # lazy: only read-only commands use it

        try:
            paths = RegistryPaths.for_home(home, settings)
            store = open_store(paths.storage_url, settings.storage, paths.cache_dir)
            conn.isolation_level = None  # we issue BEGIN ourselves, as registry.db does
            conn.execute("BEGIN")
        except Exception:  # noqa: BLE001 - whatever it is, the normal path meets it and reports it
            conn.close()
            return None
        return cls(conn, home, settings, store)

    def close(self) -> None:
        self.conn.close()

    def _answer(self, read: Callable[[], T | None]) -> T | None:
        """``read()``, or None when SQLite fails (the normal path then answers or explains)."""
        try:
            return read()
        except sqlite3.Error:
            return None

    # --- datasets, refs, snapshots (registry.datasets, registry.catalog, registry.snapshots.history) ---------

    def datasets(self) -> list[dict[str, object]] | None:
        """``registry dataset list``: as :func:`registry.datasets.list_datasets`."""
        return self._answer(self._datasets)

    def _datasets(self) -> list[dict[str, object]]:
        counts = dict(self.conn.execute("SELECT dataset_id, count(*) FROM snapshot GROUP BY dataset_id").fetchall())
        heads = dict(self.conn.execute("SELECT dataset_id, snapshot_id FROM ref WHERE name = ?", (MAIN,)).fetchall())
        head_rows = {row[0]: row for row in self.conn.execute(
            f"SELECT id, rows, created_at FROM snapshot WHERE id IN ({','.join('?' * len(heads))})",
            list(heads.values())).fetchall()} if heads else {}
        result: list[dict[str, object]] = []
        for ds_id, name, keys, description, owner, created_at, created_by in self.conn.execute(
                "SELECT id, name, key_columns, description, owner, created_at, created_by FROM dataset ORDER BY name"):
            head = head_rows.get(heads.get(ds_id, ""))
            result.append({"name": name, "key_columns": json.loads(keys), "description": description, "owner": owner,
                           "created_at": created_at, "created_by": created_by, "head": head[0] if head else None,
                           "rows": int(head[1]) if head else 0, "snapshots": int(counts.get(ds_id, 0)),
                           "last_commit_at": head[2] if head else None})
        return result

    def _dataset(self, name: str) -> tuple[int, str] | None:
        found = self.conn.execute("SELECT id, name FROM dataset WHERE name = ?", (name,)).fetchone()
        return (int(found[0]), str(found[1])) if found else None

    def _snapshot(self, snapshot_id: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshot WHERE id = ?", (snapshot_id,)).fetchone()
        return row

    def _resolve(self, dataset_id: int, ref_name: str) -> tuple[Any, ...] | None:
        """The snapshot row ``ref_name`` names, as :func:`registry.catalog.resolve` finds it, or None for
        anything that path answers with an error (no such ref, an ambiguous prefix, too short a history)."""
        ancestry = ANCESTOR.fullmatch(ref_name)
        if ancestry:
            snapshot = self._resolve(dataset_id, ancestry["base"])
            for _ in range(int(ancestry["n"])):
                if snapshot is None:
                    return None
                parents = json.loads(snapshot[1])
                if not parents:
                    return None
                snapshot = self._snapshot(parents[0])
            return snapshot
        named = self.conn.execute("SELECT snapshot_id FROM ref WHERE dataset_id = ? AND name = ?",
                                  (dataset_id, ref_name)).fetchone()
        if named is not None:
            return self._snapshot(named[0])
        if full_match(HEX_ID, ref_name):
            matches = self.conn.execute(
                f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshot WHERE dataset_id = ? AND substr(id, 1, ?) = ?",
                (dataset_id, len(ref_name), ref_name)).fetchall()
            if len(matches) == 1:
                return tuple(matches[0])
        return None

    def _refs_by_snapshot(self, dataset_id: int) -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {}
        for name, kind, snapshot_id in self.conn.execute(
                "SELECT name, kind, snapshot_id FROM ref WHERE dataset_id = ?", (dataset_id,)):
            found.setdefault(snapshot_id, []).append((name, kind))
        return found

    @staticmethod
    def _info(row: tuple[Any, ...], dataset: str, refs: list[tuple[str, str]],
              schema: list[dict[str, Any]] | None = None) -> dict[str, object]:
        """As ``SnapshotInfo.to_dict()`` (:mod:`registry.snapshots.history`)."""
        (snapshot_id, parents, author, created_at, message, rows, added, changed, removed, bytes_written,
         schema_version, summary, annotations_sha256) = row
        return {"id": snapshot_id, "dataset": dataset, "parents": json.loads(parents), "author": author,
                "created_at": created_at, "message": message, "rows": int(rows), "added": int(added),
                "changed": int(changed), "removed": int(removed), "bytes_written": int(bytes_written),
                "schema_version": int(schema_version),
                "tags": sorted(name for name, kind in refs if kind == "tag"),
                "branches": sorted(name for name, kind in refs if kind == "branch"), "schema": schema or [],
                "summary": summary or describe_change(int(added), int(changed), int(removed)),
                "annotations_sha256": annotations_sha256}

    def log(self, ref: Ref, limit: int | None = None) -> list[dict[str, object]] | None:
        """``registry log``: as :func:`registry.snapshots.history.log`."""
        return self._answer(lambda: self._log(ref, limit))

    def _resolved(self, ref: Ref) -> tuple[int, str, tuple[Any, ...]] | None:
        """The dataset id and name, and the snapshot row ``ref`` names (None: let the full path answer)."""
        dataset = self._dataset(ref.dataset)
        if dataset is None:
            return None
        row = self._resolve(dataset[0], ref.ref_name)
        return None if row is None else (dataset[0], dataset[1], row)

    def _log(self, ref: Ref, limit: int | None) -> list[dict[str, object]] | None:
        resolved = self._resolved(ref)
        if resolved is None:
            return None
        dataset_id, name, head = resolved
        refs = self._refs_by_snapshot(dataset_id)
        rows = {row[0]: tuple(row) for row in self.conn.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshot WHERE dataset_id = ?", (dataset_id,)).fetchall()}
        result: list[dict[str, object]] = []
        current: tuple[Any, ...] | None = head
        while current is not None and (limit is None or len(result) < limit):
            result.append(self._info(current, name, refs.get(current[0], [])))
            parents = json.loads(current[1])
            current = rows.get(parents[0]) if parents else None
        return result

    def show(self, ref: Ref) -> dict[str, object] | None:
        """``registry show``: as :func:`registry.snapshots.history.show`."""
        return self._answer(lambda: self._show(ref))

    def _show(self, ref: Ref) -> dict[str, object] | None:
        resolved = self._resolved(ref)
        if resolved is None:
            return None
        dataset_id, name, row = resolved
        version = self.conn.execute("SELECT arrow_schema FROM schema_version WHERE dataset_id = ? AND version = ?",
                                    (dataset_id, row[10])).fetchone()
        schema = json.loads(version[0]) if version else []
        return self._info(row, name, self._refs_by_snapshot(dataset_id).get(row[0], []), schema)

    def schema(self, name: str) -> list[dict[str, object]] | None:
        """``registry schema``: as :func:`registry.snapshots.history.schema_versions`."""
        return self._answer(lambda: self._schema(name))

    def _schema(self, name: str) -> list[dict[str, object]] | None:
        dataset = self._dataset(name)
        if dataset is None:
            return None
        return [{"version": int(version), "fingerprint": fingerprint, "compatibility": compatibility,
                 "columns": json.loads(columns), "changes": json.loads(changes),
                 "first_snapshot_id": first_snapshot_id, "created_at": created_at}
                for version, fingerprint, compatibility, columns, changes, first_snapshot_id, created_at
                in self.conn.execute("SELECT version, fingerprint, compatibility, arrow_schema, changes, "
                                     "first_snapshot_id, created_at FROM schema_version WHERE dataset_id = ? "
                                     "ORDER BY version", (dataset[0],)).fetchall()]

    # --- policies and tokens (registry.quality.policy_versions, registry.auth.tokens) ------------------------

    def policy(self, name: str, version: int | None = None) -> dict[str, object] | None:
        """``registry policy show``: as :func:`registry.quality.policy_versions.show_policy`."""
        return self._answer(lambda: self._policy(name, version))

    def _policy(self, name: str, version: int | None) -> dict[str, object] | None:
        dataset = self._dataset(name)
        if dataset is None:
            return None
        columns = "version, policy_hash, maintainers, checks, document, created_at, created_by"
        if version is None:
            row = self.conn.execute(f"SELECT {columns} FROM qa_policy WHERE dataset_id = ? ORDER BY version DESC "
                                    "LIMIT 1", (dataset[0],)).fetchone()
        else:
            row = self.conn.execute(f"SELECT {columns} FROM qa_policy WHERE dataset_id = ? AND version = ?",
                                    (dataset[0], version)).fetchone()
        if row is None:
            return None
        number, policy_hash, maintainers, checks, document, created_at, created_by = row
        return {"dataset": dataset[1], "version": int(number), "policy_hash": policy_hash,
                "maintainers": json.loads(maintainers), "checks": json.loads(checks), "document": document,
                "created_at": created_at, "created_by": created_by, "created": True}

    def tokens(self) -> list[dict[str, object]] | None:
        """``registry token list``: as :func:`registry.auth.tokens.list_tokens` (never a secret)."""
        return self._answer(self._tokens)

    def _tokens(self) -> list[dict[str, object]]:
        now = utc_now()
        return [{"name": name, "role": role, "datasets": json.loads(datasets), "created_at": created_at,
                 "created_by": created_by, "expires_at": expires_at, "revoked_at": revoked_at,
                 "active": revoked_at is None and (expires_at is None or expires_at > now)}
                for name, role, datasets, created_at, created_by, expires_at, revoked_at in self.conn.execute(
                    "SELECT name, role, datasets, created_at, created_by, expires_at, revoked_at FROM api_token "
                    "ORDER BY name").fetchall()]

    # --- the lineage outbox (registry.lineage.outbox) ---------------------------------------------------------

    def lineage_status(self) -> dict[str, object] | None:
        """``registry lineage status``: as :func:`registry.lineage.outbox.outbox_status`."""
        return self._answer(self._lineage_status)

    def _lineage_status(self) -> dict[str, object]:
        from registry.lineage.transport import describe_sink  # lazy: only lineage status names the sink

        counts = {status: int(n) for status, n in self.conn.execute(
            "SELECT status, count(*) FROM lineage_outbox GROUP BY status").fetchall()}
        (retrying,) = self.conn.execute(
            "SELECT count(*) FROM lineage_outbox WHERE status = 'pending' AND attempts > 0").fetchone()
        (oldest,) = self.conn.execute(
            "SELECT min(created_at) FROM lineage_outbox WHERE status != 'delivered'").fetchone()
        last_error = self.conn.execute(
            "SELECT last_error FROM lineage_outbox WHERE status != 'delivered' AND last_error IS NOT NULL "
            "ORDER BY last_attempt_at DESC LIMIT 1").fetchone()
        lineage = self.settings.lineage
        sink = ("disabled (OPENLINEAGE_DISABLED=true)" if lineage.openlineage.disabled
                else describe_sink(self.home, lineage))
        return {"pending": counts.get("pending", 0), "retrying": int(retrying), "failed": counts.get("failed", 0),
                "delivered": counts.get("delivered", 0), "oldest_pending": oldest,
                "last_error": last_error[0] if last_error else None, "sink": sink, "delivery": lineage.delivery}

    # --- the object store (registry.store_migration) -----------------------------------------------------------

    def store_info(self) -> dict[str, object] | None:
        """``registry storage info``: as :func:`registry.store_migration.store_info` (it reads no catalog table,
        but answers only where the normal path would open the home: an up-to-date catalog)."""
        from registry.storage.info import describe_store  # lazy: only storage info

        return describe_store(self.store, self.settings.storage.url, self.home).to_dict()
