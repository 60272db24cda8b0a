"""The CLI against a server: ``RemoteRegistry`` answers the CLI's calls over HTTP (``REGISTRY_URL``).

It has the method names and signatures the commands call on :class:`registry.registry.Registry`
and returns :class:`Remote` values: the server's JSON with attribute access and a ``to_dict()``
that gives that JSON back unchanged, so every command prints exactly what it prints locally. The
client's errors become the :mod:`registry.errors` class of the same name, so ``main()`` maps them to
the same exit codes; an unreachable server is a :class:`~registry.errors.StorageError` (exit 2)
naming the URL. Commands without an endpoint (init, db upgrade, gc, compact, serve, token, audit
seal, lineage flush/status) are refused with exit 2: they run only on the registry host.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import registry_client
from registry_client.client import DEFAULT_TIMEOUT

from registry import errors
from registry.errors import InvalidInput, NotFound, RegistryError, VerifyFailed

if TYPE_CHECKING:
    from registry.lineage.emit import LineageRun
    from registry.lineage.graph import LineageGraph
    from registry.training.lockfile import LockEntry

__all__ = ["LOCAL_ONLY", "Remote", "RemoteImport", "RemoteRegistry", "RemoteRows", "RemoteServerError", "local_only",
           "to_local", "token_hint"]

URL_ENV = "REGISTRY_URL"
TOKEN_ENV = "REGISTRY_TOKEN"
TIMEOUT_ENV = "REGISTRY_TIMEOUT"
LOCAL_ONLY = ("init", "db upgrade", "gc", "compact", "serve", "token", "audit seal", "lineage flush",
              "lineage status", "sync", "requeue")
"""Commands with no endpoint: they change the home itself, so they run only where it lives."""
_ALL_ROWS = 2**31 - 1
"""``rows`` for a label diff that lists every change (the local ``rows=None``)."""


class RemoteServerError(Exception):
    """The server failed unexpectedly (5xx); the CLI reports it as an internal error (exit 4)."""


class Remote(dict[str, Any]):
    """A JSON object from the server: ``value.name`` reads a key; ``to_dict()`` is the JSON unchanged."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return Remote(value) if isinstance(value, dict) else value

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


class RemoteImport(Remote):
    """An import's answer: the server sends the commit's fields flat (as ``ImportResult.to_dict()``), and
    ``.commit`` reads them as the local result's commit."""

    @property
    def commit(self) -> Remote:
        return Remote(self)


class RemoteRows:
    """Rows the server sent as JSON objects, read the way the CLI reads a ``pyarrow.Table``."""

    def __init__(self, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        self._rows = rows
        self.column_names = columns if columns is not None else (list(rows[0]) if rows else [])

    def to_pylist(self) -> list[dict[str, Any]]:
        return self._rows


def _as_given(exc: RegistryError, paths: Sequence[str | os.PathLike[str]]) -> RegistryError:
    """``exc`` naming each sent file as the user gave it (the server saw only its base name)."""
    message = exc.message
    for path in paths:
        given = str(Path(path)).replace("\\", "\\\\")
        message = re.sub(rf"(?<![\w/.-]){re.escape(Path(path).name)}(?=:)", given, message, count=1)
    return type(exc)(message)


def to_local(exc: registry_client.RegistryError) -> Exception:
    """The :mod:`registry.errors` exception of the same class (its nearest ancestor the registry has)."""
    if isinstance(exc, registry_client.ServerError):
        return RemoteServerError(exc.message)
    for cls in type(exc).__mro__:
        local = getattr(errors, cls.__name__, None)
        if isinstance(local, type) and issubclass(local, RegistryError):
            return local(exc.message)
    return RegistryError(exc.message)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except registry_client.RegistryError as exc:
        raise to_local(exc) from exc


def local_only(command: str | None = None) -> NoReturn:
    """Refuse a command that has no endpoint (exit 2)."""
    if command is None:
        current = click.get_current_context(silent=True)
        command = current.command_path.removeprefix("registry ") if current is not None else "this command"
    raise InvalidInput(f"`registry {command}` runs only on the registry host; unset {URL_ENV} and run it there")


def token_hint(message: str, url: str, token_set: bool) -> str:
    """A refusal (401) that says which server refused and what to do about ``REGISTRY_TOKEN``."""
    if token_set:
        return (f"{url} did not accept {TOKEN_ENV}: {message}; it may be mistyped, revoked or expired "
                "(`registry token list` on the registry host)")
    return (f"{url} needs an API token: set {TOKEN_ENV} (`registry token create --name NAME --role ROLE` on the "
            f"registry host); {message}")


from registry.cli.remote_branches import RemoteBranches  # noqa: E402  (it imports Remote lazily from here)


def _rows(values: list[dict[str, Any]]) -> list[Remote]:
    return [Remote(v) for v in values]


class RemoteRegistry(RemoteBranches):
    """The registry at ``REGISTRY_URL``, acting with ``REGISTRY_TOKEN`` (the audit log names the token)."""

    def __init__(self, client: registry_client.Client) -> None:
        self.client = client

    @classmethod
    def from_env(cls, author: str | None = None) -> RemoteRegistry:
        """The server ``REGISTRY_URL`` names.

        Raises:
            InvalidInput: ``--author`` was given (the server records the token's name instead), or
                ``REGISTRY_TIMEOUT`` is not a number.
        """
        if author is not None:
            raise InvalidInput(f"--author does not apply with {URL_ENV}: the server records the token's name")
        try:
            timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
        except ValueError:
            raise InvalidInput(f"{TIMEOUT_ENV} must be a number of seconds, not {os.environ[TIMEOUT_ENV]!r}") from None
        return cls(registry_client.Client(os.environ[URL_ENV], os.environ.get(TOKEN_ENV), timeout=timeout))

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            with _translated():
                return method(*args, **kwargs)
        except errors.Unauthenticated as exc:
            raise errors.Unauthenticated(token_hint(str(exc), self.client.url, bool(os.environ.get(TOKEN_ENV)))
                                         ) from exc

    # --- what only the registry host can do ------------------------------------------------------------

    @property
    def ctx(self) -> NoReturn:
        local_only()

    @property
    def home(self) -> NoReturn:
        local_only()

    def gc(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        local_only("gc")

    def compact(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        local_only("compact")

    def seal_audit(self) -> NoReturn:
        local_only("audit seal")

    def close(self) -> None:
        self.client.close()

    # --- datasets, commits, snapshots ------------------------------------------------------------------

    def create_dataset(self, name: str, key: str | Sequence[str], description: str = "",
                       owner: str | None = None) -> Remote:
        return Remote(self._call(self.client.create_dataset, name, key, description, owner))

    def datasets(self) -> list[Remote]:
        return _rows(self._call(self.client.datasets))

    def commit(self, name: str, table_or_path: Any, *, message: str = "", author: str | None = None,
               mode: str = "replace", delete_keys: Any = None, expect_parent: str | None = None,
               allow_breaking: bool = False, progress: Callable[[str], None] | None = None,
               lineage: LineageRun | None = None) -> Remote:
        """Upload ``table_or_path`` (a file goes as multipart, a table as an Arrow stream)."""
        if table_or_path is None:
            raise InvalidInput("nothing to commit: give a file of rows")
        if isinstance(table_or_path, (str, os.PathLike)) and not Path(table_or_path).is_file():
            raise InvalidInput(f"{table_or_path}: no such file")
        unsupported = [flag for flag, value in (("--author", author), ("--delete-keys", delete_keys)) if value]
        if lineage is not None:
            unsupported += [flag for flag, value in (("--job", lineage.job), ("--run-id", lineage.run_id),
                                                     ("--parent-run", lineage.parent_run),
                                                     ("--source", lineage.sources)) if value]
        if unsupported:
            raise InvalidInput(f"{', '.join(unsupported)} cannot be sent to a server ({URL_ENV} is set)")
        return Remote(self._call(self.client.commit, name, table_or_path, message=message, mode=mode,
                                 expect_parent=expect_parent, allow_breaking=allow_breaking))

    def log(self, name: str, limit: int | None = None) -> list[Remote]:
        return _rows(self._call(self.client.log, name, limit))

    def show(self, ref: str) -> Remote:
        return Remote(self._call(self.client.show, ref))

    def tag(self, ref: str, tag: str) -> Remote:
        return Remote(self._call(self.client.tag, ref, tag))

    def diff(self, a: str, b: str, rows: int = 10) -> Remote:
        return Remote(self._call(self.client.diff, a, b, rows))

    def label_diff(self, a: str, b: str, column: str = "label", rows: int | None = None) -> Remote:
        return Remote(self._call(self.client.diff, a, b, _ALL_ROWS if rows is None else rows, True, column))

    def schema(self, name: str) -> list[Remote]:
        return _rows(self._call(self.client.schema, name))

    def read(self, ref: str) -> Any:
        """The rows of ``ref`` as a ``pyarrow.Table`` (for ``registry export NAME@REF -``)."""
        return self._call(self.client.read, ref)

    def export(self, ref: str, out: str | os.PathLike[str]) -> int:
        """Read ``ref`` over the network and write it as the local export does."""
        from registry.snapshots.tables import write_table_atomically  # lazy: CLI start-up

        path = Path(out)
        if path.suffix.lower() not in (".parquet", ".pq", ".csv", ".jsonl", ".ndjson"):
            raise InvalidInput(f"{path}: cannot export to {path.suffix or '(no suffix)'}; use .parquet, .csv or "
                               ".jsonl")
        table = self._call(self.client.read, ref)
        write_table_atomically(table, path)
        return int(table.num_rows)

    def verify(self, name: str | None = None) -> Remote:
        return Remote(self._call(self.client.verify, name))

    # --- annotations and provenance --------------------------------------------------------------------

    def import_annotations(self, fmt: str, name: str, path: str | os.PathLike[str], *, key: str | None = None,
                           guideline_version: str | None = None, config: str | os.PathLike[str] | None = None,
                           resolve: str = "gt-majority", mapping: str | None = None, message: str = "",
                           author: str | None = None, progress: Callable[[str], None] | None = None,
                           users: str | os.PathLike[str] | None = None) -> RemoteImport:
        if author:
            raise InvalidInput(f"--author cannot be sent to a server ({URL_ENV} is set)")
        if Path(path).is_dir():
            raise InvalidInput(f"{path} is a folder: zip it to send it to a server ({URL_ENV} is set)")
        try:
            return RemoteImport(self._call(self.client.import_annotations, fmt, name, path, key=key,
                                           guideline_version=guideline_version, config=config, resolve=resolve,
                                           mapping=mapping, message=message, users=users))
        except RegistryError as exc:
            raise _as_given(exc, [p for p in (path, config, users) if p is not None]) from None

    def history(self, name: str, key: str) -> list[Remote]:
        return _rows(self._call(self.client.history, name, key))

    def blame(self, ref: str, column: str = "label", limit: int | None = None) -> RemoteRows:
        return RemoteRows(self._call(self.client.blame, ref, column, limit))

    # --- audit, query, lineage -------------------------------------------------------------------------

    def audit_log(self, *, dataset: str | None = None, actor: str | None = None, action: str | None = None,
                  since: str | None = None, until: str | None = None, limit: int | None = None) -> list[Remote]:
        return _rows(self._call(self.client.audit_log, dataset=dataset, actor=actor, action=action, since=since,
                                until=until, limit=limit))

    def verify_audit(self, checkpoint: str | os.PathLike[str] | None = None) -> Remote:
        """Verify on the server, against a checkpoint file read here."""
        from registry.audit.verify import read_checkpoint  # lazy: CLI start-up

        saved = read_checkpoint(Path(checkpoint)).to_dict() if checkpoint is not None else None
        return Remote(self._call(self.client.verify_audit, saved))

    def audit_checkpoint(self, out: str | os.PathLike[str] | None = None) -> Remote:
        """The server's checkpoint, written to ``out`` here as ``registry audit checkpoint`` writes it."""
        checkpoint = Remote(self._call(self.client.audit_checkpoint))
        if out is not None:
            try:
                Path(out).write_text(json.dumps(checkpoint.to_dict(), indent=2) + "\n")
            except OSError as exc:
                raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
        return checkpoint

    def query(self, sql: str, dataset: str | None = None) -> RemoteRows:
        answer = self._call(self.client.query_rows, sql, dataset)
        return RemoteRows(answer["rows"], answer["columns"])

    def lineage_walk(self, ref: str, direction: str = "both", depth: int = 3) -> LineageGraph:
        """The server's lineage graph as the local :class:`~registry.lineage.graph.LineageGraph`."""
        from registry.lineage.graph import Edge, LineageGraph, Node  # lazy: CLI start-up

        data = self._call(self.client.lineage_graph, ref, direction, depth)
        nodes = {n["key"]: (Node(n["kind"], n["name"], n["version"], n["namespace"]), int(n["distance"]))
                 for n in data["nodes"]}
        edges = [Edge(e["kind"], nodes[e["src"]][0], nodes[e["dst"]][0], e["run_id"] or "", e["created_at"])
                 for e in data["edges"]]
        return LineageGraph(nodes[data["root"]][0], data["direction"], int(data["depth"]), nodes, edges)

    def ingest_lineage(self, text: str) -> list[Remote]:
        """Send each OpenLineage RunEvent of a JSON or JSON-lines document, in order."""
        from registry.lineage.intake import parse_events  # lazy: CLI start-up

        return [Remote(self._call(self.client.ingest_lineage, event)) for event in parse_events(text)]

    # --- quality: policies, gates, pins ----------------------------------------------------------------

    def set_policy(self, name: str, document: str, source: str = "policy") -> Remote:
        return Remote(self._call(self.client.set_policy, name, document, source))

    def policy(self, name: str, version: int | None = None) -> Remote:
        return Remote(self._call(self.client.policy, name, version))

    def qa_run(self, ref: str) -> Remote:
        return Remote(self._call(self.client.qa_run, ref))

    def gate(self, ref: str) -> Remote:
        return Remote(self._call(self.client.gate_check, ref))

    def gate_check(self, ref: str, evaluate: bool = False) -> Remote:
        """``registry gate check``: with ``evaluate``, run QA first when there is no current result."""
        status = self.gate(ref)
        if evaluate and status["state"] in ("stale", "never_evaluated"):
            exact = f"{status['dataset']}@{status['snapshot_id']}"
            self.qa_run(exact)
            status = self.gate(exact)
        return status

    def waive(self, ref: str, reason: str, checks: Sequence[str] | None = None, expires: str | None = None) -> Remote:
        return Remote(self._call(self.client.waive, ref, reason, checks, expires))

    def pin(self, ref: str, lockfile: str | os.PathLike[str] = "registry.lock", job: str | None = None) -> Remote:
        """Pin on the server; the lock entry is written to ``lockfile`` here, as the local pin writes it."""
        from registry.training.lockfile import (  # lazy: CLI start-up
            LockEntry,
            read_lockfile,
            upsert_entry,
            write_lockfile,
        )

        entries = read_lockfile(lockfile)
        entry = Remote(self._call(self.client.pin, ref, job))
        write_lockfile(lockfile, upsert_entry(entries, LockEntry.from_dict(entry.to_dict())))
        return entry

    def pull(self, lockfile: str | os.PathLike[str] = "registry.lock", outdir: str | os.PathLike[str] = ".",
             job: str | None = None, allow_unverified: bool = False) -> list[Remote]:
        """Download each pinned snapshot's training read as Parquet and check its content hash here."""
        from registry.training.lockfile import read_lockfile  # lazy: CLI start-up
        from registry.training.pins import PullResult  # lazy: CLI start-up

        entries = [e for e in read_lockfile(lockfile) if job is None or e.job == job]
        if not entries:
            raise NotFound(f"{lockfile} has no pins{f' for job {job!r}' if job else ''}; pin with `registry pin "
                           "NAME@REF`")
        keys: dict[str, list[str]] = {}
        results = []
        for entry in entries:
            out = Path(outdir) / f"{entry.dataset}@{entry.snapshot_id[:12]}.parquet"
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInput(f"cannot create {out.parent}: {exc.strerror or exc}") from exc
            if entry.dataset not in keys:
                keys.update({d["name"]: d["key_columns"] for d in self.datasets()})
            rows = self._fetch_verified(entry, allow_unverified, out, keys.get(entry.dataset, []))
            results.append(Remote(PullResult(entry.dataset, entry.job, entry.snapshot_id, entry.content_hash, rows,
                                             str(out)).to_dict()))
        return results

    def _fetch_verified(self, entry: LockEntry, allow_unverified: bool, out: Path, key_columns: list[str]) -> int:
        """Download the pinned snapshot's training read to ``out`` (by a partial file); its row count.

        Raises:
            VerifyFailed: the rows hash to something else than the pin recorded (nothing is written).
        """
        import pyarrow.parquet as pq  # lazy: CLI start-up

        from registry.quality.content import content_hash  # lazy: CLI start-up

        partial = out.with_name(f".{out.name}.partial.parquet")
        try:
            try:
                self.client.download(entry.target, partial, format="parquet", training=True, job=entry.job,
                                     allow_unverified=allow_unverified)
            except registry_client.RegistryError as exc:
                raise to_local(exc) from exc
            except OSError as exc:
                raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
            table = pq.read_table(partial)
            digest = content_hash(table, key_columns)
            if digest != entry.content_hash:
                raise VerifyFailed(f"{entry.dataset}@{entry.snapshot_id[:12]}: the rows read hash to {digest}, but "
                                   f"the pin recorded {entry.content_hash}; the stored data changed since it was "
                                   "pinned")
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return int(table.num_rows)
