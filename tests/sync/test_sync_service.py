"""The labeling loop on the service protocol: ``Registry`` runs ``sync_label_studio``,
``register_label_studio_webhook`` and ``requeue`` with the host's ``LABEL_STUDIO_API_KEY``;
``RemoteService`` refuses them (a registry server never sends a Label Studio token to a URL a client
names), and the CLI refuses them against a server in its own words, before anything is called.
(The real-server runs of the three are in ``test_label_studio_sync.py``.)"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import registry_client
from fastapi import FastAPI, Request, Response

from registry import Registry
from registry.api.app import create_app
from registry.auth.tokens import create_token
from registry.context import create_home
from registry.errors import InvalidInput
from registry.remote_service import RemoteService
from registry.service import RegistryService
from tests.conftest import Cli
from tests.project.test_error_hints import CLI_SYNTAX
from tests.support.api_support import serve
from tests.sync.test_sync_audit import _tasks, fake_label_studio

LABELING = ("sync_label_studio", "register_label_studio_webhook", "requeue")


def recording(app: FastAPI, seen: list[str]) -> FastAPI:
    """``app``, noting each request's ``Authorization`` header in ``seen``."""
    async def note(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        seen.append(request.headers.get("authorization", ""))
        return await call_next(request)

    app.middleware("http")(note)
    return app


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, Path]]:
    """A registry server on 127.0.0.1 with LABEL_STUDIO_API_KEY set: its URL, an admin token, its home."""
    for name in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL", "REGISTRY_URL", "REGISTRY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "the-servers-label-studio-token")
    home = create_home(tmp_path / "server").home
    with Registry.open(home) as reg:
        token, _ = create_token(reg.ctx, "alice", "admin", actor="setup")
        reg.create_dataset("pets", "sample_id")
        reg.commit("pets", pa.table({"sample_id": ["a"], "label": ["cat"], "pred": ["dog"]}))
    with serve(create_app(home)) as url:
        yield url, token, home


def test_the_protocol_has_the_labeling_loop_and_both_sides_implement_it() -> None:
    for name in LABELING:
        assert callable(getattr(RegistryService, name, None)), name
        for side in (Registry, RemoteService):
            assert getattr(side, name) is not getattr(RegistryService, name), (side, name)


def test_the_remote_service_refuses_the_labeling_loop_and_calls_no_one(server: tuple[str, str, Path]) -> None:
    url, token, home = server
    seen: list[str] = []
    with serve(recording(FastAPI(), seen)) as label_studio:
        remote = RemoteService(registry_client.Client(url, token))
        try:
            calls: list[Callable[[], Any]] = [
                lambda: remote.sync_label_studio("pets", url=label_studio, project=1),
                lambda: remote.register_label_studio_webhook("pets", url=label_studio, project=1, hook_url=url),
                lambda: remote.requeue("pets@main", url=label_studio, project=1, where="label != pred",
                                       prediction_column="pred"),
            ]
            for what, call in zip(("sync", "webhook registration", "requeue"), calls, strict=True):
                with pytest.raises(InvalidInput) as refused:
                    call()
                message = refused.value.message
                assert message.startswith(f"the Label Studio {what} runs only on the registry host"), message
                assert "LABEL_STUDIO_API_KEY" in message and "REGISTRY_URL" in message
                assert not CLI_SYNTAX.search(message)  # the core's words: each edge adds its own
        finally:
            remote.close()
    assert seen == []  # neither the server nor this process called Label Studio
    with Registry.open(home) as reg:
        assert len(reg.log("pets")) == 1
        assert not reg.audit_log(action="snapshot.sync") and not reg.audit_log(action="labeling.requeue")


def test_the_cli_refuses_against_a_server_in_its_own_words(server: tuple[str, str, Path], tmp_path: Path) -> None:
    url, token, _home = server
    seen: list[str] = []
    cli = Cli(home=tmp_path / "nowhere", cwd=tmp_path)
    env = {"REGISTRY_URL": url, "REGISTRY_TOKEN": token, "LABEL_STUDIO_API_KEY": "a-clients-token"}
    with serve(recording(FastAPI(), seen)) as label_studio:
        for args, command in ((("sync", "label-studio", "pets", "--url", label_studio, "--project", "1"), "sync"),
                              (("requeue", "pets@main", "--to", "label-studio", "--url", label_studio, "--project",
                                "1", "--where", "label != pred"), "requeue")):
            result = cli(*args, env=env)
            assert result.code == 2, result
            assert f"`registry {command}` runs only on the registry host" in result.stderr, result.stderr
            assert "a-clients-token" not in result.stdout + result.stderr
    assert seen == [] and not (tmp_path / "nowhere").exists()


def test_the_local_sync_sends_the_hosts_label_studio_api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REGISTRY_HOME", "REGISTRY_STORAGE_URL", "REGISTRY_DATABASE_URL", "REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    home = create_home(tmp_path / "home").home
    seen: list[str] = []
    with serve(recording(fake_label_studio({"tasks": _tasks(1)}), seen)) as label_studio:
        monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
        with Registry.open(home) as reg, pytest.raises(InvalidInput, match="LABEL_STUDIO_API_KEY"):
            reg.sync_label_studio("animals", url=label_studio, project=1)
        assert seen == []
        monkeypatch.setenv("LABEL_STUDIO_API_KEY", "the-hosts-token")
        with Registry.open(home) as reg:  # settings are resolved when the registry opens
            result = reg.sync_label_studio("animals", url=label_studio, project=1)
            events = reg.audit_log()
    assert result.snapshot_id is not None and result.tasks_changed > 0
    assert seen and set(seen) == {"Token the-hosts-token"}
    assert "the-hosts-token" not in json.dumps(result.to_dict(), default=str)
    assert all("the-hosts-token" not in json.dumps(e.to_dict(), default=str) for e in events)
