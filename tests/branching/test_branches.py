"""Branches: O(1) creation, listing, deletion with its refusals, protection, and commits to a branch."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.errors import AlreadyExists, InvalidInput, InvalidName, NotFound, PermissionDenied
from tests.conftest import Cli
from tests.support.helpers import labels_table


def _setup(reg: Registry, n: int = 200) -> pa.Table:
    reg.create_dataset("ds", "sample_id")
    table = labels_table(n)
    reg.commit("ds", table, message="v1")
    return table


def _relabel(table: pa.Table, rows: list[int], label: str) -> pa.Table:
    picked = table.take(pa.array(rows))
    return picked.set_column(picked.schema.get_field_index("label"), "label", pa.array([label] * len(rows)))


def test_branch_create_copies_nothing_and_commits_stay_on_the_branch(reg: Registry) -> None:
    table = _setup(reg)
    main_head = reg.show("ds").id
    objects_before = sorted(p.name for p in (reg.home / "objects").rglob("*") if p.is_file())
    info = reg.branch("ds/relabel")
    assert info.snapshot_id == main_head and info.name == "relabel"
    assert sorted(p.name for p in (reg.home / "objects").rglob("*") if p.is_file()) == objects_before

    result = reg.commit("ds@relabel", _relabel(table, [0, 1], "cat"), mode="upsert", message="relabel")
    assert result.parent == main_head
    assert reg.show("ds@relabel").id == result.snapshot_id
    assert reg.show("ds").id == main_head, "main did not move"
    assert reg.show("ds@relabel~1").id == main_head
    assert [s.id for s in reg.log("ds@relabel")] == [result.snapshot_id, main_head]
    assert reg.diff("ds@main", "ds@relabel").changed == 2
    branches = {b.name: b for b in reg.branches("ds")}
    assert list(branches) == ["main", "relabel"]
    assert branches["relabel"].merged is False and branches["main"].merged is True
    events = [e.action for e in reg.audit_log(dataset="ds")]
    assert "branch.create" in events


def test_branch_from_an_older_ref_and_refusals(reg: Registry) -> None:
    table = _setup(reg)
    first = reg.show("ds").id
    reg.commit("ds", _relabel(table, [3], "dog"), mode="upsert")
    assert reg.branch("ds/old", from_ref="main~1").snapshot_id == first
    with pytest.raises(AlreadyExists):
        reg.branch("ds/old")
    for bad in ("ds/main", "ds/deadbeefcafe", "ds/a b", "ds/x~1"):
        with pytest.raises(InvalidName):
            reg.branch(bad)
    with pytest.raises(NotFound):
        reg.branch("ds/new", from_ref="nope")
    with pytest.raises(NotFound):
        reg.commit("ds@missing", table)
    assert [b.name for b in reg.branches("ds")] == ["main", "old"]


def test_delete_refuses_main_protected_and_unmerged_work(reg: Registry) -> None:
    table = _setup(reg)
    reg.branch("ds/done")
    reg.branch("ds/work")
    reg.commit("ds@work", _relabel(table, [5], "owl"), mode="upsert")
    with pytest.raises(InvalidInput, match="cannot be deleted"):
        reg.delete_branch("ds/main")
    with pytest.raises(InvalidInput, match="not merged"):
        reg.delete_branch("ds/work")
    reg.protect("ds/done")
    with pytest.raises(InvalidInput, match="protected"):
        reg.delete_branch("ds/done")
    reg.protect("ds/done", protected=False)
    assert reg.delete_branch("ds/done").merged is True
    gone = reg.delete_branch("ds/work", force=True)
    assert [b.name for b in reg.branches("ds")] == ["main"]
    # The snapshot stays: it is readable by id after its branch is gone.
    assert reg.read(f"ds@{gone.snapshot_id}").num_rows == table.num_rows
    actions = [e.action for e in reg.audit_log(dataset="ds")]
    assert actions.count("branch.delete") == 2 and actions.count("branch.protect") == 2


def test_protected_branch_refuses_direct_commits_audited(reg: Registry) -> None:
    table = _setup(reg)
    head = reg.show("ds").id
    reg.protect("ds/main")
    with pytest.raises(PermissionDenied, match="protected"):
        reg.commit("ds", _relabel(table, [0], "x"), mode="upsert")
    assert reg.show("ds").id == head
    denied = reg.audit_log(dataset="ds", action="commit.denied")
    assert len(denied) == 1 and denied[0].details["branch"] == "main"
    assert [b.protected for b in reg.branches("ds")] == [True]


def test_only_maintainers_protect(reg: Registry) -> None:
    reg.create_dataset("ds", "sample_id", owner="alice")
    reg.commit("ds", labels_table(10), author="alice")
    with pytest.raises(PermissionDenied):
        reg.protect("ds/main", actor="mallory")
    assert reg.protect("ds/main", actor="alice").protected


def test_cli_branch_commands(reg: Registry, cli: Cli, tmp_path: Path) -> None:
    table = _setup(reg)
    assert cli("branch", "create", "ds/feat", "--json").code == 0
    listed = json.loads(cli("branch", "list", "ds", "--json").stdout)
    assert [b["name"] for b in listed] == ["main", "feat"]
    text = cli("branch", "list", "ds")
    assert "feat" in text.stdout and text.code == 0
    path = tmp_path / "up.parquet"
    pq.write_table(_relabel(table, [1], "zebra"), path)
    res = cli("commit", "ds@feat", str(path), "--mode", "upsert", "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["parent"] == listed[0]["snapshot_id"]
    assert cli("branch", "protect", "ds/main").code == 0
    refused = cli("commit", "ds", str(path), "--mode", "upsert")
    assert refused.code == 2 and "protected" in refused.stderr
    assert cli("branch", "delete", "ds/feat").code == 2
    assert cli("branch", "delete", "ds/feat", "--force").code == 0
    assert cli("branch", "create", "ds/BAD NAME").code == 2
    assert cli("branch", "create", "nosuch/x").code == 2
    log = json.loads(cli("log", "ds@main", "--json").stdout)
    assert len(log) == 1


def test_import_to_a_branch_keeps_main_and_its_records(reg: Registry, tmp_path: Path) -> None:
    from tests.support import provenance_fixtures as lsx

    reg.import_annotations("label-studio", "signs", lsx.write(tmp_path / "v1.json", lsx.export_v1()), key="image",
                           guideline_version="g1")
    main_head = reg.show("signs").id
    reg.branch("signs/round2")
    result = reg.import_annotations("label-studio", "signs@round2", lsx.write(tmp_path / "v2.json", lsx.export_v2()),
                                    key="image", guideline_version="g2")
    assert result.commit.parent == main_head and reg.show("signs").id == main_head
    assert reg.show("signs@round2").id == result.commit.snapshot_id
    assert reg.annotations("signs@round2").num_rows > 0
    assert reg.label_diff("signs@main", "signs@round2").to_dict()


def test_qa_run_and_gate_check_take_branch_refs(reg: Registry, cli: Cli) -> None:
    table = _setup(reg)
    reg.set_policy("ds", "checks:\n  - check: row_count\n    min: 200\n")
    reg.branch("ds/shrink")
    reg.commit("ds@shrink", None, mode="upsert", delete_keys=table.select(["sample_id"]).slice(0, 5))
    result = reg.qa_run("ds@shrink")
    assert result.snapshot_id == reg.show("ds@shrink").id and result.status == "failed"
    assert not reg.gate("ds@shrink").passes
    res = cli("gate", "check", "ds@shrink", "--json")
    assert res.code == 1 and json.loads(res.stdout)["snapshot_id"] == result.snapshot_id


def test_a_branch_protected_during_a_commit_refuses_it_in_the_commit_transaction(
        reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The protection is checked in the transaction that moves the branch: a branch protected after the
    commit's early check (here: once its objects are written) does not receive the commit."""
    import registry.snapshots.commit as commit_module

    table = _setup(reg)
    head = reg.show("ds").id
    real = commit_module.failpoint

    def protect_midway(point: str) -> None:
        if point == "commit:after-manifest":
            reg.protect("ds/main")
        real(point)

    monkeypatch.setattr(commit_module, "failpoint", protect_midway)
    with pytest.raises(PermissionDenied, match="protected"):
        reg.commit("ds", _relabel(table, [0], "cat"), mode="upsert")
    assert reg.show("ds").id == head
    assert len(reg.log("ds")) == 1
    assert len(reg.audit_log(dataset="ds", action="commit.denied")) == 1


def test_commits_on_a_branch_follow_its_own_schema_not_another_branchs(reg: Registry) -> None:
    """After a branch adds a column, main's upserts are checked against main's schema (not refused for
    lacking the column), and main adopting that schema later starts a new base layer (readable)."""
    table = _setup(reg, 20)
    reg.branch("ds/wide")
    wide = table.append_column("note", pa.array(["n"] * 20))
    reg.commit("ds@wide", wide, message="add note")
    reg.commit("ds", _relabel(table, [0], "cat"), mode="upsert")
    assert reg.read("ds").schema.names == table.schema.names
    result = reg.commit("ds", wide)
    assert result.created and reg.read("ds").num_rows == 20 and reg.read("ds").schema.names == wide.schema.names
    assert reg.show("ds").schema_version == reg.show("ds@wide").schema_version
    assert reg.verify().ok
