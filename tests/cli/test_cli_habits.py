"""The CLI's git/dbt habits (issue 21): each item runs the real ``registry`` command in a subprocess."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.cli.help_text import whole_summaries
from registry.cli.main import cli as root
from registry.cli.main import main
from registry.cli.quality_cmds import POLICY_EXAMPLE
from registry.quality.policy_document import parse_policy, policy_hash
from tests.conftest import Cli
from tests.support import provenance_fixtures as lsx
from tests.support.api_support import bearer, serve
from tests.support.paths import ROOT

KEYS = [f"k{i:03d}" for i in range(40)]


def _table(labels: dict[str, str]) -> pa.Table:
    return pa.table({"sample_id": list(labels), "label": list(labels.values())})


@pytest.fixture
def tour(reg: Registry) -> Registry:
    """``d``: v1 (40 rows), then 25 relabeled out of hash order, 3 removed and 3 added (main)."""
    reg.create_dataset("d", "sample_id")
    first = dict.fromkeys(KEYS, "cat")
    reg.commit("d", _table(first), message="first round")
    reg.tag("d@main", "v1")
    second = {k: ("dog" if i % 3 else "cat") for i, k in enumerate(KEYS[3:])} | {"n1": "cow", "n0": "cow", "n2": "x"}
    reg.commit("d", _table(second), message="second round\n\nwith a body")
    return reg


def test_log_takes_n_and_oneline(tour: Registry, cli: Cli) -> None:
    one = cli("log", "d", "-n", "1", "--oneline")
    assert one.code == 0, one.stderr
    head = tour.show("d@main").id
    assert one.stdout == f"{head[:12]} (main) second round\n"
    both = cli("log", "d", "--oneline").stdout.splitlines()
    assert len(both) == 2 and both[1].endswith("(tag: v1) first round")
    assert len(json.loads(cli("log", "d", "--max-count", "1", "--json").stdout)) == 1


def test_diff_exit_code_quiet_and_a_bare_second_ref(tour: Registry, cli: Cli) -> None:
    changed = cli("diff", "d@v1", "main", "--exit-code")
    assert changed.code == 1 and "added 3  removed 3" in changed.stdout
    same = cli("diff", "d@v1", "v1", "--exit-code")
    assert same.code == 0 and "added 0  removed 0  changed 0" in same.stdout
    quiet = cli("diff", "d@v1", "d@main", "--quiet")
    assert (quiet.code, quiet.stdout) == (1, "")
    assert cli("diff", "d@main", "main", "--quiet").code == 0
    labels = cli("diff", "d@v1", "main", "--labels", "--quiet")
    assert (labels.code, labels.stdout) == (1, "")
    # The dataset's own name as B keeps meaning its main.
    assert json.loads(cli("diff", "d@v1", "d", "--json").stdout)["b"] == tour.show("d@main").id


def test_diff_examples_come_in_key_order(tour: Registry, cli: Cli) -> None:
    result = json.loads(cli("diff", "d@v1", "main", "--rows", "20", "--json").stdout)
    for kind in ("changed", "added", "removed"):
        keys = [e["key"] for e in result["examples"] if e["kind"] == kind]
        assert keys and keys == sorted(keys), (kind, keys)
    assert [e["kind"] for e in result["examples"]] == sorted((e["kind"] for e in result["examples"]),
                                                            key=["changed", "added", "removed"].index)
    text = cli("diff", "d@v1", "main", "--rows", "3").stdout
    assert re.findall(r"^  \+ sample_id='(\w+)'", text, re.M) == ["n0", "n1", "n2"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_streams_to_stdout(tour: Registry, home: Path, tmp_path: Path, fmt: str) -> None:
    import subprocess
    import sys

    workdir = tmp_path / "work"
    workdir.mkdir()
    proc = subprocess.run([sys.executable, "-m", "registry.cli.main", "export", "d@v1", "-", "--format", fmt],
                          capture_output=True, env={**os.environ, "REGISTRY_HOME": str(home)}, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert b"wrote 40 rows to stdout" in proc.stderr
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(proc.stdout))
        assert sorted(table.column("sample_id").to_pylist()) == KEYS
    elif fmt == "csv":
        lines = proc.stdout.decode().splitlines()
        assert lines[0] == '"sample_id","label"' and len(lines) == 41
    else:
        rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
        assert sorted(r["sample_id"] for r in rows) == KEYS
    assert list(workdir.iterdir()) == []  # nothing written beside


def test_export_to_stdout_needs_a_format(tour: Registry, cli: Cli) -> None:
    refused = cli("export", "d@v1", "-")
    assert refused.code == 2 and "--format" in refused.stderr and refused.stdout == ""
    clash = cli("export", "d@v1", "out.csv", "--format", "jsonl")
    assert clash.code == 2 and "the suffix says csv" in clash.stderr


def test_init_on_an_existing_home_changes_nothing(home: Path, cli: Cli) -> None:
    before = {p: p.stat().st_mtime_ns for p in home.rglob("*")}
    again = cli("init", str(home))
    assert again.code == 0 and "exists already; nothing changed" in again.stdout
    assert "admin" not in again.stdout
    assert json.loads(cli("init", str(home), "--json").stdout) == {"home": str(home.resolve()), "created": False,
                                                                    "admin_token": None}
    assert {p: p.stat().st_mtime_ns for p in home.rglob("*")} == before


def test_pull_of_a_missing_lockfile_says_so(home: Path, cli: Cli) -> None:
    missing = cli("pull", "--lockfile", "missing.lock", "out")
    assert missing.code == 2
    assert missing.stderr == "error: missing.lock: no such lockfile; `registry pin NAME@REF` writes one\n"


def _leaves(group: click.Group, path: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _leaves(command, f"{path}{name} ")
        else:
            found.append((f"{path}{name}", command))
    return found


def test_every_command_takes_json() -> None:
    missing = [name for name, command in _leaves(root)
               if not any("--json" in p.opts for p in command.params if isinstance(p, click.Option))]
    assert missing == []


def test_db_upgrade_answers_in_json(home: Path, cli: Cli) -> None:
    result = cli("db", "upgrade", "--json")
    assert result.code == 0 and json.loads(result.stdout) == {"home": str(home), "up_to_date": True}


def test_query_parse_errors_keep_their_line_breaks(home: Path, cli: Cli) -> None:
    bad = cli("query", "SELEC actor FROM audit_log")
    assert bad.code == 2
    lines = bad.stderr.splitlines()
    assert lines[0].startswith("error: cannot parse the query") and "\\n" not in bad.stderr
    pointer = next(i for i, line in enumerate(lines) if line.startswith("LINE 1: "))
    assert lines[pointer + 1].index("^") == lines[pointer].index("SELEC")
    as_json = json.loads(cli("query", "SELEC 1", "--json").stderr)
    assert "\nLINE 1:" in as_json["error"]["message"]
    # Other errors stay one line, even with a newline in what the user typed.
    assert len(cli("export", "d\nx@main", "o.csv").stderr.splitlines()) == 1


def test_verify_names_a_shared_bad_object_once_with_its_snapshots(reg: Registry, home: Path, cli: Cli) -> None:
    reg.create_dataset("d", "sample_id")
    reg.commit("d", _table(dict.fromkeys(KEYS, "cat")), message="base")
    for i in range(3):
        reg.commit("d", _table({"extra": f"v{i}"}), mode="upsert", message=f"upsert {i}")
    sha = _base_rows_object(reg, reg.log("d")[-1].id)  # the first commit's rows: a layer of every snapshot
    path = next(p for p in (home / "objects").glob("??/*") if p.parent.name + p.name == sha)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = cli("verify", "--json")
    assert result.code == 1
    report = json.loads(result.stdout)
    about = [p for p in report["problems"] if sha in p]
    assert len(about) == 1, report["problems"]
    assert "used by 4 snapshots" in about[0]
    assert sorted(report["bad_objects"][sha]) == sorted(f"d@{s.id[:12]}" for s in reg.log("d"))
    text = cli("verify")
    assert sum(sha in line for line in text.stderr.splitlines()) == 1


def _base_rows_object(reg: Registry, snapshot_id: str) -> str:
    from registry.db import transaction
    from registry.models import SnapshotRow

    with transaction(reg.ctx.engine, readonly=True) as session:
        row = session.get(SnapshotRow, snapshot_id)
        assert row is not None and row.change_sha256
        return row.change_sha256


def test_audit_log_ends_a_long_object_with_an_ellipsis(reg: Registry, cli: Cli) -> None:
    long_name = "street-signs-" + "x" * 50
    reg.create_dataset(long_name, "sample_id")
    line = next(line for line in cli("audit", "log").stdout.splitlines() if "dataset.create" in line)
    assert f"dataset:{long_name[:39]}…" in line
    assert long_name in cli("audit", "log", "--json").stdout


def test_top_level_help_names_the_environment_and_exit_codes(cli: Cli) -> None:
    text = cli("--help").stdout
    for name in ("REGISTRY_HOME", "REGISTRY_URL", "REGISTRY_TOKEN"):
        assert re.search(rf"^\s+{name}\s", text, re.M), name
    for code in ("0  ok", "1  a check failed", "2  user error", "3  conflict", "4  internal error"):
        assert code in text


def test_command_summaries_are_whole() -> None:
    whole_summaries(root)  # as main() does before every run
    for group in [root, *(c for _, c in _groups(root))]:
        with click.Context(group, info_name="registry", max_content_width=80) as ctx:
            formatter = ctx.make_formatter()
            group.format_commands(ctx, formatter)
        listing = formatter.getvalue()
        entries = re.split(r"\n  (?=\S)", listing)
        for entry in entries[1:]:
            summary = " ".join(entry.split()[1:])
            assert summary.count("`") % 2 == 0, summary
            assert not summary.endswith("..."), summary


def _groups(group: click.Group) -> list[tuple[str, click.Group]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += [(name, command), *_groups(command)]
    return found


def test_policy_set_help_shows_a_working_minimal_policy(cli: Cli) -> None:
    text = cli("policy", "set", "--help").stdout
    assert "docs/quality.md" in text and "check: row_count" in text
    example = POLICY_EXAMPLE.split("\n", 2)[2]
    assert parse_policy(example.replace("\n  ", "\n").strip()).checks
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(maintainers:.*?)```", readme, re.S)
    assert block is not None and parse_policy(block.group(1)).checks


def test_key_forms_are_one_policy() -> None:
    one = parse_policy("checks:\n  - check: gold_accuracy\n    gold: g@v1\n    key: sample_id\n    min_accuracy: 0.9\n")
    many = parse_policy("checks:\n  - check: gold_accuracy\n    gold: g@v1\n    key: [sample_id]\n"
                        "    min_accuracy: 0.9\n")
    assert policy_hash(one.canonical_checks()) == policy_hash(many.canonical_checks())
    pair = parse_policy("checks:\n  - check: gold_accuracy\n    gold: g@v1\n    key: [a, b]\n    min_accuracy: 0.9\n")
    assert pair.checks[0].key == ["a", "b"]
    single = parse_policy("checks:\n  - check: annotator_accuracy\n    gold: g@v1\n    label: label\n"
                          "    key: [image]\n    min_accuracy: 0.5\n")
    assert single.checks[0].key == "image"
    from registry.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"line 5: checks\[0\]\.key: Value error, give one column, not 2|"
                                           r"line 5: checks\[0\]\.key: give one column, not 2"):
        parse_policy("checks:\n  - check: annotator_accuracy\n    gold: g@v1\n    label: label\n"
                     "    key: [a, b]\n    min_accuracy: 0.5\n", source="p.yaml")


def test_gold_accuracy_reads_the_label_column_by_default(reg: Registry, tmp_path: Path, cli: Cli) -> None:
    reg.create_dataset("gold", "sample_id", owner="alice")
    reg.commit("gold", _table({"k1": "cat", "k2": "dog", "k3": "cow", "k4": "cat"}))
    reg.create_dataset("d", "sample_id", owner="alice")
    reg.commit("d", _table({"k1": "cat", "k2": "dog", "k3": "cat", "k4": "cat"}))
    policy = tmp_path / "p.yaml"
    policy.write_text("checks:\n  - check: gold_accuracy\n    gold: gold@main\n    key: sample_id\n"
                      "    min_accuracy: 0.7\n")
    assert cli("--author", "alice", "policy", "set", "d", str(policy)).code == 0
    run = cli("qa", "run", "d", "--json")
    assert run.code == 0, run.stderr
    check = json.loads(run.stdout)["checks"][0]
    assert check["metric"] == pytest.approx(0.75) and check["passed"]


def test_history_in_time_order_with_the_model_that_predicted(reg: Registry, tmp_path: Path, cli: Cli) -> None:
    reg.import_annotations("label-studio", "signs", lsx.write(tmp_path / "v1.json", lsx.export_v1()), key="image")
    reg.import_annotations("label-studio", "signs", lsx.write(tmp_path / "v2.json", lsx.export_v2()), key="image")
    entries = json.loads(cli("history", "signs", "s3://signs/1.jpg", "--json").stdout)
    times = [e["time"] for e in entries]
    assert times == sorted(times, key=lambda t: t.replace("Z", "+00:00")), times
    predictions = [e for e in entries if e["source_kind"] == "model"]
    assert predictions and all(e["model_version"] == "resnet-3" for e in predictions)
    table = cli("history", "signs", "s3://signs/1.jpg").stdout
    assert "model resnet-3" in table


def test_remote_refusals_name_the_token_variable_and_the_server(reg: Registry, tmp_path: Path, cli: Cli) -> None:
    bearer(reg, "ci", "ci")
    with serve(create_app(reg.home)) as url:
        base = {"REGISTRY_URL": url}
        env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_TOKEN", "REGISTRY_HOME")}
        none = _run_remote(["dataset", "list"], {**env, **base})
        assert none[0] == 2 and "REGISTRY_TOKEN" in none[1] and url in none[1]
        wrong = _run_remote(["dataset", "list"], {**env, **base, "REGISTRY_TOKEN": "not-a-token"})
        assert wrong[0] == 2 and "did not accept REGISTRY_TOKEN" in wrong[1] and url in wrong[1]


def _run_remote(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "registry.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)
    return proc.returncode, proc.stderr


def test_in_process_main_prints_the_epilog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Exit codes:" in capsys.readouterr().out


def test_export_to_stdout_over_http_prints_what_the_local_export_prints(tour: Registry, home: Path) -> None:
    import subprocess
    import sys

    token = bearer(tour, "reader", "reader")["Authorization"].removeprefix("Bearer ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    argv = [sys.executable, "-m", "registry.cli.main", "export", "d@v1", "-", "--format", "jsonl"]
    catalog = {k: v for k, v in os.environ.items() if k == "REGISTRY_DATABASE_URL"}  # the PostgreSQL-backed home
    local = subprocess.run(argv, capture_output=True, env={**env, **catalog, "REGISTRY_HOME": str(home)}, timeout=120)
    with serve(create_app(tour.home)) as url:
        remote = subprocess.run(argv, capture_output=True, env={**env, "REGISTRY_URL": url, "REGISTRY_TOKEN": token},
                                timeout=120)
    assert local.returncode == remote.returncode == 0, remote.stderr
    rows = sorted(local.stdout.decode().splitlines())
    assert len(rows) == 40 and sorted(remote.stdout.decode().splitlines()) == rows
