"""``registry gate check`` exit codes (what CI relies on), waivers, maintainer rights and policy YAML
errors, through the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import Session, col, select

from registry import Registry
from registry.audit.models import AuditEventRow
from registry.errors import InvalidInput, PermissionDenied
from registry.timeutil import parse_expiry
from tests.conftest import Cli

PASSING = "checks:\n  - check: row_count\n    min: 3\n"
FAILING = "maintainers: [bob]\nchecks:\n  - check: row_count\n    min: 3\n  - check: not_null\n    columns: [label]\n"


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture
def labelled(cli: Cli, tmp_path: Path) -> Cli:
    """A dataset ``labels`` owned by alice with one snapshot of 4 rows, one label null."""
    assert cli("dataset", "create", "labels", "--key", "sample_id", "--owner", "alice").code == 0
    table = pa.table({"sample_id": ["a", "b", "c", "d"], "label": ["x", "y", None, "x"]})
    pq.write_table(table, tmp_path / "v1.parquet")
    assert cli("commit", "labels", str(tmp_path / "v1.parquet")).code == 0
    return cli


def _actions(home: Path) -> list[str]:
    with Registry.open(home) as reg, Session(reg.ctx.engine) as session:
        return [e.action for e in session.exec(select(AuditEventRow).order_by(col(AuditEventRow.seq))).all()]


def test_gate_check_exit_codes_never_evaluated_pass_stale_fail(labelled: Cli, tmp_path: Path) -> None:
    cli = labelled
    no_policy = cli("gate", "check", "labels")
    assert no_policy.code == 1 and "no QA policy" in no_policy.stdout

    assert cli("--author", "alice", "policy", "set", "labels", _write(tmp_path / "p.yaml", PASSING)).code == 0
    never = cli("gate", "check", "labels", "--json")
    assert never.code == 1
    assert json.loads(never.stdout)["state"] == "never_evaluated"

    run = cli("qa", "run", "labels")
    assert run.code == 0, run.stderr
    assert "row_count" in run.stdout and "pass" in run.stdout
    passed = cli("gate", "check", "labels")
    assert passed.code == 0 and "gate passed under policy v1" in passed.stdout

    assert cli("--author", "alice", "policy", "set", "labels", _write(tmp_path / "p.yaml", FAILING)).code == 0
    stale = cli("gate", "check", "labels")
    assert stale.code == 1 and "stale" in stale.stdout and "policy changed" in stale.stdout

    evaluated = cli("gate", "check", "labels", "--evaluate", "--json")
    assert evaluated.code == 1
    body = json.loads(evaluated.stdout)
    assert body["state"] == "failed" and body["policy_version"] == 2
    assert body["failed"] == [{"name": "not_null", "check": "not_null", "metric": 1, "threshold": "<= 0",
                               "error": None}]
    human = cli("gate", "check", "labels")
    assert human.code == 1 and "failed: not_null (not_null): 1 vs <= 0" in human.stdout
    assert _actions(cli.home).count("gate.evaluate") == 2


def test_waiver_passes_the_gate_and_says_so(labelled: Cli, tmp_path: Path) -> None:
    cli = labelled
    cli("--author", "alice", "policy", "set", "labels", _write(tmp_path / "p.yaml", FAILING))
    assert cli("qa", "run", "labels").code == 1  # a failed verdict fails the command, as in dbt and GX
    assert cli("qa", "run", "labels", "--no-fail").code == 0
    assert cli("gate", "check", "labels").code == 1

    wrong = cli("--author", "bob", "gate", "waive", "labels", "--reason", "r", "--checks", "no_such_check")
    assert wrong.code == 2 and "no check 'no_such_check'" in wrong.stderr
    denied = cli("--author", "carol", "gate", "waive", "labels", "--reason", "ship it")
    assert denied.code == 2 and "may not waive" in denied.stderr

    waived = cli("--author", "bob", "gate", "waive", "labels", "--reason", "null label is known", "--checks",
                 "not_null", "--expires", "7d", "--json")
    assert waived.code == 0, waived.stderr
    waiver = json.loads(waived.stdout)
    assert waiver["checks"] == ["not_null"] and waiver["created_by"] == "bob" and waiver["expires_at"]

    check = cli("gate", "check", "labels")
    assert check.code == 0 and "BY WAIVER" in check.stdout and "null label is known" in check.stdout
    body = json.loads(cli("gate", "check", "labels", "--json").stdout)
    assert body["state"] == "waived" and body["waiver"]["id"] == waiver["id"]
    assert [c["name"] for c in body["failed"]] == ["not_null"]
    assert "BY WAIVER" in cli("qa", "run", "labels").stdout
    assert "gate.waive" in _actions(cli.home)


def test_partial_waiver_does_not_cover_other_checks(labelled: Cli, tmp_path: Path) -> None:
    cli = labelled
    two = FAILING + "  - check: row_count\n    name: many_rows\n    min: 100\n"
    cli("--author", "alice", "policy", "set", "labels", _write(tmp_path / "p.yaml", two))
    cli("qa", "run", "labels")
    assert cli("--author", "alice", "gate", "waive", "labels", "--reason", "r", "--checks", "not_null").code == 0
    still = cli("gate", "check", "labels")
    assert still.code == 1 and "many_rows" in still.stdout
    assert cli("--author", "alice", "gate", "waive", "labels", "--reason", "r", "--checks",
               "many_rows,not_null").code == 0
    assert cli("gate", "check", "labels").code == 0


def test_only_owner_and_maintainers_change_the_policy(reg: Registry) -> None:
    reg.create_dataset("labels", "sample_id", owner="alice")
    reg.commit("labels", pa.table({"sample_id": ["a"], "label": ["x"]}))
    with pytest.raises(PermissionDenied, match="only its owner and maintainers"):
        reg.set_policy("labels", PASSING, actor="mallory")
    first = reg.set_policy("labels", FAILING, actor="alice")  # lists bob as maintainer
    assert first.version == 1 and first.maintainers == ["bob"]
    weaker = reg.set_policy("labels", PASSING, actor="bob")
    assert weaker.version == 2 and weaker.created_by == "bob"
    with pytest.raises(PermissionDenied):  # bob removed himself with that policy
        reg.set_policy("labels", FAILING, actor="bob")
    with pytest.raises(PermissionDenied, match="may not waive"):
        reg.waive("labels", "because", actor="mallory")
    assert reg.policy("labels").version == 2
    assert reg.policy("labels", version=1).document == FAILING
    assert reg.set_policy("labels", PASSING, actor="alice").created is False  # same document: no new version
    assert PermissionDenied("x").code == "permission_denied"


def test_permission_denied_is_exit_2_and_audited_policy_set(labelled: Cli, tmp_path: Path) -> None:
    cli = labelled
    denied = cli("--author", "mallory", "policy", "set", "labels", _write(tmp_path / "p.yaml", PASSING), "--json")
    assert denied.code == 2 and json.loads(denied.stderr)["error"]["code"] == "permission_denied"
    assert cli("--author", "alice", "policy", "set", "labels", str(tmp_path / "p.yaml")).code == 0
    shown = cli("policy", "show", "labels", "--json")
    assert json.loads(shown.stdout)["checks"][0]["name"] == "row_count"
    assert _actions(cli.home).count("policy.set") == 1


@pytest.mark.parametrize(("document", "expected"), [
    ("checks:\n  - check: row_count\n    min: 1\n  - check: not_null\n    columns: {label: 1}\n",
     "line 5: checks[1].columns: Input should be a valid list"),
    ("checks:\n  - check: row_kount\n    min: 1\n", "line 2: checks[0]: unknown check type 'row_kount'; use one of"),
    ("checks:\n  - check: row_count\n    min: 1\n    mx: 2\n", "line 4: checks[0].mx: unknown field"),
    ("checks:\n  - check: row_count\n", "line 2: checks[0]: give min, max or both"),
    ("checks:\n  - check: class_balance\n    column: label\n    min_share: 1.5\n",
     "line 4: checks[0].min_share: Input should be less than or equal to 1"),
    ("checks:\n  - check: row_count\n    min: 1\n  - check: row_count\n    max: 2\n",
     "line 4: checks[1].name: two checks are named 'row_count'"),
    ("checks: [\n", "line 2: not valid YAML"),
    ("- just a list\n", "line 1: a policy is a mapping"),
])
def test_policy_yaml_errors_name_line_and_field(labelled: Cli, tmp_path: Path, document: str, expected: str) -> None:
    result = labelled("--author", "alice", "policy", "set", "labels", _write(tmp_path / "bad.yaml", document))
    assert result.code == 2
    assert expected in result.stderr, result.stderr
    assert "bad.yaml" in result.stderr


def test_expiry_parsing() -> None:
    assert parse_expiry("2999-01-01").startswith("2999-01-01T00:00:00")
    assert parse_expiry("2h") > parse_expiry("1h")
    with pytest.raises(InvalidInput, match="in the past"):
        parse_expiry("2001-01-01T00:00:00Z")
    with pytest.raises(InvalidInput, match="duration"):
        parse_expiry("soon")


def test_expired_waiver_no_longer_passes(reg: Registry) -> None:
    from registry.db import transaction
    from registry.quality.models import WaiverRow

    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", pa.table({"sample_id": ["a"], "label": [None]}, schema=pa.schema([("sample_id", pa.string()),
                                                                                           ("label", pa.string())])))
    reg.set_policy("labels", FAILING)
    reg.qa_run("labels")
    waiver = reg.waive("labels", "temporary", expires="1h")
    assert reg.gate("labels").state == "waived"
    with transaction(reg.ctx.engine) as session:  # let the hour pass
        row = session.get_one(WaiverRow, waiver.id)
        row.expires_at = "2000-01-01T00:00:00.000000Z"
        session.add(row)
    assert reg.gate("labels").state == "failed"


def test_fast_gate_check_agrees_with_the_sqlmodel_path_in_every_state(reg: Registry, backend: str) -> None:
    from registry.quality.gate import check_gate, check_gate_sqlmodel
    from registry.quality.gatecheck import fast_gate_status

    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", pa.table({"sample_id": ["a", "b", "c"], "label": ["x", None, "y"]}))
    snapshot = reg.show("labels").id
    reg.tag("labels", "v1")
    refs = ["labels", "labels@main", f"labels@{snapshot}", "labels@v1"]
    seen = []

    def compare() -> None:
        expected = check_gate_sqlmodel(reg.ctx.engine, "labels").to_dict()
        seen.append(expected["state"])
        for ref in refs:
            # The same plain queries through SQLAlchemy (the API's path), on SQLite and PostgreSQL alike.
            assert check_gate(reg.ctx.engine, ref).to_dict() == expected, ref
            fast = fast_gate_status(reg.home, ref)
            if backend == "postgres":
                assert fast is None  # the fast path reads SQLite only; PostgreSQL goes through SQLModel
            else:
                assert fast is not None and fast.to_dict() == expected, ref
        for ref in ("labels@main~0", f"labels@{snapshot[:12]}", "labels@", "nope", "labels@nope"):
            assert fast_gate_status(reg.home, ref) is None  # handled (or refused) by the SQLModel path

    compare()
    reg.set_policy("labels", PASSING)
    compare()
    reg.qa_run("labels")
    compare()
    reg.set_policy("labels", FAILING)
    compare()
    reg.qa_run("labels")
    compare()
    reg.waive("labels", "known", checks=["not_null"], expires="1d")
    compare()
    assert seen == ["no_policy", "never_evaluated", "passed", "stale", "failed", "waived"]


def test_gate_check_imports_no_pyarrow_or_numpy(labelled: Cli, tmp_path: Path, backend: str) -> None:
    cli = labelled
    cli("--author", "alice", "policy", "set", "labels", _write(tmp_path / "p.yaml", PASSING))
    cli("qa", "run", "labels")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "registry.cli.main", "gate", "check", "labels"],
                          cwd=cli.cwd, env=cli.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "registry.quality.gatecheck" in imported
    assert not {"pyarrow", "numpy", "duckdb"} & imported
    if backend == "sqlite":  # answered by the standard library's sqlite3 alone
        assert not {"sqlalchemy", "sqlmodel"} & imported
