"""API tokens: create (secret once, only its hash stored), list, revoke, authenticate, audit, CLI."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlmodel import select

from registry import Registry
from registry.auth.models import ApiTokenRow
from registry.auth.roles import PERMISSIONS, ROLES, Principal
from registry.auth.tokens import TOKEN_PREFIX, authenticate, create_token, list_tokens, revoke_token
from registry.db import transaction
from registry.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    exit_code_for,
    http_status_for,
)
from tests.conftest import Cli


def test_create_authenticate_revoke(reg: Registry) -> None:
    secret, info = create_token(reg.ctx, "ci-bot", "ci", ["signs"], "7d", actor="alice")
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40
    assert info.role == "ci" and info.datasets == ["signs"] and info.active and info.expires_at
    with transaction(reg.ctx.engine, readonly=True) as session:
        row = session.exec(select(ApiTokenRow)).one()
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(row.model_dump())
    assert authenticate(reg.ctx, secret) == Principal("ci-bot", "ci", ("signs",))

    for bad in (None, "", "nope", TOKEN_PREFIX + "x" * 43, secret[:-1]):
        with pytest.raises(Unauthenticated):
            authenticate(reg.ctx, bad)
    with pytest.raises(AlreadyExists):
        create_token(reg.ctx, "ci-bot", "reader")

    revoked = revoke_token(reg.ctx, "ci-bot", actor="alice")
    assert revoked.revoked_at and not revoked.active
    with pytest.raises(Unauthenticated):
        authenticate(reg.ctx, secret)
    with pytest.raises(InvalidInput):
        revoke_token(reg.ctx, "ci-bot")
    with pytest.raises(NotFound):
        revoke_token(reg.ctx, "ghost")

    events = reg.audit_log(action="token.")
    assert [(e.action, e.object_id, e.actor) for e in events] == [("token.create", "ci-bot", "alice"),
                                                                  ("token.revoke", "ci-bot", "alice")]
    assert secret not in json.dumps([e.to_dict() for e in events])
    assert reg.verify_audit().ok


def test_expired_token_is_refused(reg: Registry) -> None:
    secret, _ = create_token(reg.ctx, "short", "reader", expires="1d")
    with transaction(reg.ctx.engine) as session:
        row = session.exec(select(ApiTokenRow).where(ApiTokenRow.name == "short")).one()
        row.expires_at = "2000-01-01T00:00:00.000000Z"
        session.add(row)
    with pytest.raises(Unauthenticated):
        authenticate(reg.ctx, secret)
    assert not list_tokens(reg.ctx)[0].active


def test_bad_role_expiry_and_names_are_refused(reg: Registry) -> None:
    with pytest.raises(InvalidInput, match="unknown role"):
        create_token(reg.ctx, "t", "root")
    with pytest.raises(InvalidInput, match="past"):
        create_token(reg.ctx, "t", "reader", expires="2001-01-01")
    with pytest.raises(InvalidInput):
        create_token(reg.ctx, "bad name!", "reader")
    assert list_tokens(reg.ctx) == []


def test_permissions_table_and_scope() -> None:
    assert set().union(*PERMISSIONS.values()) == set(ROLES)
    assert PERMISSIONS["token_admin"] == {"admin"}
    assert all("admin" in roles for roles in PERMISSIONS.values())
    auditor = Principal("a", "auditor")
    auditor.require("audit")
    with pytest.raises(PermissionDenied):
        auditor.require("commit")
    scoped = Principal("w", "writer", ("signs",))
    scoped.require_ref("signs@v1")
    with pytest.raises(NotFound, match="unknown dataset 'cars'"):
        scoped.require_ref("cars@main")
    assert http_status_for(Unauthenticated("x")) == 401 and exit_code_for(Unauthenticated("x")) == 2


def test_token_cli(cli: Cli) -> None:
    created = cli("token", "create", "--name", "ops", "--role", "admin", "--json")
    assert created.code == 0, created
    body = json.loads(created.stdout)
    assert body["token"].startswith(TOKEN_PREFIX) and body["role"] == "admin" and body["datasets"] == []
    scoped = cli("token", "create", "--name", "lab", "--role", "writer", "--dataset", "signs", "--expires", "30d")
    assert scoped.code == 0 and TOKEN_PREFIX in scoped.stdout, scoped
    listed = cli("token", "list", "--json")
    tokens = json.loads(listed.stdout)
    assert [t["name"] for t in tokens] == ["lab", "ops"] and "token" not in tokens[0]
    assert body["token"] not in listed.stdout
    assert cli("token", "revoke", "lab").code == 0
    people = cli("token", "list")
    assert "revoked" in people.stdout and "active" in people.stdout
    again = cli("token", "revoke", "lab")
    assert again.code == 2 and "revoked" in again.stderr
    bad = cli("token", "create", "--name", "x", "--role", "root")
    assert bad.code == 2
