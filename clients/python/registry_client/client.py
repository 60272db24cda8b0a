"""``Client``: the registry's HTTP API (``/api/v1``) as typed Python methods.

Every method returns what the server sent as its wire model (:mod:`registry_client.models`: fields
named as the JSON ``registry ... --json`` prints, ``.to_dict()`` gives that JSON back; a list
endpoint's answer is a ``<Noun>sPublic`` with ``data`` and ``count``), and rows as
``pyarrow.Table``. Every failure raises a :class:`~registry_client.errors.RegistryError` subclass
named as in the registry itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload
from urllib.parse import quote

import httpx

from registry_client.branches import BranchCalls
from registry_client.errors import ConnectionFailed, InvalidInput, RegistryError, error_for
from registry_client.models import (
    AuditCheckpointPublic,
    AuditEventsPublic,
    AuditVerifyPublic,
    BlamePublic,
    CommitPublic,
    DatasetPublic,
    DatasetsPublic,
    DiffPublic,
    GateResultPublic,
    GateResultsPublic,
    GateStatusPublic,
    HistoryEntriesPublic,
    ImportPublic,
    LabelDiffPublic,
    LineageGraphPublic,
    LineageIngestPublic,
    LockEntryPublic,
    PolicyPublic,
    QueryResultPublic,
    ResolvedRefPublic,
    SchemaVersionsPublic,
    SnapshotPublic,
    SnapshotsPublic,
    VerifyReportPublic,
    WaiverPublic,
    WhoamiPublic,
    WireModel,
)
from registry_client.training import TrainingCalls

if TYPE_CHECKING:  # pyarrow is imported when rows are sent or read: JSON-only calls start faster
    import pyarrow as pa

__all__ = ["ARROW_STREAM", "PARQUET", "Client"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
API = "/api/v1"
DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20

JSON = Any
"""A decoded JSON value: dicts, lists, strings, numbers, booleans and None."""
M = TypeVar("M", bound=WireModel)


def _segment(value: str) -> str:
    """``value`` as one path segment (``NAME@REF`` keeps its ``@`` and ``~``)."""
    return quote(value, safe="@~")


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ones left at None (booleans as ``true``/``false``)."""
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in values.items() if v is not None}


class Client(BranchCalls, TrainingCalls):
    """A connection to one registry server, acting with one bearer token.

    >>> with Client("http://127.0.0.1:8000", token) as reg:          # doctest: +SKIP
    ...     table = reg.read("street-signs@v1")

    ``timeout`` (seconds) bounds connecting and each wait for data, not a whole transfer.

    Raises (every method):
        ConnectionFailed: the server cannot be reached or the connection broke; names the URL.
        Unauthenticated: no token, or an unknown, expired or revoked one (401).
        PermissionDenied: the token's role may not do this (403).
        NotFound: no such dataset, ref or snapshot, or the token may not see it (404).
        ServerError: the server failed unexpectedly (5xx).
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + API, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # --- plumbing ---------------------------------------------------------------------------------------

    def _unreachable(self, exc: httpx.TransportError) -> ConnectionFailed:
        return ConnectionFailed(f"cannot reach the registry at {self.url}: {exc or type(exc).__name__}")

    def _raise_for(self, response: httpx.Response) -> None:
        """Raise the error a non-2xx response carries (its body must have been read)."""
        if response.is_success:
            return
        code, message, hint = None, "", None
        try:
            body = response.json()
            code, message = str(body["error"]["code"]), str(body["error"]["message"])
            hint = body["error"].get("hint")
        except (ValueError, KeyError, TypeError, AttributeError):
            message = response.text.strip()[:200]
        if code in (None, "http_error"):
            message = f"{message or response.reason_phrase} ({response.request.method} {response.request.url})"
        raise error_for(response.status_code, code, message, hint)

    def _send(self, method: str, path: str, **kwargs: Any) -> JSON:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        self._raise_for(response)
        return response.json()

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        """The answer to one request, as its wire model."""
        return model.model_validate(self._send(method, path, **kwargs))

    @contextmanager
    def _stream(self, path: str, params: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        """The body of a GET as an iterator of chunks; a broken connection raises ConnectionFailed."""
        try:
            with self._http.stream("GET", path, params=params) as response:
                if not response.is_success:
                    response.read()
                    self._raise_for(response)
                yield self._chunks(response)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _chunks(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(_CHUNK)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"the connection to {self.url} broke during the transfer: {exc}") from exc

    def _read_arrow(self, path: str, params: dict[str, Any], columns: Sequence[str] | None) -> pa.Table:
        import pyarrow as pa

        from registry_client.streams import ByteStream

        with self._stream(path, {**params, "format": "arrow"}) as chunks:
            source = ByteStream(chunks)
            try:
                reader = pa.ipc.open_stream(source)
                schema = reader.schema
                if columns is not None:
                    missing = [c for c in columns if c not in schema.names]
                    if missing:
                        raise InvalidInput(f"no column {', '.join(map(repr, missing))}; the columns are "
                                           f"{', '.join(schema.names)}")
                    schema = pa.schema([schema.field(c) for c in columns])
                batches = [b.select(list(columns)) if columns is not None else b for b in reader]
            except (pa.ArrowException, OSError) as exc:
                if source.error is not None:
                    raise source.error from exc
                if isinstance(exc, RegistryError):
                    raise
                raise ConnectionFailed(f"{self.url} sent an unreadable Arrow stream: {exc}") from exc
        return pa.Table.from_batches(batches, schema)

    # --- datasets, commits, snapshots ------------------------------------------------------------------

    def whoami(self) -> WhoamiPublic:
        """This token: its ``name``, ``role``, dataset scope (``datasets``) and allowed ``actions``."""
        return self._call(WhoamiPublic, "GET", "/whoami")

    def datasets(self) -> DatasetsPublic:
        """Every dataset the token sees, with its head snapshot (``data``; ``registry dataset list --json``)."""
        return self._call(DatasetsPublic, "GET", "/datasets")

    def create_dataset(self, name: str, key: str | Sequence[str], description: str = "",
                       owner: str | None = None) -> DatasetPublic:
        """Create an empty dataset keyed by ``key`` (a column name or several).

        Raises:
            AlreadyExists: the name is taken.  InvalidName: the name breaks the naming rules.
        """
        keys = [key] if isinstance(key, str) else list(key)
        return self._call(DatasetPublic, "POST", "/datasets", json={"name": name, "key": keys,
                          "description": description, "owner": owner})

    def commit(self, name: str, table_or_path: pa.Table | str | os.PathLike[str], *, message: str = "",
               mode: Literal["replace", "upsert"] = "replace", expect_parent: str | None = None,
               allow_breaking: bool = False) -> CommitPublic:
        """Commit rows as the next snapshot of ``name``'s ``main`` (``NAME@BRANCH``: of that branch): a
        ``pyarrow.Table`` (sent as an Arrow IPC stream, batch by batch) or a file (Parquet, CSV or JSON
        lines; sent as multipart, read from disk as it is sent). ``expect_parent`` is sent as ``If-Match``.

        Returns the commit result (``registry commit --json``): ``snapshot_id``, ``created``, counts.

        Raises:
            Conflict (RefConflict): ``main`` is not at ``expect_parent``.
            BreakingSchemaChange: a breaking schema change without ``allow_breaking``.
            TooLarge: the upload exceeds the server's limit.  InvalidInput: unreadable rows or bad keys.
        """
        name, _, branch = name.partition("@")
        params = _params(message=message, mode=mode, allow_breaking=allow_breaking, branch=branch or None)
        headers = {"If-Match": f'"{expect_parent}"'} if expect_parent else {}
        if not isinstance(table_or_path, (str, os.PathLike)):  # a pyarrow.Table
            from registry_client.streams import arrow_chunks

            return self._call(CommitPublic, "POST", f"/datasets/{_segment(name)}/commits", params=params,
                              headers={**headers, "Content-Type": ARROW_STREAM},
                              content=arrow_chunks(table_or_path))
        path = Path(table_or_path)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
        with handle:
            return self._call(CommitPublic, "POST", f"/datasets/{_segment(name)}/commits", params=params,
                              headers=headers, files={"file": (path.name, handle, PARQUET)})

    def log(self, name: str, limit: int | None = None) -> SnapshotsPublic:
        """Snapshots of ``NAME`` (or ``NAME@REF``), newest first."""
        return self._call(SnapshotsPublic, "GET", f"/datasets/{_segment(name)}/log",
                          params=_params(limit=limit))

    def show(self, ref: str) -> SnapshotPublic:
        """One snapshot (``NAME@REF``) with its tags, branches and schema."""
        return self._call(SnapshotPublic, "GET", f"/snapshots/{_segment(ref)}")

    def resolve(self, ref: str) -> ResolvedRefPublic:
        """What ``NAME@REF`` names now: ``dataset``, ``ref`` and the full ``snapshot_id`` (a cheap request)."""
        return self._call(ResolvedRefPublic, "GET", f"/refs/{_segment(ref)}")

    def tag(self, ref: str, tag: str) -> SnapshotPublic:
        """Tag the snapshot ``ref`` names (tags never move); returns the snapshot.

        Raises:
            AlreadyExists: the tag exists.
        """
        return self._call(SnapshotPublic, "POST", f"/refs/{_segment(ref)}/tags", json={"tag": tag})

    @overload
    def diff(self, a: str, b: str, rows: int = 10, labels: Literal[False] = False,
             column: str = "label") -> DiffPublic: ...

    @overload
    def diff(self, a: str, b: str, rows: int = 10, *, labels: Literal[True],
             column: str = "label") -> LabelDiffPublic: ...

    @overload
    def diff(self, a: str, b: str, rows: int, labels: Literal[True], column: str = "label") -> LabelDiffPublic: ...

    def diff(self, a: str, b: str, rows: int = 10, labels: bool = False,
             column: str = "label") -> DiffPublic | LabelDiffPublic:
        """What changed from ``a`` to ``b`` (``rows`` example rows of each kind); ``labels=True`` gives
        the label change matrix of ``column`` instead (``registry diff --labels``)."""
        params = _params(a=a, b=b, rows=rows, labels=labels, column=column)
        if labels:
            return self._call(LabelDiffPublic, "GET", "/diff", params=params)
        return self._call(DiffPublic, "GET", "/diff", params=params)

    def schema(self, name: str) -> SchemaVersionsPublic:
        """Schema versions of ``name``, each compatible or breaking."""
        return self._call(SchemaVersionsPublic, "GET", f"/datasets/{_segment(name)}/schema")

    def read(self, ref: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows of ``ref``, decoded from an Arrow IPC stream as it arrives (only ``columns``, if given)."""
        return self._read_arrow(f"/snapshots/{_segment(ref)}/data", {}, columns)

    def download(self, ref: str, out: str | os.PathLike[str], *, format: Literal["parquet", "arrow"] = "parquet",
                 training: bool = False, job: str | None = None, allow_unverified: bool = False) -> int:
        """Stream the rows of ``ref`` into the file ``out`` (Parquet or an Arrow IPC stream); the bytes written.

        With ``training=True`` this is the training read :meth:`load` makes (gate enforced, audited).
        """
        params = _params(format=format, **self._training(training, job, allow_unverified))
        written = 0
        with self._stream(f"/snapshots/{_segment(ref)}/data", params) as chunks, open(out, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                written += len(chunk)
        return written

    @staticmethod
    def _training(training: bool, job: str | None, allow_unverified: bool) -> dict[str, Any]:
        if not training:
            return {}
        return {"training": True, "job": job, "allow_unverified": allow_unverified}

    # --- annotations and provenance --------------------------------------------------------------------

    def import_annotations(self, fmt: Literal["label-studio", "coco", "yolo", "table"], name: str,
                           path: str | os.PathLike[str], *, key: str | None = None,
                           guideline_version: str | None = None, config: str | os.PathLike[str] | None = None,
                           resolve: Literal["gt-majority", "majority"] = "gt-majority", mapping: str | None = None,
                           message: str = "", users: str | os.PathLike[str] | None = None) -> ImportPublic:
        """Import a labeling tool's export as ``name``'s next snapshot with its annotation records
        (``registry import --json``); ``config`` is a Label Studio labeling config file, ``users`` its
        ``/api/users/`` answer (a YOLO export goes as its zip)."""
        params = _params(format=fmt, key=key, guideline_version=guideline_version, resolve=resolve, map=mapping,
                         message=message)
        named = [("file", path), ("config", config), ("users", users)]
        parts_wanted = [(part, Path(p)) for part, p in named if p is not None]
        files = [f for _, f in parts_wanted]
        try:
            handles = [f.open("rb") for f in files]
        except OSError as exc:
            raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror or exc}") from exc
        try:
            parts = {part: (f.name, h, "application/octet-stream")
                     for (part, f), h in zip(parts_wanted, handles, strict=True)}
            result = self._call(ImportPublic, "POST", f"/datasets/{_segment(name)}/imports", params=params,
                                files=parts)
        finally:
            for handle in handles:
                handle.close()
        return result

    def history(self, name: str, key: str) -> HistoryEntriesPublic:
        """Every labeling act and every snapshot that changed sample ``key`` of ``name``, oldest first."""
        return self._call(HistoryEntriesPublic, "GET", f"/datasets/{_segment(name)}/history",
                          params={"key": key})

    def blame(self, ref: str, column: str = "label", limit: int | None = None) -> BlamePublic:
        """Per row of ``ref``: the snapshot that last changed it and who labeled its current value."""
        return self._call(BlamePublic, "GET", f"/blame/{_segment(ref)}",
                          params=_params(column=column, limit=limit))

    # --- quality: policies, gates, pins, training reads ------------------------------------------------

    def policy(self, name: str, version: int | None = None) -> PolicyPublic:
        """The current (or ``version``) QA policy of ``name``, with its YAML ``document``."""
        return self._call(PolicyPublic, "GET", f"/policies/{_segment(name)}", params=_params(version=version))

    def set_policy(self, name: str, document: str, source: str = "policy") -> PolicyPublic:
        """Store ``document`` (YAML) as ``name``'s next policy version (owner and maintainers only)."""
        return self._call(PolicyPublic, "PUT", f"/policies/{_segment(name)}",
                          json={"document": document, "source": source})

    def gate_check(self, ref: str) -> GateStatusPublic:
        """Whether ``ref``'s snapshot passes its gate (``passes``), and why (``registry gate check --json``)."""
        return self._call(GateStatusPublic, "GET", f"/gates/{_segment(ref)}")

    def gate_results(self, ref: str) -> GateResultsPublic:
        """Every stored QA result of ``ref``'s snapshot, newest first."""
        return self._call(GateResultsPublic, "GET", f"/gates/{_segment(ref)}/results")

    def qa_run(self, ref: str) -> GateResultPublic:
        """Evaluate the current policy on ``ref``'s snapshot and store the gate result."""
        return self._call(GateResultPublic, "POST", f"/qa/{_segment(ref)}")

    def waive(self, ref: str, reason: str, checks: Sequence[str] | None = None,
              expires: str | None = None) -> WaiverPublic:
        """Let ``ref``'s snapshot pass despite failed ``checks`` (all if None) until ``expires``."""
        body = {"reason": reason, "checks": list(checks) if checks is not None else None, "expires": expires}
        return self._call(WaiverPublic, "POST", f"/gates/{_segment(ref)}/waivers", json=body)

    def pin(self, ref: str, job: str | None = None) -> LockEntryPublic:
        """Pin ``ref``'s snapshot for training; returns the lock entry (write it to a lockfile yourself).

        Raises:
            GateBlocked: the gate does not pass (the refusal is audited).
        """
        return self._call(LockEntryPublic, "POST", "/pins", json={"ref": ref, "job": job})

    def load(self, ref: str, job: str | None = None, allow_unverified: bool = False) -> pa.Table:
        """The rows of ``ref`` for training, streamed; audited with ``job`` like the local ``Registry.load``.

        Raises:
            GateBlocked: the gate does not pass and ``allow_unverified`` is False.
            VerifyFailed: the stored bytes do not match their hashes.
        """
        return self._read_arrow(f"/snapshots/{_segment(ref)}/data", self._training(True, job, allow_unverified),
                                None)

    # --- audit, query, lineage, verification -----------------------------------------------------------

    def query_rows(self, sql: str, dataset: str | None = None) -> QueryResultPublic:
        """Read-only SQL as the server answers it: ``columns`` and ``rows`` (JSON objects)."""
        return self._call(QueryResultPublic, "POST", "/query", json={"sql": sql, "dataset": dataset})

    def query(self, sql: str, dataset: str | None = None) -> pa.Table:
        """Read-only DuckDB SQL over the registry's views (``data`` = the rows of ``dataset``, a NAME@REF),
        as a table built from the JSON rows (times and decimals arrive as strings)."""
        import pyarrow as pa

        answer = self.query_rows(sql, dataset)
        columns, rows = answer.columns, answer.rows
        return pa.table({c: [row.get(c) for row in rows] for c in columns})

    def audit_log(self, *, dataset: str | None = None, actor: str | None = None, action: str | None = None,
                  since: str | None = None, until: str | None = None, limit: int | None = None) -> AuditEventsPublic:
        """Audit events matching every filter given, oldest first (``limit``: the newest N)."""
        return self._call(AuditEventsPublic, "GET", "/audit/events", params=_params(
                          dataset=dataset, actor=actor, action=action, since=since, until=until, limit=limit))

    def verify_audit(self, checkpoint: AuditCheckpointPublic | dict[str, Any] | None = None) -> AuditVerifyPublic:
        """Recompute the audit hash chain (and prove it extends ``checkpoint``); ``ok`` says the outcome."""
        saved = checkpoint.to_dict() if isinstance(checkpoint, AuditCheckpointPublic) else checkpoint
        return self._call(AuditVerifyPublic, "POST", "/audit/verify", json={"checkpoint": saved})

    def audit_checkpoint(self) -> AuditCheckpointPublic:
        """The chain's current (sequence, hash, time), to keep outside the registry."""
        return self._call(AuditCheckpointPublic, "POST", "/audit/checkpoints")

    def lineage_graph(self, ref: str, direction: Literal["both", "upstream", "downstream"] = "both",
                      depth: int = 3) -> LineageGraphPublic:
        """The lineage graph within ``depth`` steps of the snapshot ``ref``."""
        return self._call(LineageGraphPublic, "GET", "/lineage/graph", params={"ref": ref, "direction": direction,
                          "depth": depth})

    def ingest_lineage(self, event: dict[str, Any]) -> LineageIngestPublic:
        """Record an OpenLineage RunEvent's reads and writes of registry snapshots as lineage edges."""
        return self._call(LineageIngestPublic, "POST", "/lineage", json=event)

    def verify(self, dataset: str | None = None) -> VerifyReportPublic:
        """Recompute stored hashes, manifests and snapshot ids on the server; ``ok`` says the outcome."""
        return self._call(VerifyReportPublic, "POST", "/verify", params=_params(dataset=dataset))
