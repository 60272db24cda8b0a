"""Shared pieces of the provenance queries: a snapshot's labels by key, and who labeled each value."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from registry.errors import Hint, InvalidInput
from registry.models import SchemaVersionRow

__all__ = ["current_annotators", "key_strings", "key_type", "require_label_column"]


def key_strings(table: pa.Table, keys: list[str]) -> pa.Array:
    """Sample keys as the text annotation records use (composite keys joined with ``|``)."""
    parts = [pc.cast(table.column(k), pa.string()).combine_chunks() for k in keys]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "|")


def key_type(schema_version: SchemaVersionRow, key: str) -> pa.DataType:
    """The Arrow type of key column ``key`` in a schema version."""
    for column in json.loads(schema_version.arrow_schema):
        if column["name"] == key:
            try:
                return pa.type_for_alias(column["type"])
            except ValueError:
                return pa.string()
    return pa.string()


def require_label_column(schema: pa.Schema, column: str, where: str) -> None:
    if column not in schema.names:
        raise InvalidInput(f"{where} has no column {column!r} (columns: {', '.join(schema.names)}); "
                           "name the label column", hint=Hint("option", "column"))


def current_annotators(records: pa.Table, keys: pa.Array, labels: pa.Array) -> pa.Table:
    """For each (sample key, label): the labeling act behind that value (ground truth first, then the
    most recent human annotation with that value): annotator, guideline version, time and record id."""
    wanted = pa.table({"sample_key": keys, "value": pc.cast(labels, pa.string()), "_row": pa.array(
        range(len(keys)), pa.int64())})
    acts = records.filter(pc.and_(pc.equal(records.column("source_kind"), "human"),
                                  pc.invert(pc.fill_null(records.column("was_cancelled"), False))))
    # Only the acts on the samples asked about: the query then follows the change, not every record kept.
    asked = pc.cast(wanted.column("sample_key"), pa.string()).combine_chunks()
    acts = acts.filter(pc.is_in(acts.column("sample_key"), value_set=asked))
    if not acts.num_rows:  # nobody labeled these samples: no query (and no DuckDB import) needed
        return _nobody(records, len(keys))
    import duckdb  # lazy: duckdb loads only for this query

    con = duckdb.connect()
    try:
        con.register("wanted", wanted)
        con.register("acts", acts)
        return con.sql("""
            SELECT w._row, a.annotator_id, a.annotator_name, a.annotator_email, a.guideline_version,
                   coalesce(a.updated_at, a.created_at) AS labeled_at, a.annotation_id
            FROM wanted w LEFT JOIN (
                SELECT *, row_number() OVER (PARTITION BY sample_key, value ORDER BY coalesce(ground_truth, false) DESC,
                       coalesce(updated_at, created_at) DESC NULLS LAST, annotation_id) AS rn
                FROM acts) a
              ON a.sample_key = w.sample_key AND a.value = w.value AND a.rn = 1
            ORDER BY w._row""").to_arrow_table()
    finally:
        con.close()


def _nobody(records: pa.Table, rows: int) -> pa.Table:
    """:func:`current_annotators`' answer when no labeling act matches: every act column null."""
    columns = {"_row": pa.array(range(rows), pa.int64())}
    for name, source in (("annotator_id", "annotator_id"), ("annotator_name", "annotator_name"),
                         ("annotator_email", "annotator_email"), ("guideline_version", "guideline_version"),
                         ("labeled_at", "created_at"), ("annotation_id", "annotation_id")):
        columns[name] = pa.nulls(rows, records.schema.field(source).type)
    return pa.table(columns)
