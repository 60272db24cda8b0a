"""Fuzzing the API's OpenAPI schema with schemathesis: no 5xx, and every response matches the schema.

Every operation of ``/api/v1/openapi.json`` gets bounded, derandomized examples (``MAX_EXAMPLES`` each)
with an admin token, against an app whose registry holds a dataset with two snapshots (a tag on the
first), a QA policy and a gate result, so fuzzed refs like ``signs@main`` can reach real code paths.

Checks: ``not_a_server_error``, ``response_schema_conformance`` and ``status_code_conformance`` (every
error is declared: ``4XX`` with the ``{"error": {"code", "message"}}`` body). The streamed read
(``/snapshots/{ref}/data``) is checked for 5xx and status codes only: its 200 body is Arrow or Parquet
bytes, which a JSON schema cannot describe. The multipart / Arrow commit and import bodies are read from
the raw request (spooled under a size limit), so the schema has no body to generate for them; the fuzzer
still exercises their query parameters and headers, and the missing body must give a 4xx.

Fuzzer findings fixed in the endpoints are pinned by the regression tests at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from registry import Registry
from registry.api.app import create_app
from registry.auth.tokens import create_token
from registry.context import create_home
from tests.support.api_support import POLICY

MAX_EXAMPLES = 15
DATASET = "signs"
UNDESCRIBED_BODIES = {"/api/v1/snapshots/{ref}/data"}
"""Operations whose 200 body is bytes (Arrow IPC / Parquet), not JSON."""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """An app over a seeded SQLite registry and an admin token's headers."""
    mp = pytest.MonkeyPatch()
    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL", "OPENLINEAGE_URL"):
        mp.delenv(name, raising=False)
    mp.setenv("OPENLINEAGE_DISABLED", "true")
    home = create_home(tmp_path_factory.mktemp("fuzz") / "home").home
    with Registry.open(home) as reg:
        reg.create_dataset(DATASET, "id", description="street signs", owner="alice")
        first = reg.commit(DATASET, pa.table({"id": [1, 2, 3], "label": ["stop", "yield", "stop"]}), message="v1")
        reg.tag(f"{DATASET}@{first.snapshot_id}", "v1")
        reg.commit(DATASET, pa.table({"id": [3, 4], "label": ["yield", "stop"]}), message="v2", mode="upsert")
        reg.set_policy(DATASET, POLICY, actor="alice")
        reg.qa_run(DATASET)
        secret, _ = create_token(reg.ctx, "fuzzer", "admin", [], actor="setup")
    app = create_app(home)
    try:
        yield app, {"Authorization": f"Bearer {secret}"}
    finally:
        app.state.ctx.close()
        mp.undo()


@pytest.fixture(scope="module")
def api_schema(seeded: tuple[FastAPI, dict[str, str]]) -> schemathesis.BaseSchema:
    app, _ = seeded
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


@pytest.fixture(scope="module")
def auth(seeded: tuple[FastAPI, dict[str, str]]) -> dict[str, str]:
    return seeded[1]


SEEDED_PATH_VALUES = {"ref": [f"{DATASET}@main", f"{DATASET}@v1", DATASET], "name": [DATASET]}
"""Besides random strings, path parameters take these values, so fuzzed requests reach the services."""


def _strategy(operation: Any, mode: GenerationMode) -> st.SearchStrategy[schemathesis.Case]:
    """Random cases of ``operation``, and cases with the seeded dataset's names in its path."""
    seeded = [operation.as_strategy(mode, path_parameters={name: value})
              for name, values in SEEDED_PATH_VALUES.items() if "{" + name + "}" in operation.path
              for value in values]
    return st.one_of(operation.as_strategy(mode), *seeded)


def _fuzz(operation: Any, mode: GenerationMode, auth: dict[str, str]) -> None:
    checks = [not_a_server_error, status_code_conformance]
    if operation.path not in UNDESCRIBED_BODIES:
        checks.append(response_schema_conformance)

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(case=_strategy(operation, mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=auth, checks=checks)

    run()


def _negatable(operation: Any) -> bool:
    """Whether negative mode can break something: a query parameter, header or body (any string is a valid
    path segment, so path-only operations have nothing to negate)."""
    return bool(len(operation.query) or len(operation.headers) or len(operation.body))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_every_operation(api_schema: Any, auth: dict[str, str], mode: GenerationMode) -> None:
    """Each operation in turn (schemathesis' pytest plugin does not run under pytest 9, hence the loop);
    every failing operation is reported with schemathesis' own explanation and a reproducing request.
    Negative mode sends what the schema forbids (wrong types, out-of-range numbers, bad bodies): the answer
    must be a described 4xx, never a 5xx."""
    failures, fuzzed = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not _negatable(operation):
            continue
        fuzzed += 1
        try:
            _fuzz(operation, mode, auth)
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # only "nothing invalid to send" may skip
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: one run reports every operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert fuzzed >= (30 if mode is GenerationMode.POSITIVE else 15)
    assert not failures, "\n\n".join(failures)


def test_every_error_is_described(seeded: tuple[FastAPI, dict[str, str]]) -> None:
    """Every operation declares the error body clients get, so generated clients can parse it."""
    app, _ = seeded
    spec = app.openapi()
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert set(error["properties"]) == {"error"}
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            body = operation["responses"].get("4XX", {}).get("content", {}).get("application/json", {})
            assert body.get("schema") == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path)
            assert "422" not in operation["responses"], (method, path)  # no FastAPI {"detail"} shape


# Regression tests for what the fuzzer found (each answered 500 or broke the schema before the fix).

@pytest.fixture
def client(seeded: tuple[FastAPI, dict[str, str]]) -> Iterator[TestClient]:
    app, headers = seeded
    with TestClient(app, headers=headers, raise_server_exceptions=False) as test_client:
        yield test_client


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


def test_validation_errors_have_the_documented_shape(client: TestClient) -> None:
    _error(client.get("/api/v1/datasets/signs/log", params={"limit": "many"}), 422, "invalid_input")


@pytest.mark.parametrize(("path", "params"), [
    ("/api/v1/policies/signs", {"version": str(2**70)}),  # was 500: OverflowError binding it for SQLite
    ("/api/v1/policies/signs", {"version": "0"}),
    ("/api/v1/blame/signs", {"limit": str(2**70)}),  # was 500: OverflowError in pyarrow's slice
    ("/api/v1/datasets/signs/log", {"limit": "-1"}),  # was a silent empty list
    ("/api/v1/diff", {"a": "signs@v1", "b": "signs@main", "rows": "-5"}),  # was 200 with a truncated sample
])
def test_out_of_range_numbers_are_refused(client: TestClient, path: str, params: dict[str, str]) -> None:
    name = next(iter(set(params) - {"a", "b"}))
    assert name in _error(client.get(path, params=params), 422, "invalid_input")


def test_in_range_numbers_still_work(client: TestClient) -> None:
    assert client.get("/api/v1/policies/signs", params={"version": "1"}).json()["version"] == 1
    assert client.get("/api/v1/blame/signs", params={"limit": "2"}).json()["count"] == 2
    assert client.get("/api/v1/datasets/signs/log", params={"limit": "0"}).json() == {"data": [], "count": 0}
    assert len(client.get("/api/v1/datasets/signs/log", params={"limit": "1"}).json()["data"]) == 1
    assert client.get("/api/v1/diff", params={"a": "signs@v1", "b": "signs@main", "rows": "0"}).status_code == 200


@pytest.mark.postgres
def test_nul_bytes_are_invalid_input_on_postgres(postgres_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL refuses NUL in text, which was a 500 wherever a string reaches the catalog unvalidated:
    a ref after ``@``, a pin's job, a dataset's description or owner. Now 422, and nothing is created."""
    monkeypatch.setenv("REGISTRY_DATABASE_URL", postgres_url)
    monkeypatch.delenv("REGISTRY_STORAGE_URL", raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    home = create_home(tmp_path / "home").home
    with Registry.open(home) as reg:
        reg.create_dataset(DATASET, "id", owner="alice")
        reg.commit(DATASET, pa.table({"id": [1, 2], "label": ["a", "b"]}), message="v1")
        reg.set_policy(DATASET, POLICY, actor="alice")
        reg.qa_run(DATASET)  # passes, so a pin gets as far as storing its job
        secret, _ = create_token(reg.ctx, "fuzzer", "admin", [], actor="setup")
    app = create_app(home)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}, raise_server_exceptions=False) as client:
        for path in ("/api/v1/snapshots/signs@ma%00in", "/api/v1/refs/signs@%00", "/api/v1/gates/signs@a%00"):
            assert "NUL" in _error(client.get(path), 422, "invalid_input"), path
        _error(client.post("/api/v1/pins", json={"ref": DATASET, "job": "j\x00"}), 422, "invalid_input")
        for field in ("description", "owner"):
            body = {"name": f"nul-{field}", "key": ["id"], field: "x\x00"}
            _error(client.post("/api/v1/datasets", json=body), 422, "invalid_input")
        assert [d["name"] for d in client.get("/api/v1/datasets").json()["data"]] == [DATASET]
        assert client.get(f"/api/v1/refs/{DATASET}@main").status_code == 200  # the catalog still works
    app.state.ctx.close()
