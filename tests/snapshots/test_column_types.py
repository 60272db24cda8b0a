"""Column types Parquet cannot store as given still commit, read and re-commit identically."""

from __future__ import annotations

import datetime as dt
import shutil

import pyarrow as pa

from registry import Registry


def test_second_resolution_times_recommit_as_unchanged_after_the_cache_is_rebuilt(reg: Registry) -> None:
    table = pa.table({"id": [1, 2], "at": pa.array([dt.datetime(2026, 11, 1, 10), dt.datetime(2026, 11, 2, 11)],
                                                   pa.timestamp("s")),
                      "clock": pa.array([dt.time(9, 30), dt.time(17, 0)], pa.time32("s"))})
    reg.create_dataset("events", "id")
    first = reg.commit("events", table)
    shutil.rmtree(reg.ctx.paths.cache_dir)  # indexes are rebuilt from the stored Parquet bytes
    reg.close()
    again = Registry.open(reg.home)
    try:
        result = again.commit("events", table)
        assert not result.created and result.snapshot_id == first.snapshot_id
        stored = again.read("events").sort_by("id")
        assert stored.column("at").to_pylist() == table.column("at").to_pylist()
        assert stored.schema.field("at").type == pa.timestamp("ms")
    finally:
        again.close()
