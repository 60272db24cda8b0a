"""Lance (``pylance``): versioned columnar datasets; ``merge_insert`` for the upsert, time travel for reads.

Lance keeps every version (fragments plus deletion files) and offers no change feed, so the diff is what
a Lance user writes: a keyed full join of the two versions' columns (DuckDB over the two Arrow tables).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from harness import KEY, MergeTool, Work


class LanceTool(MergeTool):
    name = "lance"
    label = "Lance"
    library = "lance"

    def _write(self, table: pa.Table) -> None:
        import lance

        lance.write_dataset(table, str(self.dir))

    def _merge(self, changes: pa.Table) -> dict[str, Any]:
        import lance

        ds = lance.dataset(str(self.dir))
        stats = ds.merge_insert(KEY).when_matched_update_all().when_not_matched_insert_all().execute(changes)
        return {"version": lance.dataset(str(self.dir)).version, **{k: stats.get(k) for k in
                                                                   ("num_inserted_rows", "num_updated_rows")}}

    def diff_v1_v2(self) -> Work:
        """Version 1 is v1 and version 2 is v2: a keyed full join of the two versions."""
        import duckdb
        import lance

        def work() -> dict[str, Any]:
            a = lance.dataset(str(self.dir), version=1).to_table(columns=[KEY, "label"])
            b = lance.dataset(str(self.dir), version=2).to_table(columns=[KEY, "label"])
            con = duckdb.connect()
            try:
                con.register("a", a)
                con.register("b", b)
                added, removed, changed = con.execute(f"""
                    SELECT count(*) FILTER (WHERE a.{KEY} IS NULL), count(*) FILTER (WHERE b.{KEY} IS NULL),
                           count(*) FILTER (WHERE a.{KEY} IS NOT NULL AND b.{KEY} IS NOT NULL
                                            AND a.label IS DISTINCT FROM b.label)
                    FROM a FULL OUTER JOIN b USING ({KEY})""").fetchone()
            finally:
                con.close()
            return {"added": added, "removed": removed, "changed": changed}

        return work

    def read_v1(self) -> Work:
        import lance

        return lambda: {"rows": lance.dataset(str(self.dir), version=1).to_table().num_rows}

    def head_table(self) -> pa.Table:
        import lance

        return lance.dataset(str(self.dir)).to_table()
