"""Every mutating command appends exactly one audit event, with the right actor and object, in the
same transaction as the change; rolled-back work leaves none; parallel writers form one chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.audit.chain import canonical_bytes, canonical_json
from registry.errors import BreakingSchemaChange, RefConflict
from tests.conftest import Cli
from tests.support.audit_helpers import events
from tests.support.helpers import labels_table


def _log(cli: Cli) -> list[dict[str, Any]]:
    result = cli("audit", "log", "--json")
    assert result.code == 0, result.stderr
    return list(json.loads(result.stdout))


def _one_new_event(cli: Cli, before: int, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = cli(*args, env=env)
    assert result.code == 0, result.stderr
    log = _log(cli)
    assert len(log) == before + 1, f"{args} appended {len(log) - before} events"
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    return log[-1]


def test_each_mutating_command_appends_one_event_with_actor_and_object(cli: Cli, tmp_path: Path) -> None:
    assert cli("--author", "alice", "dataset", "create", "labels", "--key", "sample_id").code == 0
    created = _log(cli)
    assert len(created) == 1
    assert (created[0]["action"], created[0]["actor"], created[0]["actor_kind"]) == ("dataset.create", "alice", "user")
    assert (created[0]["object_type"], created[0]["object_id"], created[0]["dataset"]) == ("dataset", "labels",
                                                                                            "labels")
    assert created[0]["client"]["kind"] == "cli"

    data = tmp_path / "v1.parquet"
    pq.write_table(labels_table(40), data)
    commit = _one_new_event(cli, 1, "commit", "labels", str(data), "-m", "first", "--author", "bob")
    head = json.loads(cli("show", "labels", "--json").stdout)["id"]
    assert (commit["action"], commit["actor"], commit["object_id"], commit["snapshot"]) == (
        "snapshot.commit", "bob", head, head)
    assert commit["details"]["added"] == 40 and commit["details"]["message"] == "first"

    tag = _one_new_event(cli, 2, "tag", "labels@main", "v1", env={"REGISTRY_ACTOR": "carol"})
    assert (tag["action"], tag["actor"], tag["actor_kind"], tag["object_id"], tag["snapshot"]) == (
        "ref.tag", "carol", "user", "labels@v1", head)

    pq.write_table(labels_table(1, seed=9, prefix="new"), data)
    upsert = _one_new_event(cli, 3, "commit", "labels", str(data), "--mode", "upsert")
    head = upsert["snapshot"]
    assert upsert["details"]["parent"] == commit["snapshot"] and upsert["actor_kind"] == "os_user"

    compact = _one_new_event(cli, 4, "compact", "labels")
    assert (compact["action"], compact["object_id"], compact["details"]["layers_after"]) == (
        "snapshot.compact", head, 1)
    assert cli("compact", "labels").code == 0 and len(_log(cli)) == 5  # nothing to merge: no change, no event

    seal = _one_new_event(cli, 5, "audit", "seal")
    assert seal["action"] == "audit.seal" and seal["details"]["last_seq"] == 5

    orphan = cli.home / "objects" / "ab" / ("cd" * 31)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"not referenced")
    gc = _one_new_event(cli, 6, "gc", "--min-age", "0")
    assert gc["action"] == "store.gc" and "ab" + "cd" * 31 in gc["details"]["deleted"]
    assert cli("audit", "verify").code == 0


def test_reads_and_refused_or_empty_operations_append_nothing(reg: Registry) -> None:
    reg.create_dataset("labels", "sample_id")
    first = reg.commit("labels", labels_table(30))
    count = len(events(reg.ctx.engine))
    reg.read("labels")
    reg.log("labels")
    reg.diff("labels@main", "labels@main")
    assert not reg.commit("labels", labels_table(30)).created  # nothing changed: no snapshot, no event
    with pytest.raises(RefConflict):
        reg.commit("labels", labels_table(31), expect_parent="0" * 12)
    with pytest.raises(BreakingSchemaChange):
        reg.commit("labels", labels_table(30).drop_columns(["label"]))
    assert len(events(reg.ctx.engine)) == count
    assert reg.show("labels").id == first.snapshot_id


def test_automatic_compaction_is_audited_as_the_system(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    reg.ctx.settings = reg.ctx.settings.replace(compaction={"max_layers": 2})
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(30))
    for i in range(3):
        reg.commit("labels", labels_table(1, seed=i + 1, prefix=f"n{i}"), mode="upsert")
    assert not any(e["action"] == "snapshot.compact" for e in events(reg.ctx.engine)), "a commit compacted"
    assert reg.compact_auto()  # what the serve worker and `registry compact --auto` run
    actions = [(e["action"], e["actor"], e["actor_kind"]) for e in events(reg.ctx.engine)]
    assert ("snapshot.compact", "registry", "system") in actions
    assert sum(a == "snapshot.commit" for a, _, _ in actions) == 4


def test_events_seal_automatically_and_stay_queryable(reg: Registry) -> None:
    reg.ctx.settings = reg.ctx.settings.replace(audit={"seal_events": 3})
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(10))
    for i in range(5):
        reg.tag("labels@main", f"t{i}")
    segments = reg.query("SELECT count(*) AS n FROM audit_log WHERE action = 'audit.seal'").column("n")[0].as_py()
    assert segments >= 2
    log = reg.audit_log()
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert sum(e.action == "ref.tag" for e in log) == 5
    assert reg.verify_audit().ok
    assert reg.gc(min_age=0).deleted == []  # sealed segments are referenced objects
    assert reg.verify_audit().ok


def test_filters_of_audit_log(reg: Registry) -> None:
    reg.create_dataset("labels", "sample_id", actor="alice")
    reg.create_dataset("other", "sample_id", actor="bob")
    reg.commit("labels", labels_table(10), author="bob")
    assert [e.dataset for e in reg.audit_log(actor="bob")] == ["other", "labels"]
    assert [e.action for e in reg.audit_log(dataset="labels")] == ["dataset.create", "snapshot.commit"]
    assert [e.actor for e in reg.audit_log(action="dataset.")] == ["alice", "bob"]
    assert reg.audit_log(since="2999-01-01") == []
    assert len(reg.audit_log(until="2999-01-01T00:00Z")) == 3
    assert [e.seq for e in reg.audit_log(limit=1)] == [3]


def test_canonical_bytes_are_sorted_compact_json() -> None:
    event = {"seq": 7, "event_id": "e" * 32, "time": "2026-11-23T10:00:00.000000Z", "actor": "Zoë \"z\" \\ \u2603",
             "actor_kind": "user", "action": "ref.tag", "object_type": "ref", "object_id": "d@v1", "dataset": None,
             "snapshot": "ab" * 32, "details": {"b": [1, 2.5, None], "a": "x\ny"}, "client": {"kind": "cli"},
             "prev_hash": "0" * 64}
    expected = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    fields = dict(event, details=canonical_json(event["details"]), client=canonical_json(event["client"]))
    assert canonical_bytes(**fields) == expected


@pytest.mark.slow
def test_parallel_writers_form_one_unbroken_chain(reg: Registry, cli: Cli) -> None:
    reg.create_dataset("labels", "sample_id")
    reg.commit("labels", labels_table(20))
    script = ("import sys\nfrom registry import Registry\nr = Registry.open(sys.argv[1])\n"
              "for i in range(8):\n    r.tag('labels@main', f't{sys.argv[2]}_{i}')\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(cli.home), str(p)], env=cli.env(),
                              stderr=subprocess.PIPE) for p in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    log = reg.audit_log()
    assert [e.seq for e in log] == list(range(1, 35))
    assert sum(e.action == "ref.tag" for e in log) == 32
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(log, log[1:], strict=False))
    report = reg.verify_audit()
    assert report.ok, report.problem
    assert report.head_seq == 34
