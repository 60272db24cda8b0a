"""The Python API round trip a training job relies on."""

from __future__ import annotations

from registry import Registry
from tests.support.helpers import labels_table, sorted_rows


def test_commit_then_read_returns_exactly_the_rows(reg: Registry) -> None:
    reg.create_dataset("street-signs", "sample_id")
    table = labels_table(500)
    result = reg.commit("street-signs", table, message="v1")
    reg.tag("street-signs@main", "v1")
    assert result.created and result.added == 500
    assert sorted_rows(reg.read("street-signs@v1")) == sorted_rows(table)
