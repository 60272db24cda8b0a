"""Read-only SQL over everything the registry records, through DuckDB (``registry query``).

The views are set up first: catalog tables (``datasets``, ``snapshots``, ``refs``,
``schema_versions``) as Arrow tables, ``audit_log`` over the sealed Parquet segments plus the
unsealed events, ``annotations`` over every snapshot's records objects, the quality and lineage
views (``gate_results``, ``qa_policies``, ``gate_waivers``, ``pins``, ``lineage_edges``), and with
a dataset reference a ``data`` view of that snapshot's rows. Then the connection is sealed:
external access off (only the segment and records files stay readable), no extension loading,
configuration locked. On top, only ``SELECT`` and ``EXPLAIN`` statements
are accepted, so a query can neither read nor write a file, attach a database or change a setting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import BigInteger, Boolean, Float, Integer
from sqlmodel import Session, SQLModel, col, select

from registry.audit.models import AuditSegmentRow
from registry.audit.segments import unsealed_events
from registry.branch_models import MergeConflictRow
from registry.config import Settings
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput, QueryInterrupted, QuerySyntaxError, UserError
from registry.lineage.views import query_views as lineage_views
from registry.models import DatasetRow, RefRow, SchemaVersionRow, SnapshotRow
from registry.provenance.store import STORED_SCHEMA
from registry.quality.views import query_views as quality_views
from registry.rows import rows_to_table
from registry.snapshots.read import read

if TYPE_CHECKING:
    import duckdb

__all__ = ["QueryLimits", "catalog_table", "open_sandbox", "run_query", "view_names"]


_ALLOWED_STATEMENTS = {"SELECT", "EXPLAIN"}

_AUDIT_VIEW = """
CREATE VIEW audit_log AS
SELECT seq, event_id, CAST(rtrim(time, 'Z') AS TIMESTAMP) AS time, actor, actor_kind, action, object_type,
       object_id, dataset, snapshot, details, client, prev_hash, hash
FROM ({source})
"""


def _arrow_type(sql_type: Any) -> pa.DataType:
    if isinstance(sql_type, (BigInteger, Integer)):
        return pa.int64()
    if isinstance(sql_type, Boolean):
        return pa.bool_()
    if isinstance(sql_type, Float):
        return pa.float64()
    return pa.string()


def catalog_table(session: Session, model: type[SQLModel], rename: dict[str, str] | None = None) -> pa.Table:
    """All rows of a catalog table as Arrow, typed from its columns (so an empty table keeps its schema)."""
    table = model.__table__  # type: ignore[attr-defined]
    columns = list(table.columns)
    schema = pa.schema([pa.field((rename or {}).get(c.name, c.name), _arrow_type(c.type)) for c in columns])
    return rows_to_table(session.execute(select(*columns)).all(), schema)


def _catalog_views(session: Session) -> dict[str, pa.Table]:
    datasets = catalog_table(session, DatasetRow, {"id": "dataset_id"})
    names = dict(zip(datasets.column("dataset_id").to_pylist(), datasets.column("name").to_pylist(), strict=True))

    def with_dataset_name(table: pa.Table) -> pa.Table:
        ids = table.column("dataset_id").to_pylist()
        return table.append_column("dataset", pa.array([names.get(i) for i in ids], pa.string()))

    return {
        "datasets": datasets,
        "snapshots": with_dataset_name(catalog_table(session, SnapshotRow)),
        "refs": with_dataset_name(catalog_table(session, RefRow)),
        "schema_versions": with_dataset_name(catalog_table(session, SchemaVersionRow)),
        "merge_conflicts": with_dataset_name(catalog_table(session, MergeConflictRow)),
    }


def _domain_views(ctx: Context) -> dict[str, pa.Table]:
    """The views the quality and lineage packages contribute (gate results, waivers, pins, lineage edges)."""
    return {**quality_views(ctx), **lineage_views(ctx)}


def view_names() -> list[str]:
    """The views every query can use (``data`` too when a dataset is given)."""
    return ["datasets", "snapshots", "refs", "schema_versions", "annotations", "audit_log", "gate_results",
            "qa_policies", "gate_waivers", "pins", "lineage_edges", "merge_conflicts"]


def open_sandbox(ctx: Context, dataset_ref: str | None = None, limits: QueryLimits | None = None
                 ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding the registry's views, locked down for untrusted SQL and
    held to ``limits`` (memory and threads)."""
    import duckdb  # lazy: duckdb loads only when a query runs

    limits = limits or QueryLimits.from_settings(ctx.settings)
    with transaction(ctx.engine, readonly=True) as session:
        tables = _catalog_views(session)
        tables["audit_unsealed"] = unsealed_events(session)
        segments = [str(ctx.store.local_path(sha)) for sha in session.exec(
            select(AuditSegmentRow.sha256).order_by(col(AuditSegmentRow.first_seq))).all()]
        record_objects = {str(ctx.store.local_path(sha)): (snapshot_id, dataset) for sha, snapshot_id, dataset in
                          session.execute(select(SnapshotRow.annotations_sha256, SnapshotRow.id, DatasetRow.name)
                                          .join(DatasetRow, col(DatasetRow.id) == SnapshotRow.dataset_id)
                                          .where(col(SnapshotRow.annotations_sha256).is_not(None))).all()}
    tables.update(_domain_views(ctx))
    if dataset_ref is not None:
        tables["data"] = read(ctx, dataset_ref)
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": limits.memory_limit}
    if limits.threads > 0:
        config["threads"] = limits.threads
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        raise UserError(f"the query limits are misconfigured (REGISTRY_QUERY_MEMORY_LIMIT, "
                        f"REGISTRY_QUERY_THREADS): {_first_line(exc)}") from exc
    try:
        for name, table in tables.items():
            con.register(name, table)
        source = "SELECT * FROM audit_unsealed"
        if segments:
            source = f"SELECT * FROM read_parquet([{_sql_list(segments)}]) UNION ALL BY NAME {source}"
        con.execute(_AUDIT_VIEW.format(source=source))
        _annotations_view(con, record_objects)
        if segments or record_objects:
            con.execute(f"SET allowed_paths = [{_sql_list([*segments, *record_objects])}]")
        con.execute("SET temp_directory = ''")
        con.execute("SET enable_external_access = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _sql_list(paths: Sequence[str]) -> str:
    return ", ".join("'" + path.replace("'", "''") + "'" for path in paths)


def _annotations_view(con: duckdb.DuckDBPyConnection, objects: dict[str, tuple[str, str]]) -> None:
    """``annotations``: every snapshot's records object (what it added, updated or removed), with its
    snapshot id and dataset name. Objects written before a record column existed have it null (every
    column of today's records, by name)."""
    columns = STORED_SCHEMA.empty_table().append_column("snapshot_id", pa.array([], pa.string())) \
        .append_column("dataset", pa.array([], pa.string()))
    if not objects:
        con.register("annotations", columns)
        return
    owners = pa.table({"filename": list(objects), "snapshot_id": [v[0] for v in objects.values()],
                       "dataset": [v[1] for v in objects.values()]})
    con.register("annotation_objects", owners)
    con.register("annotation_columns", columns)
    con.execute(f"""CREATE VIEW annotations AS SELECT * FROM annotation_columns UNION ALL BY NAME
                    SELECT r.* EXCLUDE (filename), o.snapshot_id, o.dataset
                    FROM read_parquet([{_sql_list(list(objects))}], filename = true, union_by_name = true) r
                    JOIN annotation_objects o USING (filename)""")


def check_read_only(sql: str) -> None:
    """Refuse anything but SELECT/EXPLAIN statements, before DuckDB runs any of it.

    Raises:
        InvalidInput: empty SQL, a syntax error, or a statement that is not a query.
    """
    import duckdb  # lazy: duckdb loads only when a query runs

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QuerySyntaxError(f"cannot parse the query: {exc}") from exc
    if not statements:
        raise InvalidInput("the query is empty")
    for statement in statements:
        kind = statement.type.name
        if kind not in _ALLOWED_STATEMENTS:
            raise InvalidInput(f"registry query runs read-only queries; {kind} statements are not allowed "
                               f"({statement.query.strip()[:60]!r})")


@dataclass(frozen=True)
class QueryLimits:
    """What one query may use: wall time (then it is interrupted), DuckDB memory and threads, and
    optionally how many result rows it may return (the HTTP API's cap)."""

    timeout: float = 60.0
    memory_limit: str = "2GB"
    threads: int = 0
    max_rows: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, max_rows: int | None = None) -> QueryLimits:
        """The limits ``REGISTRY_QUERY_*`` configure, with ``max_rows`` as given."""
        return cls(settings.query.timeout_seconds, settings.query.memory_limit, settings.query.threads, max_rows)


def run_query(ctx: Context, sql: str, dataset_ref: str | None = None,
              parameters: Sequence[object] | None = None, limits: QueryLimits | None = None,
              cancel: threading.Event | None = None) -> pa.Table:
    """Run read-only ``sql`` over the registry's views; the result of the last statement, as Arrow.

    The query is interrupted when it runs past ``limits.timeout`` or when ``cancel`` is set (the HTTP
    client went away); DuckDB gets ``limits.memory_limit`` and ``limits.threads``.

    Raises:
        InvalidInput: the SQL is not a read-only query, fails to bind or run, tries to reach a
            file, an extension or a setting, runs out of its memory limit, or returns more than
            ``limits.max_rows`` rows.
        QueryInterrupted: it ran past the timeout or was cancelled.
        NotFound: ``dataset_ref`` names no snapshot.
    """
    import duckdb  # lazy: duckdb loads only when a query runs

    limits = limits or QueryLimits.from_settings(ctx.settings)
    check_read_only(sql)
    con = open_sandbox(ctx, dataset_ref, limits)
    cancel = cancel or threading.Event()
    done = threading.Event()
    watchdog = threading.Thread(target=_watch, args=(con, cancel, done, limits.timeout), daemon=True,
                                name="registry-query-watchdog")
    watchdog.start()
    try:
        relation = con.sql(sql, params=list(parameters) if parameters else None)
        return _collect(relation, limits.max_rows) if relation is not None else pa.table({})
    except duckdb.InterruptException as exc:
        reason = "it was cancelled (the client went away)" if cancel.is_set() else (
            f"it ran longer than the limit of {limits.timeout:g} s (REGISTRY_QUERY_TIMEOUT_SECONDS)")
        raise QueryInterrupted(f"query interrupted: {reason}") from exc
    except duckdb.OutOfMemoryException as exc:
        raise InvalidInput(f"query ran out of its memory limit of {limits.memory_limit} "
                           f"(REGISTRY_QUERY_MEMORY_LIMIT): {_first_line(exc)}") from exc
    except duckdb.PermissionException as exc:
        raise InvalidInput(f"the query tried to reach outside the registry's views, which is not allowed: "
                           f"{_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise InvalidInput(f"query failed: {_first_line(exc)}") from exc
    finally:
        done.set()
        watchdog.join()
        con.close()


def _watch(con: duckdb.DuckDBPyConnection, cancel: threading.Event, done: threading.Event, timeout: float) -> None:
    """Interrupt ``con`` once ``timeout`` seconds pass (0: never) or ``cancel`` is set, unless ``done`` first."""
    deadline = time.monotonic() + timeout if timeout > 0 else float("inf")
    while not done.wait(_POLL):
        if cancel.is_set() or time.monotonic() >= deadline:
            con.interrupt()
            return


_POLL = 0.05


def _collect(relation: duckdb.DuckDBPyRelation, max_rows: int | None) -> pa.Table:
    """The relation's rows, refusing more than ``max_rows`` without materialising them all."""
    if max_rows is None:
        return relation.to_arrow_table()
    reader = relation.to_arrow_reader(batch_size=min(max_rows + 1, 65_536))
    batches, rows = [], 0
    for batch in reader:
        rows += batch.num_rows
        if rows > max_rows:
            raise InvalidInput(f"the query returns more than {max_rows:,} rows, the most the API sends "
                               "(REGISTRY_API_MAX_QUERY_ROWS); add a LIMIT or aggregate")
        batches.append(batch)
    return pa.Table.from_batches(batches, reader.schema)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
