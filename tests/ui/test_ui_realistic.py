"""The console on data of realistic shape (issue 21), in Debian's headless Chromium at 1366 px.

One registry holds: ``many`` with 1,000 snapshots; ``wide`` with a 100,000-row label diff on a
2,000-class label column (and a unique ``score`` column that is not a label column); ``empty`` with
no snapshot; ``nulls`` whose gate fails on null labels; three training runs of one minute reading
``wide``; and 10,000 audit events. Every page is screenshotted into test-artifacts/ui/.
"""

# ruff: noqa: F811

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.audit.log import EventSpec, record_many
from registry.context import create_home
from registry.db import transaction
from registry.lineage.emit import registry_namespace
from registry.lineage.events import new_run_id
from registry.lineage.intake import ingest_run_event
from tests.support.api_support import bearer, serve

# The browser and page fixtures of the console tests, shared (the arguments named `page` are that fixture).
from tests.ui.test_ui_e2e import Site, _need_browser, browser, expect, login, page, shot  # noqa: F401

SNAPSHOTS = 1_000
ROWS = 100_000
CLASSES = 2_000
EVENTS = 10_000
WIDTH = 1366
NULL_POLICY = "maintainers: [alice]\nchecks:\n  - check: not_null\n    columns: [label, source]\n"


def _seed(reg: Registry) -> list[str]:
    reg.create_dataset("many", "id", description="one thousand snapshots")
    reg.commit("many", pa.table({"id": [0, 1, 2, 3], "label": ["a", "a", "b", "b"]}), message="start")
    for i in range(1, SNAPSHOTS):
        reg.commit("many", pa.table({"id": [i % 4], "label": [f"v{i}"]}), mode="upsert", message=f"step {i}")
    reg.create_dataset("wide", "id", description="a high-cardinality label column")
    ids = list(range(ROWS))
    reg.commit("wide", pa.table({"id": ids, "label": [f"class-{i % CLASSES:04d}" for i in ids],
                                 "score": [i / ROWS for i in ids]}), message="first labels")
    reg.tag("wide@main", "v1")
    relabeled = [f"class-{(i * 7) % CLASSES:04d}" if i % 3 == 0 else f"class-{i % CLASSES:04d}" for i in ids]
    reg.commit("wide", pa.table({"id": ids, "label": relabeled, "score": [(i + 1) / ROWS for i in ids]}),
               message="relabel a third")
    reg.create_dataset("empty", "id", description="created, never committed")
    reg.create_dataset("nulls", "id", owner="alice", description="labels with gaps")
    reg.commit("nulls", pa.table({"id": [1, 2, 3, 4, 5], "label": ["a", None, "b", None, None],
                                  "source": ["x", "y", None, "y", "x"]}), message="gappy")
    reg.set_policy("nulls", NULL_POLICY, actor="alice")
    reg.qa_run("nulls", actor="ci")
    head = reg.show("wide").id
    runs = [new_run_id() for _ in range(3)]  # one minute: their first characters are the same
    for run in runs:
        ingest_run_event(reg.ctx, {
            "eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "producer": "https://example.com/trainer",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run}, "job": {"namespace": "airflow", "name": "train_wide"},
            "inputs": [{"namespace": registry_namespace(reg.ctx), "name": "wide",
                        "facets": {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": head}}}],
            "outputs": [{"namespace": "s3://models", "name": f"wide/{run[-4:]}"}]})
    specs = [EventSpec("request.denied", "request", f"POST /api/v1/datasets/wide/commits#{i}", None, None,
                       {"action": "commit", "method": "POST", "path": "/api/v1/datasets/wide/commits"})
             if i % 2 else EventSpec("read.training", "snapshot", head, "wide", head,
                                     {"job": f"train-{i % 7}", "ref": "wide@main", "rows": ROWS, "gate": "passed",
                                      "content_hash": "sha256:" + "ab" * 32, "pinned": False, "operation": "load"})
             for i in range(EVENTS)]
    with transaction(reg.ctx.engine) as session:
        record_many(session, reg.ctx, specs, actor="trainer")
    return runs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, list[str]]]:
    _need_browser()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("OPENLINEAGE_DISABLED", "true")
        folder = tmp_path_factory.mktemp("ui-real")
        reg = Registry.open(create_home(folder / "home").home)
        try:
            runs = _seed(reg)
            tokens = {role: bearer(reg, f"{role}-token", role)["Authorization"].removeprefix("Bearer ")
                      for role in ("admin", "reader", "auditor")}
            with serve(create_app(reg.home)) as url, httpx.Client(base_url=url + "/api/v1", timeout=60) as client:
                yield Site(url, client, tokens), runs
        finally:
            reg.close()


def _open(page: Any, s: Site, role: str, route: str, selector: str) -> None:
    """Sign in as ``role``, open ``route`` and wait (generously: the data is large) for ``selector``."""
    login(page, s, role)
    page.goto(f"{s.url}/ui/{route}")
    page.wait_for_selector(selector, timeout=120_000)


def _not_clipped(page: Any) -> None:
    """Nothing wider than the window: no page-wide horizontal scroll, no table cut off in its box."""
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    wide = page.evaluate("""[...document.querySelectorAll('.scroll')].filter(e => e.scrollWidth > e.clientWidth + 1)
                            .map(e => (e.firstElementChild || e).id || e.className)""")
    assert wide == [], wide


def _no_shell_advice(page: Any) -> None:
    text = page.locator("main").inner_text()
    assert "`registry" not in text and "registry policy set" not in text and "registry dataset" not in text, text


def test_high_cardinality_label_diff_shows_top_classes_and_other(page: Any, site: tuple[Site, list[str]]) -> None:
    s, _ = site
    _open(page, s, "reader", "#/diff?a=wide@v1&b=wide@main", "#matrix")
    expected = s.get("/diff", "reader", a="wide@v1", b="wide@main", labels="true", rows=50)
    classes = page.locator("#matrix thead th").all_inner_texts()[1:]
    assert len(classes) == 13 and classes[-1] == "other"
    shown = sum(int(c.inner_text().replace(",", "")) for c in page.locator("#matrix td:not(.zero)").all())
    assert shown == expected["rows_in_both"]  # every row counted once, the hidden classes in "other"
    assert page.locator("#net-change g.bar").count() == 13
    other = page.locator("#net-change g.bar").last.get_attribute("data-class")
    assert other == f"other ({CLASSES - 12:,} classes)"
    assert "2,000 classes" not in page.locator("#matrix-note").inner_text()
    assert f"the other {CLASSES - 12:,} are summed" in page.locator("#matrix-note").inner_text()
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 4_000, height
    assert page.locator(".pager-status").inner_text() == f"Rows 1–50 of {expected['relabeled']:,}"
    _not_clipped(page)
    shot(page, "real-label-diff-high-cardinality")


def test_a_column_that_is_not_categorical_gets_its_own_view(page: Any, site: tuple[Site, list[str]]) -> None:
    s, _ = site
    _open(page, s, "reader", "#/diff?a=wide@v1&b=wide@main&column=score", "#not-labels")
    page.wait_for_selector("#row-diff")
    assert "“score” is not a label column" in page.locator("#not-labels h2").inner_text()
    assert page.locator("#matrix").count() == 0 and page.locator("[role=alert]").count() == 0
    row = s.get("/diff", "reader", a="wide@v1", b="wide@main", rows=0)
    assert f"{row['changed']:,}" in page.locator("#row-diff").inner_text()
    _not_clipped(page)
    shot(page, "real-not-a-label-column")


def test_audit_page_reads_well_with_10000_events(page: Any, site: tuple[Site, list[str]]) -> None:
    s, _ = site
    _open(page, s, "auditor", "#/audit", "#audit-events")
    shown = s.get("/audit/events", "auditor", limit=200)[::-1]
    rows = page.locator("#audit-events tbody tr")
    assert rows.count() == 200
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 200 * 45, height  # one readable line per event, not a column of char-wrapped JSON
    denied = next(e for e in shown if e["action"] == "request.denied")
    row = page.locator(f"#audit-events tr[data-seq='{denied['seq']}']")
    assert row.locator("summary").inner_text() == "denied POST /api/v1/datasets/wide/commits (needs commit)"
    assert not row.locator("pre.json").is_visible()
    row.locator("summary").click()
    assert json.loads(row.locator("pre.json").inner_text()) == denied["details"]
    training = page.locator("#audit-events tr[data-action='read.training'] summary").first.inner_text()
    assert training.startswith("training read of 100,000 rows for job train-")
    with page.expect_download() as got:
        page.click("#export-csv")
    lines = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text())))
    assert [int(r["seq"]) for r in lines] == [e["seq"] for e in shown]
    assert lines[0]["summary"] and json.loads(lines[0]["details"]) == shown[0]["details"]
    with page.expect_download() as got:
        page.click("#export-json")
    assert json.loads(Path(got.value.path()).read_text()) == shown
    _not_clipped(page)
    shot(page, "real-audit")
    page.fill("#audit-action", "request.denied")
    page.fill("#audit-limit", "50")
    page.click("#audit-filter button[type=submit]")
    expect(page.locator("#audit-count")).to_contain_text("50 events, newest first.")
    assert set(page.locator("#audit-events td.action").all_inner_texts()) == {"request.denied"}
    page.fill("#audit-action", "no.such.action")
    page.click("#audit-filter button[type=submit]")
    expect(page.locator("#audit-count")).to_have_text("No audit events match these filters.")
    assert page.locator("#export-csv").count() == 0


def test_gate_page_shows_metric_threshold_and_details(page: Any, site: tuple[Site, list[str]]) -> None:
    s, _ = site
    _open(page, s, "reader", "#/gate/nulls", "#checks")
    gate = s.get("/gates/nulls", "reader")
    check = gate["failed"][0]
    row = page.locator("#checks tr.fail")
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == f"{check['metric']:,}" and cells[3] == str(check["threshold"])
    details = row.locator("td.details-cell").inner_text()
    assert "label: 3" in details and "source: 1" in details, details
    assert row.locator("[title]").count() == 0 or "label: 3" in details  # visible, not only in a tooltip
    _no_shell_advice(page)
    _not_clipped(page)
    shot(page, "real-gate-details")


def test_lineage_tells_runs_apart(page: Any, site: tuple[Site, list[str]]) -> None:
    s, runs = site
    _open(page, s, "reader", "#/lineage/wide", "#lineage-edges")
    assert len({r[:8] for r in runs}) == 1  # what the console used to show: one prefix for all three
    cells = page.locator("#lineage-edges code.run-id").all_inner_texts()
    assert len(cells) >= 3 and len(set(cells)) == len(set(page.locator("#lineage-edges code.run-id")
                                                            .evaluate_all("e => e.map(c => c.title)")))
    for run in runs:
        assert any(c.startswith(f"…{run[-8:]} · 20") for c in cells), (run, cells)
    labels = page.locator("#lineage-graph g.kind-run text.name").all_text_contents()
    assert len(set(labels)) == 3, labels
    _not_clipped(page)
    shot(page, "real-lineage")


def test_empty_states_instead_of_errors(page: Any, site: tuple[Site, list[str]]) -> None:
    s, _ = site
    _open(page, s, "admin", "#/datasets/empty", "main .empty")
    assert page.locator("[role=alert]").count() == 0
    _no_shell_advice(page)
    shot(page, "real-empty-dataset")
    page.goto(f"{s.url}/ui/#/gate/empty")
    page.wait_for_selector("main .empty")
    assert page.locator("[role=alert]").count() == 0
    _no_shell_advice(page)
    page.goto(f"{s.url}/ui/#/gate/wide")  # a dataset with no policy: a state, not an error
    page.wait_for_selector("#gate-state")
    assert page.locator("[role=alert]").count() == 0
    _no_shell_advice(page)
    shot(page, "real-no-gate")
    page.goto(f"{s.url}/ui/#/diff?a=wide@v1&b=wide@v1")
    page.wait_for_selector("#no-change", timeout=120_000)
    assert page.locator("#matrix").count() == 0 and page.locator("[role=alert]").count() == 0
    shot(page, "real-nothing-changed")
    page.goto(f"{s.url}/ui/#/datasets")
    page.wait_for_selector("#datasets")
    assert page.locator("tr[data-dataset='empty']").inner_text().count("no snapshot") == 1
    _no_shell_advice(page)


def test_history_of_1000_snapshots_and_a_plain_commit_sample(page: Any, site: tuple[Site, list[str]]) -> None:
    s, _ = site
    _open(page, s, "reader", "#/datasets/many", "#history")
    assert page.locator("#history tbody tr").count() == 100
    assert page.locator("#show-more").inner_text() == f"Show 100 more ({SNAPSHOTS - 100:,} not shown)"
    _not_clipped(page)
    shot(page, "real-history-1000")
    page.goto(f"{s.url}/ui/#/sample/many/1")
    page.wait_for_selector("#sample-history")
    entries = s.get("/datasets/many/history", "reader", key="1")
    assert len(entries) == 1 + (SNAPSHOTS - 1 + 2) // 4  # the first commit, then every fourth step
    values = page.locator("#sample-history tbody tr td:nth-child(3)").all_inner_texts()
    assert values[0] == "a" and values[1] == "v1" and values[-1] == entries[-1]["value"]
    assert [e["value"] for e in entries] == values
    _not_clipped(page)
    shot(page, "real-sample-plain-commits")


def test_other_pages_fit_1366(page: Any, site: tuple[Site, list[str]]) -> None:
    s, _ = site
    login(page, s, "admin")
    for route, selector in (("#/datasets", "#datasets"), ("#/gate/many", "#gate-state")):
        page.goto(f"{s.url}/ui/{route}")
        page.wait_for_selector(selector)
        _not_clipped(page)
    shot(page, "real-gate-many")
