"""One behaviour suite, two implementations of ``RegistryService``: the same scenario runs on a home opened
in this process (``Registry``) and on a real server on 127.0.0.1 (``RemoteService`` through
``registry_client.Client``), and every answer must be equal once what differs by nature is masked
(snapshot ids and times, the fields naming the client). Errors must be the same class with the same
message. A use case added to the protocol and answered differently by one side fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import registry_client

from registry import Registry
from registry.api.app import create_app
from registry.auth.tokens import create_token
from registry.context import ClientInfo, create_home
from registry.errors import RegistryError
from registry.remote_service import RemoteService
from registry.service import GateChecker, RegistryService
from registry.training.lockfile import read_lockfile
from tests.support.api_support import POLICY, run_event, serve
from tests.support.masking import mask

V1 = "sample_id,label,score\ns1,stop,1\ns2,yield,2\ns3,stop,3\n"
V2 = "sample_id,label,score\ns1,stop,1\ns2,stop,2\ns4,yield,4\n"
EXP = "sample_id,label,score\ns1,stop,1\ns2,stop,2\ns4,yield,4\ns5,merge,5\n"
ANSWERS = ("item,worker_id,answer,gold\ns1,w1,cat,false\ns1,w2,cat,false\ns1,w3,dog,false\ns2,w1,dog,false\n"
           "s2,w2,cat,true\n")


def plain(value: Any) -> Any:
    """An answer as JSON values: results by ``to_dict()``, tables by rows (times as text on both sides)."""
    if isinstance(value, pa.Table):
        return {"columns": value.column_names, "rows": json.loads(json.dumps(value.to_pylist(), default=str))}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return json.loads(json.dumps(value.to_dict(), default=str))
    return value


@dataclass
class Sides:
    local: Registry
    remote: RemoteService
    work: Path

    def both(self, step: Callable[[RegistryService, Path], Any]) -> Any:
        """Run ``step`` on each side (with a folder of its own); the masked answers (or errors) must match."""
        answers = []
        for name, service in (("local", self.local), ("remote", self.remote)):
            folder = self.work / name
            folder.mkdir(exist_ok=True)
            try:
                answers.append(("ok", mask(plain(step(service, folder)))))
            except RegistryError as exc:
                answers.append((type(exc).__name__, mask(exc.message)))
        assert answers[0] == answers[1]
        return answers[0]


@pytest.fixture
def sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sides]:
    for name in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL", "REGISTRY_URL",
                 "REGISTRY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    local_home = create_home(tmp_path / "local").home
    server_home = create_home(tmp_path / "server").home
    for home in (local_home, server_home):  # the same token on both sides, so the audit chains match
        with Registry.open(home) as reg:
            token, _ = create_token(reg.ctx, "alice", "admin", actor="setup")
    work = tmp_path / "work"
    work.mkdir()
    for name, text in (("v1.csv", V1), ("v2.csv", V2), ("exp.csv", EXP), ("policy.yaml", POLICY),
                       ("strict.yaml", POLICY.replace("min: 2", "min: 9")), ("answers.csv", ANSWERS),
                       ("event.json", json.dumps(run_event([{"namespace": "registry", "name": "signs"}])))):
        (work / name).write_text(text)
    with serve(create_app(server_home)) as url, Registry.open(local_home) as local:
        local.ctx.author = "alice"
        local.ctx.client = ClientInfo(kind="api")
        remote = RemoteService(registry_client.Client(url, token))
        try:
            yield Sides(local, remote, work)
        finally:
            remote.close()


def _written(service: RegistryService, ref: str, fmt: str) -> tuple[int, Any]:
    """What ``write_rows`` reports and writes (Parquet compared by its rows: the bytes name the writer)."""
    import io

    import pyarrow.parquet as pq

    sink = io.BytesIO()
    rows = service.write_rows(ref, fmt, sink)
    data = sink.getvalue()
    return rows, pq.read_table(io.BytesIO(data)).to_pylist() if fmt == "parquet" else data.decode()


def test_both_implementations_satisfy_the_protocol(sides: Sides) -> None:
    for service in (sides.local, sides.remote):
        assert isinstance(service, RegistryService)
        assert isinstance(service, GateChecker)
    missing = [name for name in dir(RegistryService) if not name.startswith("_")
               and not all(callable(getattr(s, name, None)) for s in (sides.local, sides.remote))]
    assert missing == []


def test_datasets_commits_snapshots_and_reads_answer_the_same(sides: Sides) -> None:
    w = sides.work
    sides.both(lambda s, _: s.create_dataset("signs", "sample_id", "street signs"))
    sides.both(lambda s, _: s.create_dataset("signs", "sample_id"))  # AlreadyExists on both
    sides.both(lambda s, _: s.commit("signs", w / "v1.csv", message="first"))
    sides.both(lambda s, _: s.tag("signs@main", "v1"))
    sides.both(lambda s, _: s.commit("signs", w / "v2.csv", message="relabel"))
    sides.both(lambda s, _: s.commit("signs", w / "missing.csv"))  # InvalidInput on both
    sides.both(lambda s, _: s.datasets())
    sides.both(lambda s, _: s.log("signs"))
    sides.both(lambda s, _: s.log("signs", 1))
    sides.both(lambda s, _: s.show("signs@v1"))
    sides.both(lambda s, _: s.show("nope@main"))  # NotFound on both
    sides.both(lambda s, _: s.schema("signs"))
    sides.both(lambda s, _: s.diff("signs@v1", "signs@main"))
    sides.both(lambda s, _: s.read("signs@v1"))
    sides.both(lambda s, _: s.read("signs@main", ["sample_id", "label"]))
    assert sides.both(lambda s, out: s.export("signs@v1", out / "v1.parquet")) == ("ok", 3)
    for fmt in ("csv", "jsonl", "parquet"):
        assert sides.both(lambda s, _, f=fmt: _written(s, "signs@main", f))[0] == "ok"
    sides.both(lambda s, _: _written(s, "signs@main", "xml"))  # InvalidInput on both
    sides.both(lambda s, _: s.plan("signs@main", shards=2))
    outcome = sides.both(lambda s, _: s.verify())
    assert outcome[0] == "ok" and outcome[1]["ok"] is True
    sides.both(lambda s, _: s.query("SELECT label, count(*) AS n FROM data GROUP BY label ORDER BY label",
                                    "signs@main"))


def test_branches_merges_quality_pins_and_training_reads_answer_the_same(sides: Sides) -> None:
    w = sides.work
    sides.both(lambda s, _: s.create_dataset("signs", "sample_id"))
    sides.both(lambda s, _: s.commit("signs", w / "v2.csv"))
    sides.both(lambda s, _: s.branch("signs/exp"))
    sides.both(lambda s, _: s.commit("signs@exp", w / "exp.csv", message="on a branch"))
    sides.both(lambda s, _: s.branches("signs"))
    sides.both(lambda s, _: s.merge("signs@exp", "main", dry_run=True))
    sides.both(lambda s, _: s.merge("signs@exp", "main", message="bring exp in"))
    sides.both(lambda s, _: s.protect("signs/main"))
    sides.both(lambda s, _: s.commit("signs", w / "v2.csv"))  # refused on a protected branch on both
    sides.both(lambda s, _: s.delete_branch("signs/exp"))
    sides.both(lambda s, _: s.set_policy("signs", (w / "policy.yaml").read_text()))
    sides.both(lambda s, _: s.policy("signs"))
    sides.both(lambda s, _: s.gate("signs@main"))
    sides.both(lambda s, _: s.gate_check("signs@main", evaluate=True))
    sides.both(lambda s, _: s.qa_run("signs@main"))
    sides.both(lambda s, out: s.pin("signs@main", out / "registry.lock", job="train"))
    sides.both(lambda s, out: s.load(read_lockfile(out / "registry.lock")[0], job="train"))
    sides.both(lambda s, out: s.pull(out / "registry.lock", out / "data", job="train"))
    sides.both(lambda s, _: s.load("signs@main", job="train"))
    sides.both(lambda s, _: s.set_policy("signs", (w / "strict.yaml").read_text()))
    sides.both(lambda s, _: s.gate_check("signs@main", evaluate=True))
    sides.both(lambda s, out: s.pin("signs@main", out / "strict.lock"))  # GateBlocked on both
    sides.both(lambda s, _: s.waive("signs@main", "reviewed by hand", expires="7d"))
    sides.both(lambda s, _: s.gate("signs@main"))


def test_provenance_audit_and_lineage_answer_the_same(sides: Sides) -> None:
    w = sides.work
    sides.both(lambda s, _: s.import_annotations("table", "votes", w / "answers.csv", guideline_version="g1",
                                                 mapping="key=item,annotator=worker_id,value=answer,"
                                                         "ground_truth=gold"))
    sides.both(lambda s, _: s.history("votes", "s1"))
    sides.both(lambda s, _: s.blame("votes"))
    sides.both(lambda s, _: s.label_diff("votes@main", "votes@main"))
    sides.both(lambda s, _: s.audit_log(dataset="votes"))
    sides.both(lambda s, out: s.audit_checkpoint(out / "checkpoint.json"))
    sides.both(lambda s, out: s.verify_audit(out / "checkpoint.json"))
    sides.both(lambda s, _: s.ingest_lineage((w / "event.json").read_text()))
    sides.both(lambda s, _: s.lineage_walk("votes@main"))
