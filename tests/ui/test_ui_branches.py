"""The console's branch page in a real browser: branch list, comparing two branches, the conflict table
with both sides' annotators, and the merge button only for tokens allowed to merge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.context import create_home
from registry.provenance.records import RECORD_SCHEMA
from registry.snapshots.commit import AnnotationInput, commit
from tests.support.api_support import bearer, serve
from tests.ui.test_ui_e2e import Site, browser, expect, login, page  # noqa: F401  (fixtures)

SCHEMA = pa.schema([("sample_id", pa.string()), ("label", pa.string())])


def _records(act: str, who: str, value: str) -> pa.Table:
    return pa.Table.from_pylist([{"annotation_id": act, "sample_key": "s1", "annotator_id": who, "value": value,
                                  "source_kind": "human", "created_at": "2026-11-30T10:00:00Z",
                                  "guideline_version": "g7"}], schema=RECORD_SCHEMA)


def seed(reg: Registry) -> None:
    reg.create_dataset("ds", "sample_id")
    reg.commit("ds", pa.table({"sample_id": ["s1", "s2"], "label": ["cat", "dog"]}, schema=SCHEMA))
    reg.branch("ds/relabel")
    commit(reg.ctx, "ds@relabel", pa.table({"sample_id": ["s1"], "label": ["lynx"]}, schema=SCHEMA), mode="upsert",
           annotations=AnnotationInput(_records("t1", "theo", "lynx"), "label", replace=False))
    commit(reg.ctx, "ds", pa.table({"sample_id": ["s1"], "label": ["tiger"]}, schema=SCHEMA), mode="upsert",
           annotations=AnnotationInput(_records("o1", "olga", "tiger"), "label", replace=False))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL"):
            patch.delenv(name, raising=False)
        folder: Path = tmp_path_factory.mktemp("ui-branches")
        reg = Registry.open(create_home(folder / "home").home)
        try:
            seed(reg)
            tokens = {role: bearer(reg, f"{role}-token", role)["Authorization"].removeprefix("Bearer ")
                      for role in ("admin", "reader")}
            with serve(create_app(reg.home)) as url, httpx.Client(base_url=url + "/api/v1", timeout=30) as client:
                yield Site(url, client, tokens)
        finally:
            reg.close()


def test_branch_page_shows_conflicts_with_annotators_and_merges(page: Any, site: Site) -> None:  # noqa: F811
    login(page, site, "admin")
    page.goto(site.url + "/ui/#/branches/ds?source=relabel&into=main")
    expect(page.locator("#branches tbody tr")).to_have_count(2)
    row = page.locator("#conflicts tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("tiger")
    expect(row).to_contain_text("olga")
    expect(row).to_contain_text("lynx")
    expect(row).to_contain_text("theo")
    expect(row).to_contain_text("g7")
    before = site.get("/snapshots/ds")["id"]
    page.select_option("#merge-strategy", "theirs")
    page.click("#merge-form button[type=submit]")
    expect(page.locator("#no-conflicts")).to_be_visible()
    after = site.get("/snapshots/ds")
    assert after["id"] != before and after["parents"][0] == before


def test_reader_sees_no_merge_button(page: Any, site: Site) -> None:  # noqa: F811
    login(page, site, "reader")
    page.goto(site.url + "/ui/#/branches/ds?source=relabel&into=main")
    page.wait_for_selector("#branches")
    page.wait_for_selector("#conflicts, #no-conflicts")
    assert page.locator("#merge-form").count() == 0
