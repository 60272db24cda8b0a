"""Errors carry their advice as data (``RegistryError.hint``) and each edge words it: the core's messages
hold no command-line syntax, the CLI prints the flag or the command, the API sends the hint as JSON, the
client exposes it as ``exc.hint``."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
import registry_client

from registry import Registry
from registry import errors as registry_errors
from registry.api.app import create_app
from registry.cli import output
from registry.cli.main import main
from registry.errors import BreakingSchemaChange, Hint, InvalidInput, NotFound, RegistryError
from registry.remote_service import to_local
from tests.support.api_support import bearer, parquet_bytes, serve
from tests.support.paths import ROOT

CLI_SYNTAX = re.compile(r"(?<![\w-])--[a-z]|`registry\b")
"""A flag (``--allow-breaking``) or a backquoted command line (```registry db upgrade```)."""

ERROR_CLASSES = {name for name, value in vars(registry_errors).items()
                 if isinstance(value, type) and issubclass(value, RegistryError)}

ROWS = pa.table({"sample_id": ["s1", "s2"], "label": ["cat", "dog"], "score": [1.0, 2.0]})
NARROW = pa.table({"sample_id": ["s1"], "label": ["cat"]})


def _message_texts(call: ast.Call) -> Iterator[tuple[int, str]]:
    """The string pieces of an error constructor's message (its positional arguments and ``message=``),
    leaving out ``hint=``, whose command values may hold arguments."""
    parts = [*call.args, *(k.value for k in call.keywords if k.arg == "message")]
    for part in parts:
        for node in ast.walk(part):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield node.lineno, node.value


def _core_error_messages() -> Iterator[tuple[str, int, str]]:
    for path in sorted((ROOT / "registry").rglob("*.py")):
        if "cli" in path.relative_to(ROOT / "registry").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in ERROR_CLASSES:
                for line, text in _message_texts(node):
                    yield str(path.relative_to(ROOT)), line, text


def test_core_error_messages_speak_no_cli() -> None:
    """Outside ``registry/cli`` no error message names a flag or a ``registry ...`` command line: API clients
    and the console would show shell advice. The advice belongs in ``hint=Hint(...)``."""
    found = list(_core_error_messages())
    assert len(found) > 100, "the scan found the raise sites"
    offenders = [f"{path}:{line}: {text!r}" for path, line, text in found if CLI_SYNTAX.search(text)]
    assert not offenders, "\n".join(offenders)


def test_the_scan_catches_cli_syntax() -> None:
    tree = ast.parse('raise InvalidInput(f"unknown --strategy {s!r}; see `registry merge`", hint=Hint("option", "x"))')
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "InvalidInput")
    assert [CLI_SYNTAX.search(t) is not None for _, t in _message_texts(call)] == [True, True]


def test_hint_is_frozen_data() -> None:
    hint = Hint("option", "allow_breaking")
    assert hint.to_dict() == {"kind": "option", "name": "allow_breaking", "value": None}
    with pytest.raises(FrozenInstanceError):
        hint.name = "other"  # type: ignore[misc]
    error = InvalidInput("no", hint=hint)
    assert error.hint is hint and error.message == "no"
    assert error.to_dict() == {"error": {"code": "invalid_input", "message": "no",
                                         "hint": {"kind": "option", "name": "allow_breaking", "value": None}}}
    assert NotFound("gone").hint is None and NotFound("gone").to_dict() == {"error": {"code": "not_found",
                                                                                      "message": "gone"}}
    conflicts = registry_errors.UnresolvedConflicts("c", [{"key": 1}], hint=Hint("option", "resolutions", "FILE"))
    assert conflicts.to_dict()["error"]["hint"] == {"kind": "option", "name": "resolutions", "value": "FILE"}


@pytest.mark.parametrize(("hint", "words"), [
    (Hint("option", "allow_breaking"), "--allow-breaking"),
    (Hint("option", "key", "sample_id"), "--key sample_id"),
    (Hint("command", "db upgrade"), "`registry db upgrade`"),
    (Hint("command", "policy set", "signs FILE"), "`registry policy set signs FILE`"),
    (Hint("value", "strategy", "fail, ours, theirs"), "--strategy fail|ours|theirs"),
    (Hint("field", "records", "DATASET@REF"), "records: DATASET@REF"),
])
def test_the_cli_words_hints_as_flags_and_commands(hint: Hint, words: str) -> None:
    assert output.hint_words(hint) == words
    assert output.with_hint("refused", hint) == f"refused ({words})"
    assert output.with_hint("refused", None) == "refused"


def test_python_api_error_carries_the_hint_not_the_flag(reg: Registry) -> None:
    reg.create_dataset("d", "sample_id")
    reg.commit("d", ROWS)
    with pytest.raises(BreakingSchemaChange) as refused:
        reg.commit("d", NARROW)
    assert refused.value.hint == Hint("option", "allow_breaking")
    assert "allow breaking changes" in refused.value.message
    assert not CLI_SYNTAX.search(refused.value.message)
    with pytest.raises(NotFound) as unknown:
        reg.show("nope")
    assert unknown.value.hint == Hint("command", "dataset list") and "`" not in unknown.value.message


def test_cli_prints_the_flag(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Registry.open(home) as reg:
        reg.create_dataset("d", "sample_id")
        reg.commit("d", ROWS)
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("sample_id,label\ns1,cat\n")
    capsys.readouterr()
    assert main(["--home", str(home), "commit", "d", str(narrow)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: d: breaking schema change") and err.endswith(
        "; allow breaking changes to commit it (--allow-breaking)\n"), err
    assert main(["--home", str(home), "commit", "d", str(narrow), "--json"]) == 2
    body = json.loads(capsys.readouterr().err)
    assert set(body["error"]) == {"code", "message"}, "the CLI's JSON keeps its shape; the hint is in its words"
    assert body["error"]["message"].endswith("(--allow-breaking)")
    assert main(["--home", str(home), "log", "nope"]) == 2
    assert capsys.readouterr().err == ("error: unknown dataset 'nope'; the list of datasets shows their names "
                                       "(`registry dataset list`)\n")


@pytest.fixture
def url(reg: Registry) -> Iterator[str]:
    with serve(create_app(reg.home)) as address:
        yield address


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url + "/api/v1", timeout=30) as client:
        yield client


def test_api_error_body_carries_the_hint_as_data(http: httpx.Client, reg: Registry) -> None:
    writer = bearer(reg, "etl", "writer")
    reg.create_dataset("d", "sample_id")
    reg.commit("d", ROWS)
    missing = http.get("/datasets/nope/log", headers=writer)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found",
                                        "message": "unknown dataset 'nope'; the list of datasets shows their names",
                                        "hint": {"kind": "command", "name": "dataset list", "value": None}}}
    breaking = http.post("/datasets/d/commits", headers=writer, files={"file": ("rows.parquet", parquet_bytes(NARROW))})
    assert breaking.status_code == 422, breaking.text
    error = breaking.json()["error"]
    assert error["code"] == "breaking_schema_change"
    assert error["hint"] == {"kind": "option", "name": "allow_breaking", "value": None}  # the query parameter
    assert not CLI_SYNTAX.search(error["message"])
    no_hint = http.get("/datasets", headers={"Authorization": "Bearer nope"})
    assert "hint" not in no_hint.json()["error"], "no hint, no member"


def test_client_exposes_the_hint(url: str, reg: Registry) -> None:
    token = bearer(reg, "etl", "writer")["Authorization"].removeprefix("Bearer ")
    with (registry_client.Client(url, token, timeout=30) as client,
          pytest.raises(registry_client.NotFound) as unknown):
        client.show("nope")
    assert unknown.value.hint == registry_client.Hint("command", "dataset list")
    assert registry_client.errors.error_for(422, "invalid_input", "m", None).hint is None
    assert registry_client.errors.error_for(422, "x", "m", {"kind": "option", "name": "key", "value": "id"}
                                            ).hint == registry_client.Hint("option", "key", "id")
    assert registry_client.errors.error_for(422, "x", "m", {"kind": 3}).hint is None  # not a hint: ignored
    local = to_local(unknown.value)
    assert isinstance(local, NotFound) and local.hint == Hint("command", "dataset list")  # the remote CLI words it


def test_console_words_hints_as_text(tmp_path: Path) -> None:
    """The console shows a hint in its own words (its field labels), as text nodes, never markup."""
    static = ROOT / "registry" / "ui" / "static"
    assert "innerHTML" not in (static / "dom.js").read_text() + (static / "api.js").read_text()
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    module = tmp_path / "dom.mjs"  # dom.js is an ES module; this copy lets node import it by its suffix
    shutil.copyfile(static / "dom.js", module)
    hints = [{"kind": "option", "name": "reason", "value": None},
             {"kind": "option", "name": "allow_breaking", "value": None},
             {"kind": "value", "name": "strategy", "value": "fail, ours, theirs"},
             {"kind": "command", "name": "db upgrade", "value": None}, None]
    script = (f"import({json.dumps(module.as_uri())}).then((m) => console.log(JSON.stringify("
              f"{json.dumps(hints)}.map(m.hintText))))")
    shown = json.loads(subprocess.run([node, "-e", script], capture_output=True, text=True, check=True,
                                      timeout=60).stdout)
    assert shown == ['use "Reason"', 'use "allow breaking"', '"Strategy" accepts fail, ours, theirs',
                     'an administrator can run "db upgrade" on the registry host', ""]
    assert not any("--" in text or "`registry" in text for text in shown)
