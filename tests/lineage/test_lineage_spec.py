"""Validating events against the official OpenLineage JSON Schemas (``../shared/openlineage-spec``).

:func:`check_event` is what the other lineage tests call on every event they see; the tests here
prove it rejects what it must, so a pass elsewhere means something. Without the spec folder the
validating tests skip, saying why (in CI, ``CI=true``, they fail instead).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from registry.lineage.events import CUSTOM_FACET_SCHEMA_PATH, custom_facet_schema
from registry.lineage.settings import DEFAULT_SCHEMA_BASE_URL
from tests.support.paths import SHARED

SPEC = SHARED / "openlineage-spec"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACET_URL = re.compile(r"^https://openlineage\.io/spec/facets/(?P<version>[\d-]+)/(?P<name>\w+)\.json#(?P<ptr>.*)$")


def spec_dir() -> Path:
    """The spec folder, or skip (fail in CI) when it is absent."""
    if not (SPEC / "2-0-2" / "OpenLineage.json").is_file():
        reason = f"the OpenLineage spec schemas are not at {SPEC} (see its README for what goes there)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must validate lineage events: {reason}")
        pytest.skip(reason)
    return SPEC


@cache
def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources = []
    for path in sorted(spec_dir().rglob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and "$id" in doc:
            resources.append((doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012)))
    ours = custom_facet_schema(DEFAULT_SCHEMA_BASE_URL)
    resources.append((ours["$id"], Resource.from_contents(ours, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


def _versions(name: str) -> list[str]:
    found = [p.parent.name for p in (spec_dir() / "facets").glob(f"*/{name}.json")]
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split("-")))


def schema_url_for(url: str) -> str:
    """``url`` itself when the spec folder has it, else the newest version of that facet present
    (the README's rule for facets newer than this copy), with a warning saying so."""
    match = _FACET_URL.match(url)
    if match is None:
        return url
    if (spec_dir() / "facets" / match["version"] / f"{match['name']}.json").is_file():
        return url
    versions = _versions(match["name"])
    assert versions, f"no schema of facet {match['name']} in {SPEC}"
    newest = versions[-1]
    warnings.warn(f"{match['name']} {match['version']} is not in the spec copy; validated against {newest}",
                  stacklevel=2)
    return f"https://openlineage.io/spec/facets/{newest}/{match['name']}.json#{match['ptr']}"


def validate(instance: Any, url: str) -> None:
    """Validate ``instance`` against the schema at ``url`` (a ``$id`` plus JSON pointer)."""
    from jsonschema import Draft202012Validator

    Draft202012Validator({"$ref": schema_url_for(url)}, registry=_registry()).validate(instance)


def _facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"run.{k}", v) for k, v in (event["run"].get("facets") or {}).items()]
    found += [(f"job.{k}", v) for k, v in (event["job"].get("facets") or {}).items()]
    for role in ("inputs", "outputs"):
        for i, dataset in enumerate(event.get(role) or []):
            for group in ("facets", "inputFacets", "outputFacets"):
                found += [(f"{role}[{i}].{group}.{k}", v) for k, v in (dataset.get(group) or {}).items()]
    return found


def check_event(event: dict[str, Any]) -> int:
    """Validate a RunEvent and each of its facets against their official schemas; how many facets."""
    validate(event, RUN_EVENT)
    facets = _facets(event)
    for where, facet in facets:
        assert "_schemaURL" in facet, f"{where} has no _schemaURL"
        try:
            validate(facet, facet["_schemaURL"])
        except Exception as exc:
            raise AssertionError(f"{where} does not match {facet['_schemaURL']}: {exc}") from exc
    return len(facets)


def _valid_event() -> dict[str, Any]:
    from registry.lineage.events import JobRef, facet, new_run_id, run_event

    event = run_event("START", "2026-11-23T10:00:00.000000Z", new_run_id(), JobRef("ns", "job"))
    event["inputs"] = [{"namespace": "ns", "name": "d", "facets": {"version": facet("version", datasetVersion="1")}}]
    return event


def test_a_valid_event_passes_and_its_facets_are_counted() -> None:
    assert check_event(_valid_event()) == 1


@pytest.mark.parametrize("breakage", ["no run id", "bad event type", "facet field wrong type", "missing facet field"])
def test_the_validator_rejects_broken_events(breakage: str) -> None:
    event = _valid_event()
    if breakage == "no run id":
        del event["run"]["runId"]
    elif breakage == "bad event type":
        event["eventType"] = "FINISHED"
    elif breakage == "facet field wrong type":
        event["inputs"][0]["facets"]["version"]["datasetVersion"] = 7
    else:
        del event["inputs"][0]["facets"]["version"]["datasetVersion"]
    with pytest.raises(Exception, match="runId|FINISHED|datasetVersion|7"):
        check_event(event)


def test_a_facet_newer_than_the_copy_falls_back_to_the_newest_present_version() -> None:
    url = ("https://openlineage.io/spec/facets/1-0-1/DataQualityMetricsDatasetFacet.json"
           "#/$defs/DataQualityMetricsDatasetFacet")
    spec_dir()
    if (SPEC / "facets" / "1-0-1" / "DataQualityMetricsDatasetFacet.json").is_file():
        assert schema_url_for(url) == url
        return
    with pytest.warns(UserWarning, match="validated against 1-0-0"):
        assert "/1-0-0/" in schema_url_for(url)


def test_the_served_custom_facet_schema_carries_the_configured_base_url() -> None:
    schema = custom_facet_schema("https://registry.example.org/")
    assert schema["$id"] == f"https://registry.example.org{CUSTOM_FACET_SCHEMA_PATH}"
    assert "RegistryChangeSummaryFacet" in schema["$defs"]


def emitted(home: Path) -> list[dict[str, Any]]:
    """The events the OpenLineage client wrote to the home's JSON-lines file (the default sink)."""
    from registry.lineage.settings import home_events_file

    path = home_events_file(home)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def runs(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Event types per run id, in the order they arrived."""
    result: dict[str, list[str]] = {}
    for event in events:
        result.setdefault(event["run"]["runId"], []).append(event["eventType"])
    return result
