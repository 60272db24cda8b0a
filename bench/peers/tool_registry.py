"""The registry through its Python API: upsert commits of the changed rows, keyed diff, pinned read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from harness import KEY, Tool, Work, dir_bytes, timed_loop

DATASET = "labels"


class RegistryTool(Tool):
    name = "registry"
    label = "registry"

    def _open(self) -> Any:
        from registry.arrow_setup import hide_pandas

        hide_pandas()  # as the `registry` command does (pyarrow would import pandas on its first conversion)
        from registry import Registry

        return Registry.open(self.dir)

    def init_v1(self) -> Work:
        from registry import Registry

        with Registry.init(self.dir) as reg:
            reg.create_dataset(DATASET, KEY)
        reg = self._open()

        def work() -> dict[str, Any]:
            result = reg.commit(DATASET, Path(self.inputs.v1), mode="replace", message="v1")
            reg.tag(f"{DATASET}@{result.snapshot_id}", "v1")
            return {"snapshot": result.snapshot_id, "bytes_written_reported": result.bytes_written}

        return work

    def commit_v2(self) -> Work:
        reg = self._open()
        changes = pq.read_table(self.inputs.changes_v2)
        import registry.snapshots.commit  # noqa: F401 - loaded before the clock, as a peer imports its library

        def work() -> dict[str, Any]:
            result = reg.commit(DATASET, changes, mode="upsert", message="v2: relabel round")
            reg.tag(f"{DATASET}@{result.snapshot_id}", "v2")
            return {"snapshot": result.snapshot_id, "bytes_written_reported": result.bytes_written,
                    "added": result.added, "changed": result.changed, "removed": result.removed}

        return work

    def diff_v1_v2(self) -> Work:
        reg = self._open()
        import registry.snapshots.diff  # noqa: F401 - loaded before the clock, as a peer opens its table before

        def work() -> dict[str, Any]:
            d = reg.diff(f"{DATASET}@v1", f"{DATASET}@v2")
            return {"added": d.added, "removed": d.removed, "changed": d.changed,
                    "changed_cells": d.changed_cells, "examples": len(d.examples)}

        return work

    def label_diff_v1_v2(self) -> Work:
        reg = self._open()
        import registry.provenance.label_diff  # noqa: F401 - loaded before the clock

        def work() -> dict[str, Any]:
            d = reg.label_diff(f"{DATASET}@v1", f"{DATASET}@v2")
            return {"relabeled": d.relabeled, "changes_listed": len(d.changes), "rows_in_both": d.rows_in_both}

        return work

    def read_v1(self) -> Work:
        reg = self._open()
        import registry.snapshots.read  # noqa: F401 - loaded before the clock (numpy, pyarrow.parquet), as a peer's

        def work() -> dict[str, Any]:
            return {"rows": reg.read(f"{DATASET}@v1").num_rows}

        return work

    def chain(self) -> Work:
        reg = self._open()

        def steps() -> Any:
            for path in self.inputs.chain_changes():
                changes = pq.read_table(path)
                yield lambda changes=changes, msg=path.stem: self._commit_then_compact(reg, changes, msg)

        return lambda: timed_loop(steps(), self.dir)

    @staticmethod
    def _commit_then_compact(reg: Any, changes: pa.Table, message: str) -> Any:
        """A commit, then the compaction pass the serve worker (or cron) would run after it; a commit never
        compacts, so the chain counts the two together."""
        result = reg.commit(DATASET, changes, mode="upsert", message=message)
        reg.compact_auto([DATASET])
        return result

    def head_table(self) -> pa.Table:
        return self._open().read(f"{DATASET}@main")

    def disk(self) -> dict[str, Any]:
        total = dir_bytes(self.dir)
        return {"total": total, "store": dir_bytes(self.dir, exclude=("cache",)),
                "store_what": "objects + catalog, without the derivable key-hash index cache (cache/)"}


class RegistryNoFullCompactionTool(RegistryTool):
    """The registry with ``REGISTRY_COMPACT_BASE_FRACTION=0``: automatic compaction never rewrites the
    base layer; upper layers are still merged in size tiers."""

    name = "registry-nofull"
    label = "registry, COMPACT_BASE_FRACTION=0"

    def __init__(self, workdir: Path, inputs: Any) -> None:
        super().__init__(workdir, inputs)
        os.environ["REGISTRY_COMPACT_BASE_FRACTION"] = "0"  # this child process only
