"""Empty CSV cells are nulls (``commit`` and ``import table``), and every command prints a null the
same way: ``null`` in JSON, one marker (``(null)``) in text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry import Registry
from registry.cli.main import main
from registry.cli.output import NULL

V1 = "sample_id,label,note\ns1,cat,\ns2,,x\ns3,dog,y\n"
V2 = "sample_id,label,note\ns1,,\ns2,cat,x\ns3,dog,\n"
VOTES = "item,worker,answer\ns1,w1,cat\ns1,,dog\ns2,w2,\n"


def run(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    code = main(["--home", str(home), *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_empty_csv_cells_are_nulls_and_print_as_one_marker(reg: Registry, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "v1.csv").write_text(V1)
    (tmp_path / "v2.csv").write_text(V2)
    reg.create_dataset("pets", "sample_id")
    home = reg.home
    run(home, capsys, "commit", "pets", str(tmp_path / "v1.csv"))
    rows = {r["sample_id"]: r for r in reg.read("pets@main").to_pylist()}
    assert (rows["s1"]["note"], rows["s2"]["label"]) == (None, None)
    run(home, capsys, "commit", "pets", str(tmp_path / "v2.csv"))
    text = run(home, capsys, "diff", "pets@main~1", "pets@main")
    assert f"label: 'cat' -> {NULL}" in text and "None" not in text
    assert json.loads(run(home, capsys, "diff", "pets@main~1", "pets@main", "--labels", "--json"))["changes"][0][
        "to"] is None
    labels = run(home, capsys, "diff", "pets@main~1", "pets@main", "--labels")
    assert NULL in labels and "None" not in labels
    table = run(home, capsys, "query", "SELECT NULL AS nothing, 1 AS one")
    assert table.splitlines()[1].split() == [NULL, "1"]
    assert json.loads(run(home, capsys, "query", "SELECT NULL AS nothing", "--format", "json")) == [{"nothing": None}]
    blame = run(home, capsys, "blame", "pets")
    assert NULL in blame and "None" not in blame


def test_import_table_reads_empty_cells_as_nulls(reg: Registry, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "votes.csv").write_text(VOTES)
    run(reg.home, capsys, "import", "table", "votes", str(tmp_path / "votes.csv"), "--map",
        "key=item,annotator=worker,value=answer")
    records = reg.annotations("votes@main").to_pylist()
    assert sorted(((r["sample_key"], r["annotator_id"], r["value"]) for r in records), key=str) == sorted([
        ("s1", None, "dog"), ("s1", "w1", "cat"), ("s2", "w2", None)], key=str)
    history = json.loads(run(reg.home, capsys, "history", "votes", "s2", "--json"))
    assert [e["value"] for e in history if e["kind"] == "label"] == [None]
    text = run(reg.home, capsys, "history", "votes", "s2")
    assert NULL in text and "None" not in text
