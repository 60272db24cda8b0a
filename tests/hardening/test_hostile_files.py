"""A corpus of malformed Parquet, Arrow, CSV, JSONL and Label Studio files through the real CLI (issue 22).

Every file must give exit 2 with a one-line error naming the file, never a crash (a signal, exit 4 or a
traceback), and leave the catalog and the store as they were. The files are made here with pyarrow and
plain bytes: truncations, flipped bytes, bombs, deep nesting, invalid UTF-8, duplicate and unsupported
columns.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Cli, CliResult

ROWS = pa.table({"id": list(range(50)), "label": [f"l{i % 3}" for i in range(50)]})
LIMITS = {"REGISTRY_MAX_INPUT_ROWS": "100000", "REGISTRY_MAX_INPUT_BYTES": str(32 << 20)}
ADDRESS_SPACE = 4 << 30
"""Each CLI run gets at most this much virtual memory: an input that makes a parser balloon fails the
run (MemoryError, exit 4) instead of pushing the machine into the OOM killer."""


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _run(cli: Cli, *args: str) -> CliResult:
    """``registry ARGS`` like :class:`Cli`, with :data:`LIMITS` and an address-space cap."""
    proc = subprocess.run([sys.executable, "-m", "registry.cli.main", *args], cwd=cli.cwd, env=cli.env(LIMITS),
                          capture_output=True, text=True, timeout=120, preexec_fn=_bounded)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _parquet(table: pa.Table = ROWS, **options: object) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)  # type: ignore[arg-type]
    return sink.getvalue()


def _flip(data: bytes, at: float) -> bytes:
    i = int(len(data) * at)
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


def _deep_struct(depth: int) -> pa.Table:
    value: pa.Array = pa.array([1])
    for _ in range(depth):
        value = pa.StructArray.from_arrays([value], ["x"])
    return pa.table({"id": [1], "deep": value})


CORPUS: dict[str, Callable[[], bytes]] = {
    "empty.parquet": lambda: b"",
    "text.parquet": lambda: b"id,label\n1,a\n",
    "truncated.parquet": lambda: _parquet()[:-40],
    "no-footer.parquet": lambda: _parquet()[:-8] + b"XXXXPAR1",
    "flipped-footer.parquet": lambda: _flip(_parquet(), 0.9),
    "flipped-page.parquet": lambda: _flip(_parquet(compression="zstd"), 0.2),
    "bomb.parquet": lambda: _parquet(pa.table({"id": pa.array(range(2_000_000), pa.int64())}), compression="zstd"),
    "deep-struct.parquet": lambda: _parquet(_deep_struct(100)),
    "union.parquet": lambda: b"PAR1" + os.urandom(200) + b"PAR1",
    "ragged.csv": lambda: b"id,label\n1,a\n2,b,c,d\n",
    "invalid-utf8.csv": lambda: b"id,label\n1,\xff\xfe\xfa\n",
    "duplicate.csv": lambda: b"id,label,label\n1,a,b\n",
    "binary.csv": lambda: os.urandom(4096),
    "deep.jsonl": lambda: b'{"id": 1, "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}\n",
    "deep-objects.jsonl": lambda: b'{"id": 1, "x": ' + b'{"a": ' * 3_000 + b"1" + b"}" * 3_000 + b"}\n",
    "middling.jsonl": lambda: b'{"id": 1, "x": ' + b"[" * 1_000 + b"]" * 1_000 + b"}\n",
    "mixed-types.jsonl": lambda: b'{"id": 1, "label": "a"}\n{"id": "two", "label": [1]}\n',
    "not-json.jsonl": lambda: b"{id: 1}\n",
    "invalid-utf8.jsonl": lambda: b'{"id": 1, "label": "\xff\xfe"}\n',
    "huge-number.jsonl": lambda: b'{"id": 1' + b"0" * 400 + b', "label": "a"}\n',
    "duplicate-keys.jsonl": lambda: b'{"id": 1, "label": "a", "label": "b"}\n',
}

LABEL_STUDIO: dict[str, Callable[[], bytes]] = {
    "ls-empty.json": lambda: b"",
    "ls-object.json": lambda: b'{"tasks": 1}',
    "ls-deep.json": lambda: b"[" * 100_000 + b"]" * 100_000,
    "ls-deep-task.json": lambda: b'[{"id": 1, "data": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}]",
    "ls-invalid-utf8.json": lambda: b'[{"id": 1, "data": {"text": "\xff"}}]',
    "ls-wrong-types.json": lambda: json.dumps([{"id": [1], "annotations": "x", "data": 3}]).encode(),
    "ls-huge-id.json": lambda: b'[{"id": 1' + b"0" * 5000 + b', "data": {}, "annotations": []}]',
    "ls-truncated.json": lambda: json.dumps([{"id": 1, "data": {"image": "a.png"}, "annotations": []}]).encode()[:-7],
}


def _snapshot_state(cli: Cli) -> tuple[str, str]:
    """(datasets with their heads and counts, the store's object names): what a refused input must not change."""
    listed = cli("dataset", "list", "--json")
    assert listed.code == 0, listed.stderr
    objects = sorted(p.name for p in (cli.home / "objects").rglob("*") if p.is_file())
    return listed.stdout, "\n".join(objects)


def _refused(result: CliResult, name: str) -> None:
    code, stderr = result.code, result.stderr
    assert code == 2, f"{name}: exit {code}\n{stderr}"
    assert "Traceback" not in stderr, f"{name}: {stderr}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    # named by file, or (a file that parses, e.g. invalid UTF-8 read as binary) by the schema rule it breaks
    assert len(lines) == 1 and (name in lines[0] or "schema" in lines[0]), f"{name}: {stderr}"


@pytest.fixture
def corpus_cli(cli: Cli) -> Cli:
    assert cli("dataset", "create", "signs", "--key", "id").code == 0
    (cli.cwd / "good.parquet").write_bytes(_parquet())
    assert cli("commit", "signs", str(cli.cwd / "good.parquet"), "-m", "good").code == 0
    return cli


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["table", "label-studio"])
def test_malformed_files_are_refused_with_exit_2(corpus_cli: Cli, kind: str) -> None:
    cli = corpus_cli
    before = _snapshot_state(cli)
    for name, make in (CORPUS if kind == "table" else LABEL_STUDIO).items():
        path = cli.cwd / name
        path.write_bytes(make())
        if kind == "table":
            args = ("commit", "signs", str(path), "--mode", "upsert" if "types" in name else "replace")
        else:
            args = ("import", "label-studio", "signs", str(path))
        _refused(_run(cli, *args), name)
    assert _snapshot_state(cli) == before
    assert cli("verify").code == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_deep_lineage_events_are_refused_with_exit_2(corpus_cli: Cli) -> None:
    for name, data in (("deep.json", b"[" * 100_000 + b"]" * 100_000),
                       ("deep-lines.jsonl", b'{"a": 1}\n' + b"[" * 100_000 + b"]" * 100_000 + b"\n")):
        (corpus_cli.cwd / name).write_bytes(data)
        result = _run(corpus_cli, "lineage", "ingest", str(corpus_cli.cwd / name))
        assert result.code == 2 and "nest" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_options_and_values_that_overflowed_are_exit_2(corpus_cli: Cli) -> None:
    cli = corpus_cli
    twice = cli("dataset", "create", "pairs", "--key", "a", "--key", "b")
    assert twice.code == 2 and "given 2 times" in twice.stderr
    assert "pairs" not in cli("dataset", "list", "--json").stdout
    for expires in ("99999999999d", "9999-12-31T23:59:59-05:00", "10000000000000000000000w"):
        token = cli("token", "create", "--name", "t1", "--role", "reader", "--expires", expires)
        assert token.code == 2 and "Traceback" not in token.stderr, token.stderr
        waiver = cli("gate", "waive", "signs", "--reason", "r", "--expires", expires)
        assert waiver.code == 2 and "Traceback" not in waiver.stderr, waiver.stderr
    newline = cli("dataset", "create", "signs\n", "--key", "id")
    assert newline.code == 2 and "invalid dataset name" in newline.stderr
    tag = cli("tag", "signs@main", "v1\n")
    assert tag.code == 2 and "invalid tag name" in tag.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_deep_json_inside_coco_and_yolo_zips_and_users_files_is_exit_2(corpus_cli: Cli) -> None:
    """The JSON documents read whole with json.loads (a COCO zip's result.json, a YOLO zip's notes.json,
    --users) are depth-checked first, so a deep one is exit 2, not a RecursionError (exit 4)."""
    import zipfile

    deep = b'{"images": [], "annotations": [], "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    cases = {"coco.zip": {"result.json": deep},
             "yolo.zip": {"classes.txt": b"cat\n", "notes.json": deep, "labels/a.txt": b"0 0.5 0.5 0.1 0.1\n"}}
    for name, members in cases.items():
        with zipfile.ZipFile(corpus_cli.cwd / name, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        result = _run(corpus_cli, "import", name.split(".")[0], "deep", str(corpus_cli.cwd / name))
        assert result.code == 2 and "nests" in result.stderr and "Traceback" not in result.stderr, result.stderr
    (corpus_cli.cwd / "users.json").write_bytes(b"[" * 50_000 + b"]" * 50_000)
    (corpus_cli.cwd / "ls.json").write_text('[{"id": 1, "data": {"image": "a.jpg"}, "annotations": []}]')
    result = _run(corpus_cli, "import", "label-studio", "deep", str(corpus_cli.cwd / "ls.json"),
                  "--users", str(corpus_cli.cwd / "users.json"))
    assert result.code == 2 and "nests" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert corpus_cli("dataset", "list", "--json").stdout.count('"deep"') == 0
