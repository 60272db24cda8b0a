"""Hugging Face ``datasets`` over a snapshot: exact rows, the fingerprint is the snapshot id, the
iterable form shards across DataLoader workers with each row once, and the gate is enforced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import Registry
from registry.context import create_home
from registry.errors import GateBlocked
from tests.support.training_support import BLOCKING, churned, key_values, need

datasets = need("datasets")
from registry.training.hf import to_hf_dataset, to_hf_iterable  # noqa: E402 - needs datasets, checked above


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    reg = Registry.open(create_home(tmp_path / "home").home)
    yield reg
    reg.close()


def test_a_map_style_dataset_has_the_rows_and_the_snapshot_id_as_fingerprint(local: Registry) -> None:
    expected = churned(local)
    ds = to_hf_dataset("churn", registry=local, job="hf-train")
    assert ds._fingerprint == local.show("churn").id
    assert ds.num_rows == expected.num_rows and sorted(ds["idx"]) == key_values(expected)
    assert dict(zip(ds["idx"], ds["value"], strict=True)) == dict(
        zip(expected.column("idx").to_pylist(), expected.column("value").to_pylist(), strict=True))
    narrow = to_hf_dataset("churn", ["idx", "label"], registry=local)
    assert narrow.column_names == ["idx", "label"] and narrow._fingerprint not in (ds._fingerprint, None)
    doubled = ds.map(lambda row: {"twice": row["value"] * 2})
    assert doubled._fingerprint != ds._fingerprint and doubled[0]["twice"] == doubled[0]["value"] * 2
    assert [e.details["job"] for e in local.audit_log(action="read.training")] == ["hf-train", None]


def test_an_iterable_dataset_shards_across_workers(local: Registry) -> None:
    torch = need("torch")
    expected = churned(local)
    ds = to_hf_iterable("churn", registry=local, shards=4)
    assert ds.num_shards == 4
    loader = torch.utils.data.DataLoader(ds.with_format("torch"), batch_size=100, num_workers=2)
    keys = [k for batch in loader for k in batch["idx"].tolist()]
    assert sorted(keys) == key_values(expected)
    assert len(local.audit_log(action="read.training")) == 1


def test_the_gate_is_enforced(local: Registry) -> None:
    churned(local, policy=BLOCKING)
    with pytest.raises(GateBlocked):
        to_hf_dataset("churn", registry=local)
    with pytest.raises(GateBlocked):
        to_hf_iterable("churn", registry=local)
    assert len(local.audit_log(action="gate.refuse")) == 2
