"""The web console end to end: a real uvicorn server on 127.0.0.1 and Debian's headless Chromium driven by
Playwright. Every page is screenshotted into test-artifacts/ui/."""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.context import create_home
from registry.lineage.emit import registry_namespace
from registry.lineage.intake import ingest_run_event
from tests.support import provenance_fixtures as lsx
from tests.support.api_support import bearer, serve

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
FAILING = "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 1000\n"
LONG = 101
"""Snapshots of the dataset ``long``: more than the 100 the history draws at first."""
PASSING = "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 2\n"


def _need_browser() -> None:
    """Skip without Chromium or Playwright, saying which; in CI (``CI=true``) fail instead."""
    reason = None
    if shutil.which(CHROMIUM) is None:
        reason = f"the console tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        reason = "the console tests need Playwright for Python (pip install -e '.[dev]')"
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the console tests: {reason}")
    pytest.skip(reason)


@dataclass
class Site:
    url: str
    api: httpx.Client
    tokens: dict[str, str]
    """Role -> secret."""

    def get(self, path: str, role: str = "admin", **params: Any) -> Any:
        response = self.api.get(path, params=params, headers={"Authorization": f"Bearer {self.tokens[role]}"})
        assert response.status_code == 200, response.text
        body = response.json()
        return body["data"] if isinstance(body, dict) and set(body) == {"data", "count"} else body  # a list's items


def seed(reg: Registry, folder: Path) -> None:
    """signs: two Label Studio imports (tag v1), a failing gate and a consumer job; plain: a passing gate;
    big: 130 rows of which 120 are relabeled (three pages of changed rows); long: 101 snapshots."""
    reg.import_annotations("label-studio", "signs", lsx.write(folder / "v1.json", lsx.export_v1()), key="image",
                           guideline_version="g1", author="importer", message="first labeling round")
    reg.tag("signs@main", "v1")
    reg.import_annotations("label-studio", "signs", lsx.write(folder / "v2.json", lsx.export_v2()), key="image",
                           guideline_version="g2", author="importer", message="second round: stop -> yield")
    reg.set_policy("signs", FAILING, actor="importer")
    reg.qa_run("signs", actor="ci")
    head = reg.show("signs").id
    ingest_run_event(reg.ctx, {
        "eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "producer": "https://example.com/trainer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "airflow", "name": "train_signs"},
        "inputs": [{"namespace": registry_namespace(reg.ctx), "name": "signs",
                    "facets": {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": head}}}],
        "outputs": [{"namespace": "s3://models", "name": "resnet/42"}]})
    reg.create_dataset("plain", "id", description="a passing dataset", owner="alice")
    reg.commit("plain", pa.table({"id": [1, 2, 3], "label": ["a", "b", "a"]}), message="three rows")
    reg.set_policy("plain", PASSING, actor="alice")
    reg.qa_run("plain", actor="ci")
    reg.create_dataset("big", "id", description="many relabels")
    ids = list(range(130))
    reg.commit("big", pa.table({"id": ids, "label": [f"c{i % 4}" for i in ids]}), message="first")
    reg.commit("big", pa.table({"id": ids, "label": [f"c{(i + 1) % 4}" if i < 120 else f"c{i % 4}" for i in ids]}),
               message="relabel 120")
    reg.create_dataset("long", "id", description="more snapshots than one screen")
    reg.commit("long", pa.table({"id": [0, 1, 2], "label": ["x", "x", "x"]}), message="start")
    for i in range(1, LONG):
        reg.commit("long", pa.table({"id": [i % 3], "label": [f"v{i}"]}), mode="upsert", message=f"step {i}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
            patch.delenv(name, raising=False)
        folder = tmp_path_factory.mktemp("ui")
        reg = Registry.open(create_home(folder / "home").home)
        try:
            seed(reg, folder)
            tokens = {role: bearer(reg, f"{role}-token", role)["Authorization"].removeprefix("Bearer ")
                      for role in ("admin", "reader", "auditor")}
            with serve(create_app(reg.home)) as url, httpx.Client(base_url=url + "/api/v1", timeout=30) as client:
                yield Site(url, client, tokens)
        finally:
            reg.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-US", accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], errors


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page: Any, site: Site, role: str) -> None:
    page.goto(site.url + "/ui/")
    page.fill("#token", site.tokens[role])
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("#datasets")


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_login_shows_datasets_with_the_apis_numbers(page: Any, site: Site) -> None:
    page.goto(site.url + "/ui/")
    shot(page, "login")
    login(page, site, "admin")
    assert page.locator("#session .who").inner_text() == "admin-token (admin)"
    for d in site.get("/datasets"):
        row = page.locator(f"#datasets tr[data-dataset='{d['name']}']")
        assert row.locator("td").nth(2).inner_text() == f"{d['rows']:,}"
        assert row.locator("td").nth(3).inner_text() == f"{d['snapshots']:,}"
        state = site.get(f"/gates/{d['name']}")["state"]
        assert row.locator(".badge").get_attribute("data-state") == state
    assert page.locator("tr[data-dataset='signs'] .badge").inner_text() == "failed"
    assert page.locator("tr[data-dataset='plain'] .badge").inner_text() == "passed"
    shot(page, "datasets")


def test_history_then_label_diff_matches_the_api(page: Any, site: Site) -> None:
    login(page, site, "admin")
    page.click("a[href='#/datasets/signs']")
    page.wait_for_selector("#history")
    log = site.get("/datasets/signs/log")
    assert page.locator("#history tbody tr").count() == len(log)
    assert page.locator(f"tr[data-snapshot='{log[1]['id']}'] .badge.tag").inner_text() == "v1"
    assert page.locator(f"tr[data-snapshot='{log[0]['id']}'] .badge.branch").inner_text() == "main"
    assert page.locator("#tag-form").count() == 1  # the admin may tag
    shot(page, "history")
    page.click("#diff-selected")
    page.wait_for_selector("#matrix")
    expected = site.get("/diff", a=f"signs@{log[1]['id']}", b=f"signs@{log[0]['id']}", labels="true")
    shown = {(c.get_attribute("data-from"), c.get_attribute("data-to")): c.inner_text()
             for c in page.locator("#matrix td:not(.zero)").all()}
    assert shown == {(f, t): f"{n:,}" for f, row in expected["matrix"].items() for t, n in row.items()}
    assert page.locator("[data-field=relabeled]").inner_text() == f"{expected['relabeled']:,}"
    bars = {g.get_attribute("data-class"): g.locator("text.value").text_content()
            for g in page.locator("#net-change g.bar").all()}
    assert bars == {c: ("+" if n > 0 else "") + f"{n:,}" for c, n in expected["net_change"].items()}
    assert page.locator("#by-annotator tbody tr").count() == len(expected["by_annotator"])
    keys = page.locator("#changes tbody tr td:first-child").all_inner_texts()
    assert keys == [c["key"] for c in expected["changes"]]
    shot(page, "label-diff")


def test_changed_rows_are_paged(page: Any, site: Site) -> None:
    login(page, site, "reader")
    log = site.get("/datasets/big/log")
    a, b = f"big@{log[1]['id']}", f"big@{log[0]['id']}"
    page.goto(f"{site.url}/ui/#/diff?a={a}&b={b}")
    page.wait_for_selector("#changes")
    assert page.locator("#changes tbody tr").count() == 50
    assert page.locator(".pager-status").inner_text() == "Rows 1–50 of 120"
    page.click("#page-next")
    expect(page.locator(".pager-status")).to_have_text("Rows 51–100 of 120")
    second = site.get("/diff/labels/rows", "reader", a=a, b=b, offset=50, limit=50)
    assert second["total"] == 120
    assert page.locator("#changes tbody tr td:first-child").all_inner_texts() == [r["key"] for r in second["rows"]]
    page.click("#page-next")
    expect(page.locator(".pager-status")).to_have_text("Rows 101–120 of 120")
    assert page.locator("#page-next").is_disabled()
    shot(page, "label-diff-paged")


def test_failed_gate_shows_the_failing_check(page: Any, site: Site) -> None:
    login(page, site, "admin")
    page.click("tr[data-dataset='signs'] .badge")
    page.wait_for_selector("#checks")
    failing = page.locator("#checks tr.fail")
    assert failing.count() == 1
    assert failing.locator("th").inner_text() == "row_count"
    gate = site.get("/gates/signs")
    metric = gate["failed"][0]["metric"]
    assert failing.locator("td").nth(2).inner_text() == f"{metric:,}"
    assert "FAIL" in failing.inner_text()
    assert page.locator("#gate-state .badge").inner_text() == "failed"
    assert page.locator("#policy-version").inner_text() == str(gate["policy_version"])
    assert page.locator("#results details").count() == len(site.get("/gates/signs/results"))
    assert page.locator("#run-qa").count() == 1 and page.locator("#waive-form").count() == 1
    shot(page, "gate")


def test_audit_trail_filters(page: Any, site: Site) -> None:
    login(page, site, "auditor")
    page.click("nav a:has-text('Audit trail')")
    page.wait_for_selector("#audit-events")
    page.wait_for_selector("#chain-state .badge")
    assert page.locator("#chain-state .badge").inner_text() == "intact"
    page.fill("#audit-dataset", "signs")
    page.fill("#audit-action", "ref.tag")
    page.click("#audit-filter button[type=submit]")
    expect(page.locator("#audit-count")).to_contain_text("1 event, newest first.")
    expected = site.get("/audit/events", "auditor", dataset="signs", action="ref.tag", limit=200)
    assert len(expected) == 1
    assert page.locator("#audit-events td.action").all_inner_texts() == ["ref.tag"]
    assert page.locator("#audit-events tbody tr").get_attribute("data-seq") == str(expected[0]["seq"])
    shot(page, "audit")


def test_reader_sees_no_write_controls(page: Any, site: Site) -> None:
    login(page, site, "reader")
    assert page.locator("nav a:has-text('Audit trail')").count() == 0
    page.goto(site.url + "/ui/#/datasets/signs")
    page.wait_for_selector("#history")
    assert page.locator("#tag-form").count() == 0
    page.goto(site.url + "/ui/#/gate/signs")
    page.wait_for_selector("#checks")
    assert page.locator(".write").count() == 0
    assert page.locator("#run-qa, #waive-form").count() == 0
    shot(page, "gate-reader")


def test_a_wrong_token_sees_only_the_login_error(page: Any, site: Site) -> None:
    page.goto(site.url + "/ui/#/datasets/signs")
    page.fill("#token", "rgt_" + "x" * 43)
    page.click("button:has-text('Sign in')")
    alert = page.wait_for_selector("[role=alert]")
    assert "did not accept this token" in alert.inner_text()
    assert page.locator("nav a").count() == 0
    assert page.locator("table").count() == 0
    assert page.evaluate("sessionStorage.length") == 0
    page.goto(site.url + "/ui/#/audit")
    page.wait_for_selector("#token")
    assert page.locator("table").count() == 0
    shot(page, "login-error")
    page.goto(site.url + "/ui/#/datasets/signs")  # a bookmark opens once the right token is given
    page.fill("#token", site.tokens["reader"])
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("#history")
    page.click("#logout")
    page.wait_for_selector("#token")
    assert page.evaluate("sessionStorage.length") == 0 and page.locator("nav a").count() == 0


def test_keyboard_reaches_login_and_dataset_links(page: Any, site: Site) -> None:
    page.goto(site.url + "/ui/")
    page.wait_for_selector("#token")
    page.evaluate("document.activeElement.blur()")
    focused = []
    for _ in range(4):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id"))
        if focused[-1] == "token":
            break
    assert focused[-1] == "token", focused
    page.keyboard.type(site.tokens["reader"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#datasets")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == "#/datasets/signs":
            break
    else:
        pytest.fail("Tab never reached the dataset link")
    shot(page, "keyboard-focus")
    page.keyboard.press("Enter")
    page.wait_for_selector("#history")
    assert page.locator("h1").inner_text() == "signs"


def test_sample_provenance_and_lineage(page: Any, site: Site) -> None:
    login(page, site, "reader")
    key = "s3://signs/1.jpg"
    page.goto(f"{site.url}/ui/#/sample/signs/{key.replace(':', '%3A').replace('/', '%2F')}")
    page.wait_for_selector("#sample-history")
    entries = site.get("/datasets/signs/history", "reader", key=key)
    assert page.locator("#sample-history tbody tr").count() == len(entries)
    assert "1 (alice@example.com)" in page.locator("#sample-history").inner_text()  # the id, shown with email
    shot(page, "sample")
    page.goto(f"{site.url}/ui/#/lineage/signs")
    page.wait_for_selector("#lineage-graph")
    graph = site.get("/lineage/graph", "reader", ref="signs")
    assert page.locator("#lineage-graph g.lnode").count() == len(graph["nodes"])
    assert page.locator("#lineage-edges tbody tr").count() == len(graph["edges"])
    assert page.locator("#lineage-graph g.kind-run").count() == 1
    shot(page, "lineage")


def test_write_controls_tag_and_run_qa(page: Any, site: Site) -> None:
    login(page, site, "admin")
    page.goto(site.url + "/ui/#/datasets/plain")
    page.wait_for_selector("#tag-form")
    page.fill("#tag-name", "reviewed")
    page.click("#tag-form button[type=submit]")
    expect(page.locator("#history .badge.tag")).to_have_text("reviewed")
    assert site.get("/snapshots/plain")["tags"] == ["reviewed"]
    page.fill("#tag-name", "reviewed")
    page.click("#tag-form button[type=submit]")
    expect(page.locator("#tag-form [role=alert]")).to_contain_text("reviewed")  # tags never move: the API's 409
    before = len(site.get("/gates/plain/results"))
    page.goto(site.url + "/ui/#/gate/plain")
    page.wait_for_selector("#run-qa")
    page.click("#run-qa")
    expect(page.locator("#results details")).to_have_count(before + 1)
    assert len(site.get("/gates/plain/results")) == before + 1
    assert page.locator("#waive-form").count() == 0  # a passing gate offers no waiver


def test_long_history_draws_100_then_the_rest(page: Any, site: Site) -> None:
    login(page, site, "reader")
    page.goto(site.url + "/ui/#/datasets/long")
    page.wait_for_selector("#history")
    assert page.locator("#history tbody tr").count() == 100
    assert page.locator("#history svg.lanes circle").count() == 100
    assert page.locator("#show-more").inner_text() == f"Show {LONG - 100} more ({LONG - 100} not shown)"
    page.click("#show-more")
    expect(page.locator("#history tbody tr")).to_have_count(LONG)
    assert page.locator("#show-more").is_hidden()
    log = site.get("/datasets/long/log", "reader")
    assert page.locator("#history tbody tr").evaluate_all("rows => rows.map(r => r.dataset.snapshot)") == [
        s["id"] for s in log]
    page.check(f"tr[data-snapshot='{log[-1]['id']}'] input[name=a]")
    page.click("#diff-selected")
    page.wait_for_selector("#matrix")
    expected = site.get("/diff", "reader", a=f"long@{log[-1]['id']}", b=f"long@{log[0]['id']}", labels="true")
    assert page.locator("[data-field=relabeled]").inner_text() == f"{expected['relabeled']:,}"
