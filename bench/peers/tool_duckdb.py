"""Do-it-yourself baseline: one full Parquet file per version, rewritten by DuckDB, diffed by a full join."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from harness import KEY, Tool, Work, core_bench, timed_loop


def upsert_rewrite(prev: Path, changes: Path, out: Path) -> None:
    """Write ``prev`` with ``changes`` upserted by key as a new full zstd Parquet file."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"""
            COPY (SELECT p.* FROM read_parquet('{prev}') p ANTI JOIN read_parquet('{changes}') c USING ({KEY})
                  UNION ALL SELECT * FROM read_parquet('{changes}'))
            TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")
    finally:
        con.close()


class DuckDBTool(Tool):
    name = "duckdb"
    label = "DuckDB + Parquet files"

    def _path(self, version: int) -> Path:
        return self.dir / f"v{version:04d}.parquet"

    def init_v1(self) -> Work:
        self.dir.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(self.inputs.v1)

        def work() -> dict[str, Any]:
            pq.write_table(table, self._path(1), compression="zstd")
            return {}

        return work

    def commit_v2(self) -> Work:
        return lambda: upsert_rewrite(self._path(1), Path(self.inputs.changes_v2), self._path(2)) or {}

    def diff_v1_v2(self) -> Work:
        def work() -> dict[str, Any]:
            added, removed, changed = core_bench.duckdb_diff(self._path(1), self._path(2))
            return {"added": added, "removed": removed, "changed": changed}

        return work

    def read_v1(self) -> Work:
        return lambda: {"rows": pq.read_table(self._path(1)).num_rows}

    def chain(self) -> Work:
        def steps() -> Any:
            for k, changes in enumerate(self.inputs.chain_changes(), start=3):
                yield lambda k=k, changes=changes: upsert_rewrite(self._path(k - 1), changes, self._path(k))

        return lambda: timed_loop(steps(), self.dir)

    def head_table(self) -> pa.Table:
        return pq.read_table(self._path(self.inputs.versions + 2))
