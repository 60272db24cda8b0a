"""The query limits the docs state (docs/security.md, README, docs/api.md) are the settings' real defaults,
and what the docs say a user sees when a limit hits is what a query over the `data` view shows."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from registry import Registry
from registry.config import ApiSettings, QuerySettings
from registry.errors import QueryInterrupted
from registry.query import QueryLimits, run_query

ROOT = Path(__file__).resolve().parents[2]


def _defaults() -> dict[str, str]:
    """Each documented setting's default, as text."""
    query, api = QuerySettings(), ApiSettings()
    return {"REGISTRY_QUERY_TIMEOUT_SECONDS": f"{query.timeout_seconds:g}",
            "REGISTRY_QUERY_MEMORY_LIMIT": query.memory_limit,
            "REGISTRY_QUERY_THREADS": str(query.threads),
            "REGISTRY_API_MAX_QUERY_ROWS": str(api.max_query_rows)}


def _security_query_table() -> dict[str, tuple[str, str]]:
    """The rows of the table under `## Queries` of docs/security.md: setting -> (default, what the user sees)."""
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("## Queries", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`REGISTRY_"):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def test_the_documented_query_limits_are_the_settings_defaults() -> None:
    documented = _security_query_table()
    defaults = _defaults()
    assert set(documented) == set(defaults)
    for name, default in defaults.items():
        shown = documented[name][0].split(" ", 1)[0].replace(",", "")
        assert shown == default, (name, documented[name][0], default)
    # what the user sees names the default too
    assert f"limit of {defaults['REGISTRY_QUERY_TIMEOUT_SECONDS']} s" in documented["REGISTRY_QUERY_TIMEOUT_SECONDS"][1]
    assert f"limit of {defaults['REGISTRY_QUERY_MEMORY_LIMIT']}" in documented["REGISTRY_QUERY_MEMORY_LIMIT"][1]
    # the dataclass the API and CLI fall back to agrees with the settings
    limits = QueryLimits()
    assert (f"{limits.timeout:g}", limits.memory_limit, str(limits.threads)) == (
        defaults["REGISTRY_QUERY_TIMEOUT_SECONDS"], defaults["REGISTRY_QUERY_MEMORY_LIMIT"],
        defaults["REGISTRY_QUERY_THREADS"])


@pytest.mark.parametrize("doc", ["README.md", "docs/api.md"])
def test_the_query_docs_state_the_same_defaults(doc: str) -> None:
    text = " ".join((ROOT / doc).read_text().split())
    defaults = _defaults()
    for name in ("REGISTRY_QUERY_TIMEOUT_SECONDS", "REGISTRY_QUERY_MEMORY_LIMIT"):
        found = re.search(rf"`{name}` \(default (\S+?)[;:)]", text)
        assert found, (doc, name)
        assert found.group(1) == defaults[name], (doc, name, found.group(1))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_query_over_the_data_view_shows_the_documented_messages(reg: Registry) -> None:
    reg.create_dataset("signs", "id")
    reg.commit("signs", pa.table({"id": list(range(100)), "label": ["a"] * 100}))
    documented = _security_query_table()
    slow = "SELECT count(*) FROM data, range(100000000000) r WHERE r.range % 7 = id"
    with pytest.raises(QueryInterrupted) as interrupted:
        run_query(reg.ctx, slow, "signs@main", limits=QueryLimits(timeout=0.2))
    expected = documented["REGISTRY_QUERY_TIMEOUT_SECONDS"][1].split("`")[1].replace("60 s", "0.2 s")
    assert str(interrupted.value).startswith(expected)
    hungry = "SELECT list(r.range) FROM data, range(100000000) r GROUP BY id"
    with pytest.raises(Exception) as starved:  # noqa: PT011 - the message is what is checked
        run_query(reg.ctx, hungry, "signs@main", limits=QueryLimits(timeout=60, memory_limit="64MB"))
    expected = documented["REGISTRY_QUERY_MEMORY_LIMIT"][1].split("`")[1].replace("2GB", "64MB").rstrip(". ")
    assert str(starved.value).startswith(expected), str(starved.value)
