"""``RemoteService``: :class:`registry.service.RegistryService` over HTTP, through ``registry_client.Client``.

The client (``clients/python``, which never imports ``registry``) speaks the API and returns its typed
wire models; this adapter turns each answer back into the result type the local
:class:`~registry.registry.Registry` returns (rebuilt by field name, so ``to_dict()`` gives the server's
JSON unchanged), translates the client's errors into the :mod:`registry.errors` class of the same name
(so every edge maps them to the same exit codes and statuses), and does on this machine what concerns
this machine's files: reading a resolutions or checkpoint file, writing a lockfile or an export,
checking pulled rows against their pin. An unreachable server is a :class:`~registry.errors.StorageError`
naming the URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

import registry_client
from pydantic import TypeAdapter
from registry_client.client import DEFAULT_TIMEOUT

from registry import errors
from registry.audit.log import AuditEvent
from registry.audit.verify import AuditVerifyReport, Checkpoint, read_checkpoint
from registry.branching.branches import BranchInfo
from registry.branching.merge import MergeResult
from registry.datasets import DatasetInfo
from registry.errors import InvalidInput, NotFound, RegistryError, UnresolvedConflicts, VerifyFailed
from registry.lineage.emit import LineageRun
from registry.lineage.graph import Direction, Edge, LineageGraph, Node
from registry.lineage.intake import IngestResult, parse_events
from registry.provenance.label_diff import LabelDiff
from registry.provenance.sample_history import HistoryEntry
from registry.provenance.service import ImportResult
from registry.quality.content import content_hash
from registry.quality.evaluate import GateResult
from registry.quality.gate import GateStatus
from registry.quality.policy_versions import PolicyInfo
from registry.quality.waivers import Waiver
from registry.refs import Ref
from registry.snapshots.commit import CommitResult, Mode
from registry.snapshots.diff import DiffResult
from registry.snapshots.history import SchemaVersionInfo, SnapshotInfo
from registry.snapshots.plan import ScanPlan
from registry.snapshots.tables import EXPORT_FORMATS, read_table_file, write_table_atomically, write_table_to
from registry.snapshots.verify import VerifyReport
from registry.training.lockfile import LockEntry, read_lockfile, upsert_entry, write_lockfile
from registry.training.pins import PullResult

if TYPE_CHECKING:
    import pyarrow as pa

    from registry.config import RemoteSettings
    from registry.sync.hooks import WebhookInfo
    from registry.sync.requeue import RequeueResult
    from registry.sync.service import SyncResult

__all__ = ["LOCAL_ONLY", "RemoteServerError", "RemoteService", "to_hint", "to_local", "token_refusal"]

URL_ENV = "REGISTRY_URL"
TOKEN_ENV = "REGISTRY_TOKEN"
TIMEOUT_ENV = "REGISTRY_TIMEOUT"
LOCAL_ONLY = ("init", "db upgrade", "gc", "compact", "serve", "token", "audit seal", "lineage flush",
              "lineage status", "lineage namespace", "sync", "requeue", "storage migrate", "export --format")
"""Commands with no endpoint: they change the home itself, so they run only where it lives."""
_ALL_ROWS = 2**31 - 1
"""``rows`` for a label diff that lists every change (the local ``rows=None``)."""
T = TypeVar("T")


class RemoteServerError(Exception):
    """The server failed unexpectedly (5xx); the CLI reports it as an internal error (exit 4)."""


def _as_given(exc: RegistryError, paths: Sequence[str | os.PathLike[str]]) -> RegistryError:
    """``exc`` naming each sent file as the user gave it (the server saw only its base name)."""
    message = exc.message
    for path in paths:
        given = str(Path(path)).replace("\\", "\\\\")
        message = re.sub(rf"(?<![\w/.-]){re.escape(Path(path).name)}(?=:)", given, message, count=1)
    return type(exc)(message, hint=exc.hint)


def to_hint(hint: registry_client.errors.Hint | None) -> errors.Hint | None:
    """The server's hint as the registry's own, so each edge words it as for a local error."""
    return errors.Hint(cast(errors.HintKind, hint.kind), hint.name, hint.value) if hint is not None else None


def to_local(exc: registry_client.RegistryError) -> Exception:
    """The :mod:`registry.errors` exception of the same class (its nearest ancestor the registry has)."""
    if isinstance(exc, registry_client.ServerError):
        return RemoteServerError(exc.message)
    hint = to_hint(exc.hint)
    for cls in type(exc).__mro__:
        local = getattr(errors, cls.__name__, None)
        if isinstance(local, type) and issubclass(local, RegistryError):
            return local(exc.message, hint=hint)
    return RegistryError(exc.message, hint=hint)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except registry_client.RegistryError as exc:
        raise to_local(exc) from exc


def token_refusal(message: str, url: str, token_set: bool) -> errors.Unauthenticated:
    """A refusal (401) that says which server refused and what to do about ``REGISTRY_TOKEN``."""
    if token_set:
        return errors.Unauthenticated(f"{url} did not accept {TOKEN_ENV}: {message}; it may be mistyped, revoked "
                                      "or expired (the registry host lists the tokens)",
                                      hint=errors.Hint("command", "token list"))
    return errors.Unauthenticated(f"{url} needs an API token: set {TOKEN_ENV} (the registry host creates one); "
                                  f"{message}", hint=errors.Hint("command", "token create", "--name NAME --role ROLE"))


def _plain(value: Any) -> Any:
    """A client answer as plain JSON values (a wire model dumped as the server sent it)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_unset=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[T]) -> TypeAdapter[T]:
    """The validator of ``cls``, built once per process (building one costs more than a validation)."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def rebuild(cls: type[T], value: Any) -> T:
    """The local result type ``cls`` from the server's answer (its ``to_dict()`` JSON, keys by field name)."""
    return _adapter(cls).validate_python(_plain(value))


def _table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> pa.Table:
    """JSON rows as a ``pyarrow.Table`` (columns in the server's order; an empty answer keeps its columns)."""
    import pyarrow as pa  # lazy: JSON-only commands start without pyarrow

    names = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    return pa.table({name: pa.array([row.get(name) for row in rows]) for name in names}) if names else pa.table({})


class RemoteService:
    """The registry at ``REGISTRY_URL``, acting with ``REGISTRY_TOKEN`` (the audit log names the token).

    Implements :class:`registry.service.RegistryService`; host-only work (init, gc, compaction, tokens,
    sync) is refused by the CLI before it gets here (:data:`LOCAL_ONLY`). The labeling loop's methods
    (``sync_label_studio``, ``register_label_studio_webhook``, ``requeue``) refuse with ``InvalidInput``
    (see :meth:`_labeling_host_only`).
    """

    def __init__(self, client: registry_client.Client, token_given: bool = False) -> None:
        self.client = client
        self.token_given = token_given

    @classmethod
    def from_settings(cls, settings: RemoteSettings, author: str | None = None) -> RemoteService:
        """The server ``REGISTRY_URL`` names (``settings.remote``), acting with ``REGISTRY_TOKEN``.

        Raises:
            InvalidInput: ``--author`` was given (the server records the token's name instead), or
                ``REGISTRY_TIMEOUT`` is not a number.
        """
        if author is not None:
            raise InvalidInput(f"an author does not apply with {URL_ENV}: the server records the token's name",
                               hint=errors.Hint("option", "author"))
        try:
            timeout = float(settings.timeout or DEFAULT_TIMEOUT)
        except ValueError:
            raise InvalidInput(f"{TIMEOUT_ENV} must be a number of seconds, not {settings.timeout!r}") from None
        return cls(registry_client.Client(settings.url or "", settings.token, timeout=timeout), bool(settings.token))

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method`` of the client, with refs sent as their ``NAME@REF`` text and errors made local."""
        args = tuple(str(a) if isinstance(a, Ref) else a for a in args)
        kwargs = {k: str(v) if isinstance(v, Ref) else v for k, v in kwargs.items()}
        try:
            with _translated():
                return _plain(method(*args, **kwargs))
        except errors.Unauthenticated as exc:
            raise token_refusal(str(exc), self.client.url, self.token_given) from exc

    def _as(self, cls: type[T], method: Callable[..., Any], *args: Any, **kwargs: Any) -> T:
        return rebuild(cls, self._call(method, *args, **kwargs))

    def _each(self, cls: type[T], method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[T]:
        answer = self._call(method, *args, **kwargs)
        items = answer["data"] if isinstance(answer, dict) and "data" in answer else answer
        return [rebuild(cls, item) for item in items]

    def close(self) -> None:
        self.client.close()

    # --- datasets, commits, snapshots ------------------------------------------------------------------

    def create_dataset(self, name: str, key: str | Sequence[str], description: str = "",
                       owner: str | None = None) -> DatasetInfo:
        return self._as(DatasetInfo, self.client.create_dataset, name, key, description, owner)

    def datasets(self) -> list[DatasetInfo]:
        return self._each(DatasetInfo, self.client.datasets)

    def commit(self, name: Ref | str, table_or_path: pa.Table | str | os.PathLike[str] | None, *, message: str = "",
               author: str | None = None, mode: Mode = "replace",
               delete_keys: pa.Table | str | os.PathLike[str] | None = None, expect_parent: str | None = None,
               allow_breaking: bool = False, progress: Callable[[str], None] | None = None,
               lineage: LineageRun | None = None) -> CommitResult:
        """Upload ``table_or_path`` (a file goes as multipart, a table as an Arrow stream)."""
        if table_or_path is None:
            raise InvalidInput("nothing to commit: give a file of rows")
        if isinstance(table_or_path, (str, os.PathLike)) and not Path(table_or_path).is_file():
            raise InvalidInput(f"{table_or_path}: no such file")
        unsupported = [name for name, value in (("author", author), ("delete_keys", delete_keys)) if value]
        if lineage is not None:
            unsupported += [name for name, value in (("job", lineage.job), ("run_id", lineage.run_id),
                                                     ("parent_run", lineage.parent_run),
                                                     ("source", lineage.sources)) if value]
        if unsupported:
            raise InvalidInput(f"{', '.join(unsupported)} cannot be sent to a server ({URL_ENV} is set)",
                               hint=errors.Hint("option", unsupported[0]))
        return self._as(CommitResult, self.client.commit, name, table_or_path, message=message, mode=mode,
                        expect_parent=expect_parent, allow_breaking=allow_breaking)

    def log(self, name: Ref | str, limit: int | None = None) -> list[SnapshotInfo]:
        return self._each(SnapshotInfo, self.client.log, name, limit)

    def show(self, ref: Ref | str) -> SnapshotInfo:
        return self._as(SnapshotInfo, self.client.show, ref)

    def tag(self, ref: Ref | str, tag: str) -> SnapshotInfo:
        return self._as(SnapshotInfo, self.client.tag, ref, tag)

    def schema(self, name: str) -> list[SchemaVersionInfo]:
        return self._each(SchemaVersionInfo, self.client.schema, name)

    def diff(self, a: Ref | str, b: Ref | str, rows: int = 10) -> DiffResult:
        return self._as(DiffResult, self.client.diff, a, b, rows)

    def read(self, ref: Ref | str, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows of ``ref`` as a ``pyarrow.Table``, streamed as Arrow."""
        table: pa.Table = self._call(self.client.read, ref, columns)
        return table

    def export(self, ref: Ref | str, out: str | os.PathLike[str]) -> int:
        """Read ``ref`` over the network and write it as the local export does."""
        path = Path(out)
        if path.suffix.lower() not in EXPORT_FORMATS:
            raise InvalidInput(f"{path}: cannot export to {path.suffix or '(no suffix)'}; use .parquet, .csv or "
                               ".jsonl")
        table = self.read(ref)
        write_table_atomically(table, path)
        return int(table.num_rows)

    def write_rows(self, ref: Ref | str, fmt: str, sink: BinaryIO) -> int:
        """Read ``ref`` over the network and write it to ``sink`` as the local service does."""
        if fmt not in set(EXPORT_FORMATS.values()):
            raise InvalidInput(f"cannot export as {fmt!r}; use parquet, csv or jsonl")
        table = self.read(ref)
        write_table_to(table, fmt, sink)
        return int(table.num_rows)

    def plan(self, ref_or_lock_entry: Ref | str | LockEntry, shards: int = 1,
             columns: Sequence[str] | None = None) -> ScanPlan:
        """The server's scan plan; for a lock entry, checked to name the pinned snapshot."""
        target = str(ref_or_lock_entry) if isinstance(ref_or_lock_entry, (Ref, str)) else ref_or_lock_entry.target
        plan = ScanPlan.from_dict(self._call(self.client.plan, target, shards, columns))
        if not isinstance(ref_or_lock_entry, (Ref, str)) and plan.snapshot_id != ref_or_lock_entry.snapshot_id:
            raise VerifyFailed(f"lock entry for {ref_or_lock_entry.dataset} names {ref_or_lock_entry.snapshot_id}, "
                               f"which resolves to {plan.snapshot_id}")
        return plan

    def verify(self, name: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Verify on the server (``progress`` is not reported over HTTP)."""
        return self._as(VerifyReport, self.client.verify, name)

    # --- branches and merges ---------------------------------------------------------------------------

    def branch(self, name_branch: Ref | str, from_ref: str | None = None) -> BranchInfo:
        target = Ref.parse_branch(name_branch) if isinstance(name_branch, str) else name_branch
        name, branch = target.dataset, target.ref_name
        return self._as(BranchInfo, self.client.create_branch, name, branch, from_ref)

    def branches(self, name: str) -> list[BranchInfo]:
        return self._each(BranchInfo, self.client.branches, name)

    def delete_branch(self, name_branch: Ref | str, force: bool = False) -> BranchInfo:
        target = Ref.parse_branch(name_branch) if isinstance(name_branch, str) else name_branch
        name, branch = target.dataset, target.ref_name
        return self._as(BranchInfo, self.client.delete_branch, name, branch, force)

    def protect(self, name_branch: Ref | str, protected: bool = True) -> BranchInfo:
        target = Ref.parse_branch(name_branch) if isinstance(name_branch, str) else name_branch
        name, branch = target.dataset, target.ref_name
        return self._as(BranchInfo, self.client.protect_branch, name, branch, protected)

    def merge(self, source: Ref | str, into: str = "main", *, strategy: str = "fail", prefer: str | None = None,
              resolutions: str | os.PathLike[str] | None = None, dry_run: bool = False, message: str = "",
              expect_target: str | None = None, retry: int = 0) -> MergeResult:
        """Merge on the server; a resolutions file is read here and sent as JSON."""
        parsed = Ref.coerce(source)
        name, ref = parsed.dataset, parsed.ref_name
        rows: list[dict[str, Any]] = []
        if resolutions is not None:
            keys = next(d.key_columns for d in self.datasets() if d.name == name)
            rows = [{"key": {k: r[k] for k in keys}, "column": r["column"], "value": r["value"]}
                    for r in read_table_file(Path(resolutions)).to_pylist()]
        try:
            answer = self.client.merge(name, ref, into, strategy=strategy, prefer=prefer, resolutions=rows,
                                       dry_run=dry_run, message=message, expect_target=expect_target, retry=retry)
        except registry_client.UnresolvedConflicts as exc:
            raise UnresolvedConflicts(exc.message, exc.conflicts, hint=to_hint(exc.hint)) from exc
        except registry_client.RegistryError as exc:
            raise to_local(exc) from exc
        return rebuild(MergeResult, answer)

    # --- annotations and provenance --------------------------------------------------------------------

    def import_annotations(self, fmt: str, name: str, path: str | os.PathLike[str], *, key: str | None = None,
                           guideline_version: str | None = None, config: str | os.PathLike[str] | None = None,
                           resolve: str = "gt-majority", mapping: str | None = None, message: str = "",
                           author: str | None = None, progress: Callable[[str], None] | None = None,
                           users: str | os.PathLike[str] | None = None) -> ImportResult:
        """Send the export (a file or a zip) to the server; the answer holds the commit's fields flat."""
        if author:
            raise InvalidInput(f"an author cannot be sent to a server ({URL_ENV} is set)",
                               hint=errors.Hint("option", "author"))
        if Path(path).is_dir():
            raise InvalidInput(f"{path} is a folder: zip it to send it to a server ({URL_ENV} is set)")
        try:
            answer = self._call(self.client.import_annotations, fmt, name, path, key=key,
                                guideline_version=guideline_version, config=config, resolve=resolve,
                                mapping=mapping, message=message, users=users)
        except RegistryError as exc:
            raise _as_given(exc, [p for p in (path, config, users) if p is not None]) from None
        commit = rebuild(CommitResult, answer)
        rest = {f.name: answer[f.name] for f in fields(ImportResult) if f.name != "commit" and f.name in answer}
        return ImportResult(commit=commit, **rest)

    def history(self, name: str, key: str) -> list[HistoryEntry]:
        return self._each(HistoryEntry, self.client.history, name, key)

    def blame(self, ref: Ref | str, column: str = "label", limit: int | None = None) -> pa.Table:
        return _table(self._call(self.client.blame, ref, column, limit)["data"])

    def label_diff(self, a: Ref | str, b: Ref | str, column: str = "label", rows: int | None = None) -> LabelDiff:
        return self._as(LabelDiff, self.client.diff, a, b, _ALL_ROWS if rows is None else rows, True, column)

    # --- audit, query, lineage -------------------------------------------------------------------------

    def audit_log(self, *, dataset: str | None = None, actor: str | None = None, action: str | None = None,
                  since: str | None = None, until: str | None = None, limit: int | None = None) -> list[AuditEvent]:
        return self._each(AuditEvent, self.client.audit_log, dataset=dataset, actor=actor, action=action,
                          since=since, until=until, limit=limit)

    def verify_audit(self, checkpoint: str | os.PathLike[str] | None = None) -> AuditVerifyReport:
        """Verify on the server, against a checkpoint file read here."""
        saved = read_checkpoint(Path(checkpoint)).to_dict() if checkpoint is not None else None
        return self._as(AuditVerifyReport, self.client.verify_audit, saved)

    def audit_checkpoint(self, out: str | os.PathLike[str] | None = None) -> Checkpoint:
        """The server's checkpoint, written to ``out`` here as ``registry audit checkpoint`` writes it."""
        checkpoint = self._as(Checkpoint, self.client.audit_checkpoint)
        if out is not None:
            try:
                Path(out).write_text(json.dumps(checkpoint.to_dict(), indent=2) + "\n")
            except OSError as exc:
                raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
        return checkpoint

    def query(self, sql: str, dataset: str | None = None) -> pa.Table:
        answer = self._call(self.client.query_rows, sql, dataset)
        return _table(answer["rows"], answer["columns"])

    def lineage_walk(self, ref: Ref | str, direction: Direction = "both", depth: int = 3) -> LineageGraph:
        """The server's lineage graph as the local :class:`~registry.lineage.graph.LineageGraph`."""
        data = self._call(self.client.lineage_graph, ref, direction, depth)
        nodes = {n["key"]: (Node(n["kind"], n["name"], n["version"], n["namespace"]), int(n["distance"]))
                 for n in data["nodes"]}
        edges = [Edge(e["kind"], nodes[e["src"]][0], nodes[e["dst"]][0], e["run_id"] or "", e["created_at"])
                 for e in data["edges"]]
        return LineageGraph(nodes[data["root"]][0], data["direction"], int(data["depth"]), nodes, edges)

    def ingest_lineage(self, text: str) -> list[IngestResult]:
        """Send each OpenLineage RunEvent of a JSON or JSON-lines document, in order."""
        return [self._as(IngestResult, self.client.ingest_lineage, event) for event in parse_events(text)]

    # --- quality: policies, gates, pins ----------------------------------------------------------------

    def set_policy(self, name: str, document: str, source: str = "policy") -> PolicyInfo:
        return self._as(PolicyInfo, self.client.set_policy, name, document, source)

    def policy(self, name: str, version: int | None = None) -> PolicyInfo:
        return self._as(PolicyInfo, self.client.policy, name, version)

    def qa_run(self, ref: Ref | str) -> GateResult:
        return self._as(GateResult, self.client.qa_run, ref)

    def gate(self, ref: Ref | str) -> GateStatus:
        return self._as(GateStatus, self.client.gate_check, ref)

    def gate_check(self, ref: Ref | str, evaluate: bool = False) -> GateStatus:
        """``registry gate check``: with ``evaluate``, run QA first when there is no current result."""
        status = self.gate(ref)
        if evaluate and status.state in ("stale", "never_evaluated"):
            exact = Ref(status.dataset, status.snapshot_id, "id")
            self.qa_run(exact)
            status = self.gate(exact)
        return status

    def waive(self, ref: Ref | str, reason: str, checks: Sequence[str] | None = None,
              expires: str | None = None) -> Waiver:
        return self._as(Waiver, self.client.waive, ref, reason, checks, expires)

    def pin(self, ref: Ref | str, lockfile: str | os.PathLike[str] = "registry.lock",
            job: str | None = None) -> LockEntry:
        """Pin on the server; the lock entry is written to ``lockfile`` here, as the local pin writes it."""
        entries = read_lockfile(lockfile)
        entry = LockEntry.from_dict(self._call(self.client.pin, ref, job))
        write_lockfile(lockfile, upsert_entry(entries, entry))
        return entry

    def load(self, ref_or_lock_entry: Ref | str | LockEntry, *, allow_unverified: bool = False,
             job: str | None = None) -> pa.Table:
        """The gated rows of a snapshot for training; a lock entry's rows are checked against its pin here."""
        if isinstance(ref_or_lock_entry, (Ref, str)):
            table: pa.Table = self._call(self.client.load, ref_or_lock_entry, job, allow_unverified)
            return table
        entry = ref_or_lock_entry
        table = self._call(self.client.load, entry.target, job or entry.job, allow_unverified)
        self._check_pinned(entry, table, self._key_columns(entry.dataset))
        return table

    def _key_columns(self, name: str) -> list[str]:
        return next((d.key_columns for d in self.datasets() if d.name == name), [])

    @staticmethod
    def _check_pinned(entry: LockEntry, table: pa.Table, key_columns: list[str]) -> None:
        """Raise ``VerifyFailed`` unless ``table`` hashes to the content hash ``entry`` pinned."""
        digest = content_hash(table, key_columns)
        if digest != entry.content_hash:
            raise VerifyFailed(f"{entry.dataset}@{entry.snapshot_id[:12]}: the rows read hash to {digest}, but "
                               f"the pin recorded {entry.content_hash}; the stored data changed since it was "
                               "pinned")

    def pull(self, lockfile: str | os.PathLike[str] = "registry.lock", outdir: str | os.PathLike[str] = ".",
             job: str | None = None, allow_unverified: bool = False) -> list[PullResult]:
        """Download each pinned snapshot's training read as Parquet and check its content hash here."""
        entries = [e for e in read_lockfile(lockfile) if job is None or e.job == job]
        if not entries:
            raise NotFound(f"{lockfile} has no pins{f' for job {job!r}' if job else ''}; pin a snapshot first",
                           hint=errors.Hint("command", "pin", "NAME@REF"))  # as the local pull words it
        keys: dict[str, list[str]] = {}
        results = []
        for entry in entries:
            out = Path(outdir) / f"{entry.dataset}@{entry.snapshot_id[:12]}.parquet"
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInput(f"cannot create {out.parent}: {exc.strerror or exc}") from exc
            if entry.dataset not in keys:
                keys.update({d.name: d.key_columns for d in self.datasets()})
            rows = self._fetch_verified(entry, allow_unverified, out, keys.get(entry.dataset, []))
            results.append(PullResult(entry.dataset, entry.job, entry.snapshot_id, entry.content_hash, rows, str(out)))
        return results

    def _fetch_verified(self, entry: LockEntry, allow_unverified: bool, out: Path, key_columns: list[str]) -> int:
        """Download the pinned snapshot's training read to ``out`` (by a partial file); its row count.

        Raises:
            VerifyFailed: the rows hash to something else than the pin recorded (nothing is written).
        """
        import pyarrow.parquet as pq  # lazy: only pulls need Parquet

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
            self._check_pinned(entry, table, key_columns)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return int(table.num_rows)

    # --- the labeling loop: refused, it runs on the registry host -------------------------------------------
    @staticmethod
    def _labeling_host_only(what: str) -> InvalidInput:
        """The refusal of a labeling-loop call: there is no endpoint for it, by design. It sends a Label
        Studio token to the Label Studio URL the caller names; a server sending its own token wherever a
        client says would hand that token to any host, so the call runs only where the home lives."""
        return InvalidInput(f"the Label Studio {what} runs only on the registry host, with its "
                            "LABEL_STUDIO_API_KEY (a registry server never sends a Label Studio token to a URL a "
                            f"client names); unset {URL_ENV} and run it there")

    def sync_label_studio(self, name: str, *, url: str, project: int, key: str | None = None,
                          guideline_version: str | None = None, author: str | None = None, evaluate: bool = False,
                          progress: Callable[[str], None] | None = None) -> SyncResult:
        """Refused: see :meth:`_labeling_host_only`."""
        raise self._labeling_host_only("sync")

    def register_label_studio_webhook(self, name: str, *, url: str, project: int, hook_url: str) -> WebhookInfo:
        """Refused: see :meth:`_labeling_host_only`."""
        raise self._labeling_host_only("webhook registration")

    def requeue(self, ref: Ref | str, *, url: str, project: int, where: str, prediction_column: str | None = None,
                score_column: str | None = None, model_version: str | None = None, limit: int | None = None,
                dry_run: bool = False) -> RequeueResult:
        """Refused: see :meth:`_labeling_host_only`."""
        raise self._labeling_host_only("requeue")
