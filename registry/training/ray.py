"""Ray Data over one snapshot (needs the ``[ray]`` extra): ``read_snapshot`` is a datasource built
on the scan plan, so a Ray cluster reads the snapshot's shards in parallel, on any node, and feeds
Ray Train.

>>> ds = read_snapshot("street-signs@v3", columns=["pixels", "label"], job="train-vit")  # doctest: +SKIP
>>> trainer = TorchTrainer(loop, datasets={"train": ds}, ...)                             # doctest: +SKIP

The job is admitted once, on the driver (gate check, one audit event, one lineage run); each read
task receives its shard of the plan and verifies every object it reads before trusting its bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import pyarrow as pa
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from registry.snapshots.plan import ReadTask as PlanTask
from registry.snapshots.plan import ScanPlan, group, read_task
from registry.training.admission import Admission, ObjectSource, VerifiedObjects
from registry.training.lockfile import LockEntry
from registry.training.sources import admit_job

__all__ = ["SnapshotDatasource", "read_snapshot"]


def _read_shard(plan: ScanPlan, shard: tuple[PlanTask, ...], objects: ObjectSource) -> Iterator[pa.Table]:
    verified = VerifiedObjects(objects)
    for task in shard:
        yield read_task(verified.path(task.object), task, plan.columns)


class SnapshotDatasource(Datasource):
    """The read tasks of one admitted snapshot: runs of whole row groups (so each is decoded once),
    as equal in rows as whole row groups allow, and never more tasks than row groups (a task given part
    of a row group decodes all of it: cutting one across tasks multiplies the work, not the speed)."""

    def __init__(self, admission: Admission, objects: ObjectSource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.admission = admission
        self.objects = objects

    def get_name(self) -> str:
        plan = self.admission.plan
        return f"Registry({plan.dataset}@{plan.snapshot_id[:12]})"

    def estimate_inmemory_data_size(self) -> int | None:
        return None  # Parquet sizes say little about decoded sizes; Ray then sizes blocks as it reads

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        plan = self.admission.plan
        tasks = []
        live = [task for task in plan.tasks if task.rows]
        for shard in group(live, max(1, min(parallelism, len(live)))):
            if not shard:
                continue
            metadata = BlockMetadata(num_rows=sum(t.rows for t in shard), size_bytes=None, exec_stats=None,
                                     input_files=None)
            tasks.append(ReadTask(partial(_read_shard, plan, tuple(shard), self.objects), metadata,
                                  schema=plan.schema, per_task_row_limit=per_task_row_limit))
        return tasks


def read_snapshot(ref_or_lock_entry: str | LockEntry, columns: Sequence[str] | None = None, *,
                  registry: Any = None, job: str | None = None, allow_unverified: bool = False,
                  override_num_blocks: int | None = None, reserve_op_resources: bool = False,
                  **read_args: Any) -> ray.data.Dataset:
    """The snapshot's rows as a ``ray.data.Dataset`` (``override_num_blocks``: how many read tasks).

    ``reserve_op_resources``: keep Ray Data's per-operator resource reservation on for this dataset and
    the ones derived from it. Off by default: with it on, Ray Data (2.60) holds a read like this one to one
    task at a time until its output is consumed, so two workers read no faster than one
    (``bench/results/training.md``). Only the returned dataset's own copy of the ``DataContext`` changes.

    Raises:
        GateBlocked: the gate does not pass (audited), before any task starts.
        NotFound, InvalidInput: no such snapshot, or a bad column.
        VerifyFailed: (when the dataset executes) an object's bytes do not hash to its name.
    """
    admission, objects = admit_job(ref_or_lock_entry, registry, columns=columns, job=job,
                                   allow_unverified=allow_unverified)
    dataset: ray.data.Dataset = ray.data.read_datasource(SnapshotDatasource(admission, objects),
                                                         override_num_blocks=override_num_blocks, **read_args)
    dataset.context.op_resource_reservation_enabled = reserve_op_resources
    return dataset
