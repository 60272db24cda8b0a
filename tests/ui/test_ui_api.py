"""What the console adds to the server, over real HTTP: the /ui mount (redirect, files, security headers) and
the paged label-diff rows, including their refusals. No browser needed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pyarrow as pa
import pytest

from registry import Registry
from registry.api.app import create_app
from tests.support.api_support import bearer, serve


@pytest.fixture
def server(reg: Registry) -> Iterator[str]:
    reg.create_dataset("big", "id")
    ids = list(range(30))
    reg.commit("big", pa.table({"id": ids, "label": [f"c{i % 3}" for i in ids]}))
    reg.commit("big", pa.table({"id": ids, "label": [f"c{(i + 1) % 3}" if i < 25 else f"c{i % 3}" for i in ids]}))
    reg.create_dataset("other", "id")
    with serve(create_app(reg.home)) as url:
        yield url


def test_console_is_served_with_its_headers(server: str) -> None:
    moved = httpx.get(server + "/ui", follow_redirects=False)
    assert moved.status_code in (307, 308) and moved.headers["location"] == "/ui/"
    page = httpx.get(server + "/ui/")
    assert page.status_code == 200 and '<script type="module" src="app.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(server + "/ui/pages/diff.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(server + "/ui/missing.js").status_code == 404
    assert "innerHTML" not in httpx.get(server + "/ui/dom.js").text


def test_every_module_is_preloaded_and_none_writes_markup() -> None:
    """index.html fetches every module in one round (no second wave of imports), and no module parses API text
    as HTML."""
    from registry.ui import STATIC_DIR

    modules = {p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*.js")} - {"app.js"}
    index = (STATIC_DIR / "index.html").read_text()
    assert modules == set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', index))
    for path in STATIC_DIR.rglob("*.js"):
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", path.read_text()), path


def test_label_diff_rows_pages_through_every_change(server: str, reg: Registry) -> None:
    headers = bearer(reg, "reader", "reader")
    log = reg.log("big")
    params = {"a": f"big@{log[1].id}", "b": f"big@{log[0].id}"}
    whole = httpx.get(server + "/api/v1/diff", params={**params, "labels": "true", "rows": 100}, headers=headers)
    assert whole.status_code == 200
    expected = whole.json()["changes"]
    assert len(expected) == 25
    pages = []
    for offset in (0, 10, 20):
        page = httpx.get(server + "/api/v1/diff/labels/rows", params={**params, "offset": offset, "limit": 10},
                         headers=headers).json()
        assert page["total"] == 25 and page["offset"] == offset
        pages.extend(page["rows"])
    assert pages == expected
    past = httpx.get(server + "/api/v1/diff/labels/rows", params={**params, "offset": 100}, headers=headers).json()
    assert past == {"total": 25, "offset": 100, "rows": []}


@pytest.mark.parametrize(("extra", "status", "code"), [
    ({"limit": 0}, 422, "invalid_input"),
    ({"limit": 5000}, 422, "invalid_input"),
    ({"offset": -1}, 422, "invalid_input"),
    ({"column": "nope"}, 422, "invalid_input"),
    ({"b": "other"}, 404, "not_found"),
    ({"b": "big@ffffffffffff"}, 404, "not_found"),
])
def test_label_diff_rows_refuses_bad_requests(server: str, reg: Registry, extra: dict[str, object], status: int,
                                              code: str) -> None:
    headers = bearer(reg, "reader", "reader")
    params = {"a": "big@main~1", "b": "big@main", **extra}
    rows = server + "/api/v1/diff/labels/rows"
    response = httpx.get(rows, params=params, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    fine = {"a": "big@main~1", "b": "big@main"}
    assert httpx.get(rows, params=fine).status_code == 401
    assert httpx.get(rows, params=fine, headers=bearer(reg, "scoped", "reader", ["other"])).status_code == 404
