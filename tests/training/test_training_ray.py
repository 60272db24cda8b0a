"""Ray Data on a local 2-worker runtime reads exactly a snapshot's rows, each once, admitted once;
a blocked gate stops it before any task, and a corrupt object fails the read.

One test function drives the whole Ray session: starting Ray is the slow part (seconds)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from registry import Registry
from registry.context import create_home
from registry.errors import GateBlocked, VerifyFailed
from tests.support.training_support import BLOCKING, churned, key_values, need

ray = need("ray")
from registry.training.ray import read_snapshot  # noqa: E402 - needs ray, checked above


def test_ray_data_reads_every_row_once_on_two_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 1024 * 1024, log_to_driver=False,
             configure_logging=False)
    try:
        with Registry.open(create_home(tmp_path / "home").home) as reg:
            expected = churned(reg)
            ds = read_snapshot("churn", registry=reg, job="ray-train", override_num_blocks=4)
            got = pa.concat_tables([ray.get(ref) for ref in ds.to_arrow_refs()])
            assert got.num_rows == expected.num_rows
            assert got.sort_by("idx").equals(expected.sort_by("idx"))
            narrow = read_snapshot("churn", ["idx"], registry=reg, override_num_blocks=2)
            assert sorted(row["idx"] for row in narrow.take_all()) == key_values(expected)
            assert [e.details["job"] for e in reg.audit_log(action="read.training")] == ["ray-train", None]
            # Ray Data's operator reservation (which serialises this read) is off for our datasets and the
            # ones derived from them, on when asked for, and the caller's global context is left as it was.
            assert not ds.context.op_resource_reservation_enabled
            assert not narrow.map_batches(lambda batch: batch).context.op_resource_reservation_enabled
            kept = read_snapshot("churn", registry=reg, reserve_op_resources=True)
            assert kept.context.op_resource_reservation_enabled
            assert ray.data.DataContext.get_current().op_resource_reservation_enabled

            victim = Path(reg.ctx.store.local_path(reg.plan("churn").objects[-1]))
            victim.chmod(0o644)
            data = bytearray(victim.read_bytes())
            data[50] ^= 0x10
            victim.write_bytes(bytes(data))
            with pytest.raises(VerifyFailed, match="corrupt"):  # Ray's task error is also a VerifyFailed
                read_snapshot("churn", registry=reg, override_num_blocks=2).take_all()

            reg.set_policy("churn", BLOCKING)
            reg.qa_run("churn")
            with pytest.raises(GateBlocked):
                read_snapshot("churn", registry=reg)
    finally:
        ray.shutdown()


def test_read_tasks_never_cut_a_row_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task given part of a row group decodes all of it: asked for more tasks than the snapshot has row
    groups, the datasource makes one task per row group instead of decoding some row groups many times."""
    from registry.training.ray import SnapshotDatasource
    from registry.training.sources import admit_job

    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    with Registry.open(create_home(tmp_path / "home").home) as reg:
        expected = churned(reg)
        admission, objects = admit_job("churn", reg)
        row_groups = {(t.object, t.row_group) for t in admission.plan.tasks if t.rows}
        tasks = SnapshotDatasource(admission, objects).get_read_tasks(64)
        assert len(tasks) == len(row_groups) < 64
        assert sum(task.metadata.num_rows for task in tasks) == expected.num_rows
