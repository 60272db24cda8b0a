"""Delta Lake (delta-rs, ``deltalake``): MERGE for the upsert, change data feed for the diff, time travel."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from harness import KEY, MergeTool, Work

CDF = {"delta.enableChangeDataFeed": "true"}


def zstd() -> Any:
    """zstd, as every other tool here writes (delta-rs defaults to snappy)."""
    from deltalake import WriterProperties

    return WriterProperties(compression="ZSTD")


class DeltaTool(MergeTool):
    name = "delta"
    label = "Delta Lake"
    library = "deltalake"

    def _write(self, table: pa.Table) -> None:
        from deltalake import write_deltalake

        write_deltalake(str(self.dir), table, configuration=CDF, writer_properties=zstd())

    def _merge(self, changes: Any) -> dict[str, Any]:
        from deltalake import DeltaTable

        dt = DeltaTable(str(self.dir))
        metrics = (dt.merge(changes, predicate=f"t.{KEY} = s.{KEY}", source_alias="s", target_alias="t",
                            writer_properties=zstd())
                   .when_matched_update_all().when_not_matched_insert_all().execute())
        return {"version": dt.version(), "files_added": metrics.get("num_target_files_added"),
                "files_removed": metrics.get("num_target_files_removed")}

    def diff_v1_v2(self) -> Work:
        """Version 0 is v1 and version 1 is v2: read the change data feed of version 1."""
        from deltalake import DeltaTable

        dt = DeltaTable(str(self.dir))

        def work() -> dict[str, Any]:
            feed = pa.RecordBatchReader.from_stream(dt.load_cdf(starting_version=1, ending_version=1,
                                                                columns=[KEY, "label", "_change_type"])).read_all()
            counts = Counter({str(v["values"]): int(v["counts"])
                              for v in pc.value_counts(feed.column("_change_type")).to_pylist()})
            return {"added": counts["insert"], "removed": counts["delete"], "changed": counts["update_postimage"],
                    "change_types": dict(counts)}

        return work

    def read_v1(self) -> Work:
        from deltalake import DeltaTable

        def work() -> dict[str, Any]:
            return {"rows": DeltaTable(str(self.dir), version=0).to_pyarrow_table().num_rows}

        return work

    def head_table(self) -> pa.Table:
        from deltalake import DeltaTable

        return DeltaTable(str(self.dir)).to_pyarrow_table()
