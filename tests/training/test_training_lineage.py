"""Lineage that identifies runs: a namespace fixed at init and stored (not derived from the host),
ingest reporting other namespaces, parent runs from the OpenLineage variables, source URIs named as
the naming spec names them, and imports recording their input file."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from registry import Registry
from registry.errors import Conflict, InvalidInput
from registry.lineage.intake import ingest_run_event
from registry.lineage.namespace import registry_namespace
from registry.lineage.naming import dataset_name
from registry.lineage.parent_env import parent_from_env
from tests.conftest import Cli


def _events(reg: Registry) -> list[dict[str, object]]:
    from registry.lineage.outbox import deliver

    deliver(reg.ctx)
    return [json.loads(line) for line in (reg.home / "lineage" / "events.jsonl").read_text().splitlines()]


def test_init_fixes_a_namespace_that_survives_a_new_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_LINEAGE_NAMESPACE", "OPENLINEAGE_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    reg = Registry.init(tmp_path / "home")
    fixed = registry_namespace(reg.ctx)
    assert fixed.startswith("registry://reg-") and socket.gethostname() not in fixed
    reg.close()
    monkeypatch.setattr(socket, "gethostname", lambda: "another-host")
    monkeypatch.setenv("REGISTRY_LINEAGE_NAMESPACE", "registry://someone-else")
    with Registry.open(tmp_path / "home") as moved:
        assert registry_namespace(moved.ctx) == fixed
        moved.create_dataset("d", "k")
        moved.commit("d", pa.table({"k": [1, 2]}))
        outputs = [o for e in _events(moved) for o in e.get("outputs", [])]
        assert outputs and {o["namespace"] for o in outputs} == {fixed}


def test_a_chosen_namespace_is_checked_and_never_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_DATABASE_URL", raising=False)
    with pytest.raises(InvalidInput, match="scheme://authority"):
        Registry.init(tmp_path / "bad", lineage_namespace="ml platform")
    assert not (tmp_path / "bad").exists()
    with Registry.init(tmp_path / "home", lineage_namespace="registry://ml-platform") as reg:
        assert registry_namespace(reg.ctx) == "registry://ml-platform"
        assert reg.audit_log(action="lineage.namespace")[0].details == {"namespace": "registry://ml-platform"}
    with pytest.raises(Conflict, match="never changes"):
        Registry.init(tmp_path / "home", lineage_namespace="registry://other")
    Registry.init(tmp_path / "home").close()  # re-running init without one keeps it


def test_the_cli_init_and_namespace_commands(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "cli-home", cwd=tmp_path)
    bad = cli("init", str(tmp_path / "cli-home"), "--lineage-namespace", "nope")
    assert bad.code == 2 and "scheme://authority" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    made = cli("init", str(tmp_path / "cli-home"), "--lineage-namespace", "registry://team-ml", "--json")
    assert made.code == 0 and json.loads(made.stdout)["lineage_namespace"] == "registry://team-ml"
    shown = cli("lineage", "namespace", "--json")
    assert json.loads(shown.stdout) == {"namespace": "registry://team-ml", "fixed": True}
    refused = cli("lineage", "namespace", "--fix", "registry://other")
    assert refused.code != 0 and "never changes" in refused.stderr


def test_ingest_reports_events_of_other_namespaces(reg: Registry) -> None:
    reg.create_dataset("d", "k")
    reg.commit("d", pa.table({"k": [1]}))
    ours = registry_namespace(reg.ctx)
    event = {"eventType": "COMPLETE", "eventTime": "2026-12-04T10:00:00Z", "run": {"runId": str(uuid.uuid4())},
             "job": {"namespace": "airflow", "name": "train"},
             "inputs": [{"namespace": ours, "name": "d", "facets": {"version": {"datasetVersion": reg.show("d").id}}},
                        {"namespace": "registry://elsewhere", "name": "d"}], "outputs": []}
    result = ingest_run_event(reg.ctx, event)
    assert result.consumed == [f"d@{reg.show('d').id}"] and result.other_namespaces == ["registry://elsewhere/d"]


@pytest.mark.parametrize(("uri", "expected"), [
    ("s3://raw-bucket/images/2026-11", ("s3://raw-bucket", "images/2026-11")),
    ("gs://b/x.parquet", ("gs://b", "x.parquet")),
    ("file:///data/raw.csv", ("file", "/data/raw.csv")),
    ("postgres://db.internal:5432/ml.public.labels", ("postgres://db.internal:5432", "/ml.public.labels")),
    ("s3://landing:images/2026-11", ("s3://landing", "images/2026-11")),  # the older NAMESPACE:NAME form
    ("warehouse:events", ("warehouse", "events")),
])
def test_source_uris_follow_the_naming_spec(uri: str, expected: tuple[str, str]) -> None:
    assert dataset_name(uri) == expected


@pytest.mark.parametrize("uri", ["s3://bucket", "file://", "no-colon", ":name"])
def test_bad_source_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidInput, match="source"):
        dataset_name(uri)


def test_a_commit_names_its_s3_source_by_the_spec(reg: Registry) -> None:
    from registry.lineage.emit import LineageRun

    reg.create_dataset("d", "k")
    reg.commit("d", pa.table({"k": [1]}), lineage=LineageRun(sources=("s3://raw-bucket/labels/2026-12.csv",)))
    inputs = [i for e in _events(reg) for i in e.get("inputs", [])]
    assert {"namespace": "s3://raw-bucket", "name": "labels/2026-12.csv"} in [
        {"namespace": i["namespace"], "name": i["name"]} for i in inputs]


def test_an_import_records_its_input_file(reg: Registry, tmp_path: Path) -> None:
    export = tmp_path / "labels.csv"
    export.write_text("item,worker_id,answer\na,w1,cat\nb,w2,dog\n")
    reg.import_annotations("table", "labels", export, mapping="key=item,annotator=worker_id,value=answer")
    inputs = [i for e in _events(reg) for i in e.get("inputs", [])]
    assert {"namespace": "file", "name": str(export.resolve())} in [
        {"namespace": i["namespace"], "name": i["name"]} for i in inputs]


def test_parent_runs_from_the_environment() -> None:
    run = str(uuid.uuid4())
    assert parent_from_env({}) is None
    whole = parent_from_env({"OPENLINEAGE_PARENT_ID": f"airflow/nightly/{run}"})
    assert whole is not None and (whole.job.namespace, whole.job.name, whole.run_id) == ("airflow", "nightly", run)
    parts = parent_from_env({"OPENLINEAGE_PARENT_RUN_ID": run, "OPENLINEAGE_PARENT_JOB_NAMESPACE": "spark",
                             "OPENLINEAGE_PARENT_JOB_NAME": "etl"})
    assert parts is not None and str(parts.job) == "spark/etl"
    with pytest.raises(InvalidInput, match="OPENLINEAGE_PARENT_JOB_NAMESPACE"):
        parent_from_env({"OPENLINEAGE_PARENT_RUN_ID": run})
    with pytest.raises(InvalidInput, match="OPENLINEAGE_PARENT_ID"):
        parent_from_env({"OPENLINEAGE_PARENT_ID": "airflow/nightly/not-a-uuid"})
