"""The ``registry`` command end to end: the whole tour, and every exit code and bad input.

Each path runs at least once as a real subprocess (the ``cli`` fixture); the exhaustive matrices call
``registry.cli.main.main`` in-process (same parsing, printing and exit-code mapping) to stay fast.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.cli.main import main
from registry.db import transaction
from registry.errors import NotFound
from registry.models import SnapshotRow
from tests.conftest import Cli, CliResult

NAME = "labels"
V1_CSV = "sample_id,label,score\ns1,cat,1\ns2,dog,2\ns3,cow,3\n"
V1_ROWS = [{"sample_id": "s1", "label": "cat", "score": 1}, {"sample_id": "s2", "label": "dog", "score": 2},
           {"sample_id": "s3", "label": "cow", "score": 3}]


# --- helpers ---------------------------------------------------------------------------------------------


def _by_key(rows: list[dict[str, Any]], key: str = "sample_id") -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: str(r[key]))


def _json(result: CliResult) -> Any:
    assert result.code == 0, f"exit {result.code}: {result.stderr}"
    return json.loads(result.stdout)


def _ok(result: CliResult) -> CliResult:
    assert result.code == 0, f"exit {result.code}: stdout={result.stdout!r} stderr={result.stderr!r}"
    return result


def _assert_one_error_line(result: CliResult, code: int) -> str:
    assert result.code == code, f"expected exit {code}, got {result.code}: {result.stderr!r}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"stderr should be one line, got {result.stderr!r}"
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def _assert_json_error(result: CliResult, code: int, error_code: str) -> str:
    assert result.code == code, f"expected exit {code}, got {result.code}: {result.stderr!r}"
    assert result.stdout == ""
    body = json.loads(result.stderr)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == error_code
    assert body["error"]["message"]
    message: str = body["error"]["message"]
    return message


def _objects(home: Path) -> set[str]:
    root = home / "objects"
    return {p.parent.name + p.name for p in root.glob("??/*") if p.is_file()}


@dataclass(frozen=True)
class _State:
    datasets: list[tuple[str, str | None, int]]
    history: dict[str, list[tuple[str, tuple[str, ...]]]]
    schemas: dict[str, int]
    objects: set[str]


def _state(home: Path) -> _State:
    """Everything a failed command must leave as it was: catalog rows, refs and stored objects."""
    with Registry.open(home) as reg:
        datasets = [(d.name, d.head, d.snapshots) for d in reg.datasets()]
        history: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for name, head, _ in datasets:
            history[name] = [(s.id, tuple(s.tags)) for s in reg.log(name)] if head else []
        schemas = {name: len(reg.schema(name)) for name, _, _ in datasets}
    return _State(datasets, history, schemas, _objects(home))


def _write(folder: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(extra)
    return env


def _run(cwd: Path, env: dict[str, str], *args: str) -> CliResult:
    proc = subprocess.run([sys.executable, "-m", "registry.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class InProcessCli:
    """``registry.cli.main.main`` called in this process: the same parsing, service calls, printing and
    exit-code mapping as the ``registry`` command, without a second of interpreter start-up per call."""

    home: Path
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> CliResult:
        self.capsys.readouterr()
        code = main(["--home", str(self.home), *args])
        captured = self.capsys.readouterr()
        return CliResult(code, captured.out, captured.err)


@pytest.fixture
def inproc(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
           ) -> InProcessCli:
    monkeypatch.chdir(tmp_path)
    return InProcessCli(home, capsys)


@pytest.fixture
def seeded(reg: Registry) -> Registry:
    """``labels`` keyed by sample_id with one snapshot (V1_ROWS) tagged v1."""
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, pa.Table.from_pylist(V1_ROWS), message="v1")
    reg.tag(NAME, "v1")
    return reg


# --- the tour --------------------------------------------------------------------------------------------


def test_init_without_home_is_found_walking_up(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deeper = project / "src" / "deeper"
    deeper.mkdir(parents=True)
    env = _clean_env()
    init = _ok(_run(project, env, "init"))
    assert "initialised" in init.stdout
    assert (project / ".registry" / "registry.json").is_file()
    assert (project / ".registry" / "catalog.db").is_file()

    _ok(_run(deeper, env, "dataset", "create", "vision/street-signs", "--key", "sample_id"))
    listed = _json(_run(deeper, env, "dataset", "list", "--json"))
    assert [d["name"] for d in listed] == ["vision/street-signs"]
    with Registry.open(project / ".registry") as reg:
        assert [d.name for d in reg.datasets()] == ["vision/street-signs"]


def test_tour(inproc: InProcessCli, home: Path, tmp_path: Path) -> None:
    """Every command, through ``main`` (argument parsing, printing, exit codes) on both catalogs."""
    cli = inproc
    created = _ok(cli("dataset", "create", NAME, "--key", "sample_id", "--description", "animal labels"))
    assert "created dataset labels" in created.stdout
    [listed] = _json(cli("dataset", "list", "--json"))
    assert listed["name"] == NAME and listed["key_columns"] == ["sample_id"]
    assert listed["description"] == "animal labels" and listed["head"] is None and listed["snapshots"] == 0

    # 1. CSV, replace.
    _write(tmp_path, {"v1.csv": V1_CSV})
    c1 = _json(cli("commit", NAME, "v1.csv", "-m", "first", "--json"))
    assert {"snapshot_id", "parent", "added", "changed", "removed", "rows", "bytes_written"} <= set(c1)
    assert (c1["parent"], c1["created"], c1["added"], c1["changed"], c1["removed"], c1["rows"]) == \
        (None, True, 3, 0, 0, 3)
    assert len(c1["snapshot_id"]) == 64 and c1["bytes_written"] > 0 and c1["compatibility"] == "initial"

    # 2. Parquet, replace: s2 changes, s3 goes, s4 comes; guarded by --expect-parent.
    pq.write_table(pa.table({"sample_id": ["s1", "s2", "s4"], "label": ["cat", "dog", "eel"],
                             "score": pa.array([1, 20, 4], pa.int64())}), tmp_path / "v2.parquet")
    c2 = _json(cli("commit", NAME, "v2.parquet", "--expect-parent", c1["snapshot_id"][:12], "--json"))
    assert (c2["parent"], c2["added"], c2["changed"], c2["removed"], c2["rows"]) == \
        (c1["snapshot_id"], 1, 1, 1, 3)

    # 3. JSON lines, upsert: s1 changes, s5 comes; nothing is removed.
    _write(tmp_path, {"up.jsonl": '{"sample_id": "s5", "label": "fox", "score": 5}\n'
                                  '{"sample_id": "s1", "label": "cat", "score": 10}\n'})
    c3 = _json(cli("commit", NAME, "up.jsonl", "--mode", "upsert", "--json"))
    assert (c3["parent"], c3["added"], c3["changed"], c3["removed"], c3["rows"]) == \
        (c2["snapshot_id"], 1, 1, 0, 4)

    # 4. Upsert with --delete-keys: s6 comes, s2 goes.
    _write(tmp_path, {"up2.csv": "sample_id,label,score\ns6,gnu,6\n", "del.csv": "sample_id\ns2\n"})
    c4_text = _ok(cli("commit", NAME, "up2.csv", "--mode", "upsert", "--delete-keys", "del.csv", "-m", "d"))
    c4 = c4_text.stdout.strip()
    assert len(c4) == 64 and "+1 ~0 -1 -> 4 rows" in c4_text.stderr
    head_rows = [{"sample_id": "s1", "label": "cat", "score": 10},
                 {"sample_id": "s4", "label": "eel", "score": 4},
                 {"sample_id": "s5", "label": "fox", "score": 5},
                 {"sample_id": "s6", "label": "gnu", "score": 6}]

    # No-change commits: exit 0, say so, create nothing.
    _write(tmp_path, {"head.csv": "sample_id,label,score\ns6,gnu,6\ns5,fox,5\ns4,eel,4\ns1,cat,10\n"})
    same = _ok(cli("commit", NAME, "head.csv"))
    assert "no change" in same.stdout and c4 in same.stdout
    same_upsert = _json(cli("commit", NAME, "up.jsonl", "--mode", "upsert", "--json"))
    assert same_upsert["created"] is False and same_upsert["snapshot_id"] == c4

    ids = [c4, c3["snapshot_id"], c2["snapshot_id"], c1["snapshot_id"]]
    log = _json(cli("log", NAME, "--json"))
    assert [e["id"] for e in log] == ids
    assert [e["parents"] for e in log] == [[ids[1]], [ids[2]], [ids[3]], []]
    assert log[0]["message"] == "d" and log[3]["message"] == "first"
    text_log = _ok(cli("log", NAME, "--limit", "2")).stdout
    assert f"snapshot {c4} (main)" in text_log and ids[1] in text_log and ids[2] not in text_log

    shown = _json(cli("show", f"{NAME}@main~1", "--json"))
    assert shown["id"] == ids[1] and shown["parents"] == [ids[2]]
    assert [(c["name"], c["type"]) for c in shown["schema"]] == [
        ("sample_id", "string"), ("label", "string"), ("score", "int64")]

    tagged = _ok(cli("tag", f"{NAME}@{ids[3][:10]}", "v1"))
    assert "tagged" in tagged.stdout and "v1" in tagged.stdout

    diff = _json(cli("diff", f"{NAME}@v1", f"{NAME}@main", "--json"))
    assert (diff["a"], diff["b"]) == (ids[3], c4)
    assert (diff["added"], diff["removed"], diff["changed"], diff["unchanged"]) == (3, 2, 1, 0)
    assert diff["changed_cells"] == {"label": 0, "score": 1}
    kinds = sorted((e["kind"], e["key"]) for e in diff["examples"])
    assert kinds == [("added", "s4"), ("added", "s5"), ("added", "s6"), ("changed", "s1"), ("removed", "s2"),
                     ("removed", "s3")]
    text_diff = _ok(cli("diff", f"{NAME}@v1", f"{NAME}@main")).stdout
    assert "added 3  removed 2  changed 1  unchanged 0" in text_diff

    [version] = _json(cli("schema", NAME, "--json"))
    assert version["version"] == 1 and version["compatibility"] == "initial"
    assert [c["name"] for c in version["columns"]] == ["sample_id", "label", "score"]

    exported = _json(cli("export", f"{NAME}@v1", "v1.parquet", "--json"))
    assert exported["rows"] == 3
    assert _by_key(pq.read_table(tmp_path / "v1.parquet").to_pylist()) == V1_ROWS
    _ok(cli("export", NAME, "head.out.csv"))
    with open(tmp_path / "head.out.csv", newline="") as fh:
        csv_rows = [{**r, "score": int(r["score"])} for r in csv.DictReader(fh)]
    assert _by_key(csv_rows) == head_rows
    _ok(cli("export", f"{NAME}@{c4[:8]}", "head.jsonl"))
    lines = (tmp_path / "head.jsonl").read_text().splitlines()
    assert _by_key([json.loads(line) for line in lines]) == head_rows

    verified = _ok(cli("verify"))
    assert verified.stdout.startswith("ok: 4 snapshot(s)")

    with Registry.open(home) as reg, transaction(reg.ctx.engine) as session:
        snapshot = session.get(SnapshotRow, c4)
        assert snapshot is not None
        old_manifest = snapshot.manifest_sha256
    compacted = _json(cli("compact", NAME, "--json"))
    assert compacted["snapshot_id"] == c4
    assert (compacted["layers_before"], compacted["layers_after"]) == (4, 1)
    with Registry.open(home) as reg:
        assert [s.id for s in reg.log(NAME)] == ids
        assert _by_key(reg.read(NAME).to_pylist()) == head_rows
        assert _by_key(reg.read(f"{NAME}@v1").to_pylist()) == V1_ROWS

    before_gc = _objects(home)
    dry = _json(cli("gc", "--dry-run", "--min-age", "0", "--json"))
    assert dry["dry_run"] is True and old_manifest in dry["deleted"]
    assert not set(dry["deleted"]) & {c4, *(e for e in ids)}
    assert _objects(home) == before_gc  # a dry run deletes nothing
    assert "would delete" in _ok(cli("gc", "--dry-run")).stdout
    swept = _json(cli("gc", "--min-age", "0", "--json"))
    assert swept["dry_run"] is False and sorted(swept["deleted"]) == sorted(dry["deleted"])
    assert old_manifest not in _objects(home)
    with Registry.open(home) as reg:
        assert reg.verify().ok
        assert _by_key(reg.read(f"{NAME}@main~1").to_pylist()) == _by_key(
            [*head_rows[:3], {"sample_id": "s2", "label": "dog", "score": 20}])


@pytest.mark.parametrize("backend", ["sqlite"])
def test_tour_in_real_processes(cli: Cli, home: Path, tmp_path: Path) -> None:
    """The main path once more with each command in its own process, as a user's shell runs it."""
    _ok(cli("dataset", "create", NAME, "--key", "sample_id"))
    _write(tmp_path, {"v1.csv": V1_CSV, "up.jsonl": '{"sample_id": "s4", "label": "eel", "score": 4}\n',
                      "del.csv": "sample_id\ns2\n"})
    c1 = _json(cli("commit", NAME, "v1.csv", "--json"))
    assert (c1["created"], c1["added"], c1["rows"]) == (True, 3, 3)
    pq.write_table(pa.table({"sample_id": ["s1", "s2", "s3"], "label": ["cat", "dog", "cow"],
                             "score": pa.array([1, 2, 30], pa.int64())}), tmp_path / "v2.parquet")
    c2 = cli("commit", NAME, "v2.parquet", "-m", "fix s3")
    assert c2.code == 0 and len(c2.stdout.strip()) == 64 and "+0 ~1 -0 -> 3 rows" in c2.stderr
    c3 = _json(cli("commit", NAME, "up.jsonl", "--mode", "upsert", "--delete-keys", "del.csv", "--json"))
    assert (c3["parent"], c3["added"], c3["changed"], c3["removed"], c3["rows"]) == \
        (c2.stdout.strip(), 1, 0, 1, 3)
    same = _ok(cli("commit", NAME, "up.jsonl", "--mode", "upsert"))
    assert same.stdout.startswith("no change") and c3["snapshot_id"] in same.stdout
    log = _json(cli("log", NAME, "--json"))
    assert [e["id"] for e in log] == [c3["snapshot_id"], c2.stdout.strip(), c1["snapshot_id"]]
    _ok(cli("export", f"{NAME}@main~2", "v1.jsonl"))
    assert _by_key([json.loads(line) for line in (tmp_path / "v1.jsonl").read_text().splitlines()]) == V1_ROWS
    assert _ok(cli("verify")).stdout.startswith("ok: 3 snapshot(s)")


def test_expect_parent_stale_is_exit_3(cli: Cli, inproc: InProcessCli, seeded: Registry, home: Path,
                                       tmp_path: Path) -> None:
    first = seeded.show(NAME).id
    second = seeded.commit(NAME, pa.Table.from_pylist([{**V1_ROWS[0], "score": 9}, *V1_ROWS[1:]])).snapshot_id
    before = _state(home)
    _write(tmp_path, {"new.csv": "sample_id,label,score\ns1,cat,100\n"})
    line = _assert_one_error_line(cli("commit", NAME, "new.csv", "--expect-parent", first[:12]), 3)
    assert first[:12] in line and second[:12] in line
    assert _state(home) == before
    body = _assert_json_error(inproc("commit", NAME, "new.csv", "--expect-parent", first, "--json"), 3,
                              "ref_conflict")
    assert first[:12] in body
    assert _state(home) == before


@pytest.mark.parametrize("backend", ["sqlite"])
def test_verify_after_corrupting_an_object_is_exit_1(cli: Cli, seeded: Registry, home: Path) -> None:
    with transaction(seeded.ctx.engine) as session:
        row = session.get(SnapshotRow, seeded.show(NAME).id)
        assert row is not None
        change = row.change_sha256
    path = home / "objects" / change[:2] / change[2:]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    result = cli("verify")
    assert result.code == 1 and result.stdout == ""
    assert result.stderr.startswith("verify failed: ") and change in result.stderr


# --- user errors: exit 2, one line, nothing changed ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    code: str = "invalid_input"
    mentions: str = ""


GOOD: dict[str, str | bytes] = {"good.csv": "sample_id,label,score\ns1,cat,1\ns9,yak,9\n"}

CATALOG_CASES = [
    Case("unknown-dataset", ("commit", "nope", "good.csv"), GOOD, "not_found", "nope"),
    Case("unknown-dataset-log", ("log", "nope"), code="not_found", mentions="nope"),
    Case("unknown-ref", ("show", f"{NAME}@nope"), code="not_found", mentions="nope"),
    Case("unknown-id-export", ("export", f"{NAME}@deadbeef00", "out.csv"), code="not_found",
         mentions="deadbeef00"),
    Case("bad-dataset-name", ("dataset", "create", "Bad Name", "--key", "id"), code="invalid_name",
         mentions="Bad Name"),
    Case("existing-dataset", ("dataset", "create", NAME, "--key", "id"), code="already_exists",
         mentions=NAME),
    Case("breaking-schema", ("commit", NAME, "narrow.csv"), {"narrow.csv": "sample_id,label\ns1,cat\n"},
         "breaking_schema_change", "--allow-breaking"),
    Case("reused-tag", ("tag", f"{NAME}@main", "v1"), code="already_exists", mentions="v1"),
    Case("delete-absent-keys", ("commit", NAME, "--mode", "upsert", "--delete-keys", "absent.csv"),
         {"absent.csv": "sample_id\nzzz\n"}, mentions="zzz"),
]

INPUT_CASES = [
    Case("ragged-csv", ("commit", NAME, "ragged.csv"),
         {"ragged.csv": "sample_id,label,score\ns1,cat,1\ns2,dog\n"}, mentions="ragged.csv"),
    Case("garbage-parquet", ("commit", NAME, "garbage.parquet"),
         {"garbage.parquet": b"PAR1\x00\xff\xfe garbage bytes \x01\x02" * 8}, mentions="garbage.parquet"),
    Case("invalid-jsonl", ("commit", NAME, "bad.jsonl"),
         {"bad.jsonl": '{"sample_id": "s1", "label": "cat", "score": 1}\n{not json at all\n'},
         mentions="bad.jsonl"),
    Case("missing-key-column", ("commit", NAME, "nokey.csv"), {"nokey.csv": "label,score\ncat,1\n"},
         mentions="sample_id"),
    Case("null-key", ("commit", NAME, "nullkey.jsonl"),
         {"nullkey.jsonl": '{"sample_id": "s1", "label": "cat", "score": 1}\n'
                           '{"sample_id": null, "label": "dog", "score": 2}\n'}, mentions="null"),
    Case("duplicate-keys", ("commit", NAME, "dup.csv"),
         {"dup.csv": "sample_id,label,score\ns1,cat,1\ns1,dog,2\n"}, mentions="duplicate"),
    Case("empty-csv-key-cell", ("commit", NAME, "empty.csv"),  # an empty CSV cell is null
         {"empty.csv": "sample_id,label,score\n,cat,1\ns2,d,2\n"}, mentions="null"),
    Case("empty-string-key", ("commit", NAME, "empty.jsonl"),
         {"empty.jsonl": '{"sample_id": "", "label": "cat", "score": 1}\n'}, mentions="empty"),
    Case("upsert-duplicate-keys", ("commit", NAME, "dup.csv", "--mode", "upsert"),
         {"dup.csv": "sample_id,label,score\ns1,cat,1\ns1,dog,2\n"}, mentions="duplicate"),
    Case("unknown-suffix", ("commit", NAME, "data.txt"), {"data.txt": "sample_id,label,score\ns1,cat,1\n"},
         mentions=".txt"),
    Case("no-suffix", ("commit", NAME, "data"), {"data": "sample_id,label,score\ns1,cat,1\n"}),
    Case("missing-file", ("commit", NAME, "missing.csv"), mentions="missing.csv"),
    Case("delete-keys-with-replace", ("commit", NAME, "good.csv", "--delete-keys", "del.csv"),
         {**GOOD, "del.csv": "sample_id\ns2\n"}, mentions="--mode upsert"),
    Case("delete-and-upsert-same-key",
         ("commit", NAME, "good.csv", "--mode", "upsert", "--delete-keys", "del.csv"),
         {**GOOD, "del.csv": "sample_id\ns1\n"}, mentions="s1"),
    Case("delete-keys-missing-column", ("commit", NAME, "--mode", "upsert", "--delete-keys", "del.csv"),
         {"del.csv": "label\ncat\n"}, mentions="sample_id"),
    Case("upsert-other-columns", ("commit", NAME, "other.csv", "--mode", "upsert"),
         {"other.csv": "sample_id,label,weight\ns1,cat,1.5\n"}, mentions="weight"),
    Case("nothing-to-commit", ("commit", NAME)),
    Case("bad-mode", ("commit", NAME, "good.csv", "--mode", "merge"), GOOD, "usage", "merge"),
    Case("export-unknown-suffix", ("export", NAME, "out.txt"), mentions=".txt"),
    Case("tag-named-main", ("tag", NAME, "main"), code="invalid_name", mentions="main"),
    Case("tag-looks-like-id", ("tag", NAME, "deadbeef"), code="invalid_name", mentions="deadbeef"),
    Case("ancestry-past-root", ("show", f"{NAME}@main~1"), code="not_found"),
    Case("nothing-after-at", ("log", f"{NAME}@"), code="invalid_name"),
    Case("verify-bad-name", ("verify", "Labels"), code="invalid_name", mentions="Labels"),
    Case("empty-file", ("commit", NAME, "empty.csv"), {"empty.csv": ""}, mentions="empty.csv"),
    Case("limit-zero", ("log", NAME, "--limit", "0"), code="usage", mentions="--limit"),
    Case("key-named-twice", ("dataset", "create", "other", "--key", "a,a")),
    Case("init-non-home-folder", ("init", "busy"), {"busy/notes.txt": "mine"}, mentions="busy"),
    Case("upsert-wrong-type", ("commit", NAME, "typed.csv", "--mode", "upsert"),
         {"typed.csv": "sample_id,label,score\ns1,cat,abc\n"}, "breaking_schema_change", "'score' is string"),
    Case("upsert-wrong-type-allowed", ("commit", NAME, "typed.csv", "--mode", "upsert", "--allow-breaking"),
         {"typed.csv": "sample_id,label,score\ns1,cat,abc\n"}, mentions="abc"),
    # "every error becomes one line on stderr" (cli.main.main), even when a user's path holds a newline.
    Case("newline-in-path", ("commit", NAME, "no\nsuch.csv"), mentions="such.csv"),
    # A bad output path is the user's mistake like any other: exit 2, not an internal error (exit 4).
    Case("export-to-missing-folder", ("export", NAME, "no-such-folder/out.csv"), mentions="no-such-folder"),
]

JSON_CASES = ["unknown-dataset", "breaking-schema", "reused-tag", "bad-dataset-name", "ragged-csv",
              "null-key", "bad-mode", "missing-file"]
ALL_CASES = {case.name: case for case in CATALOG_CASES + INPUT_CASES}


def _check_user_error(case: Case, cli: Callable[..., CliResult], home: Path, tmp_path: Path,
                      as_json: bool) -> None:
    _write(tmp_path, case.files)
    before = _state(home)
    if as_json:
        message = _assert_json_error(cli(*case.args, "--json"), 2, case.code)
    else:
        message = _assert_one_error_line(cli(*case.args), 2)
    assert case.mentions in message
    after = _state(home)
    assert after.history == before.history and after.datasets == before.datasets
    assert after.schemas == before.schemas
    assert after.objects == before.objects, "a rejected command left objects behind"


@pytest.mark.parametrize("case", CATALOG_CASES, ids=lambda c: c.name)
def test_user_error_on_both_backends(case: Case, inproc: InProcessCli, seeded: Registry, home: Path,
                                     tmp_path: Path) -> None:
    _check_user_error(case, inproc, home, tmp_path, as_json=False)
    if case.name in JSON_CASES:
        _check_user_error(case, inproc, home, tmp_path, as_json=True)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("case", INPUT_CASES, ids=lambda c: c.name)
def test_bad_input(case: Case, inproc: InProcessCli, seeded: Registry, home: Path, tmp_path: Path) -> None:
    _check_user_error(case, inproc, home, tmp_path, as_json=False)
    if case.name in JSON_CASES:
        _check_user_error(case, inproc, home, tmp_path, as_json=True)


@pytest.mark.parametrize(("name", "as_json"), [("unknown-dataset", False), ("breaking-schema", True)])
def test_catalog_error_in_a_real_process(name: str, as_json: bool, cli: Cli, seeded: Registry, home: Path,
                                         tmp_path: Path) -> None:
    """The same contract holds for the command in its own process: exit status, one stderr line or JSON."""
    _check_user_error(ALL_CASES[name], cli, home, tmp_path, as_json=as_json)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(("name", "as_json"),
                         [("ragged-csv", False), ("null-key", True), ("bad-mode", False)])
def test_input_error_in_a_real_process(name: str, as_json: bool, cli: Cli, seeded: Registry, home: Path,
                                       tmp_path: Path) -> None:
    _check_user_error(ALL_CASES[name], cli, home, tmp_path, as_json=as_json)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_no_home_found(cli: Cli, seeded: Registry, home: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> None:
    before = _state(home)
    empty = tmp_path_factory.mktemp("nowhere")
    assert not any((p / ".registry").exists() for p in (empty, *empty.parents))
    env = _clean_env()
    line = _assert_one_error_line(_run(empty, env, "log", NAME), 2)
    assert "registry init" in line
    _assert_json_error(_run(empty, env, "dataset", "list", "--json"), 2, "home_not_found")
    not_a_home = _run(empty, _clean_env(REGISTRY_HOME=str(empty)), "log", NAME)
    assert str(empty) in _assert_one_error_line(not_a_home, 2)
    assert _state(home) == before


def test_error_then_success_leaves_consistent_history(inproc: InProcessCli, seeded: Registry, home: Path,
                                                      tmp_path: Path) -> None:
    """A rejected commit does not poison the next one: it lands right on top of the old head."""
    cli = inproc
    head = seeded.show(NAME).id
    _write(tmp_path, {"narrow.csv": "sample_id,label\ns1,cat\n"})
    _assert_one_error_line(cli("commit", NAME, "narrow.csv"), 2)
    result = _json(cli("commit", NAME, "narrow.csv", "--allow-breaking", "--json"))
    assert (result["parent"], result["compatibility"], result["schema_version"]) == (head, "breaking", 2)
    assert [s.id for s in seeded.log(NAME)] == [result["snapshot_id"], head]
    with pytest.raises(NotFound):
        seeded.show(f"{NAME}@main~2")
