"""API token use cases: create (the secret is shown once), list, revoke, and authenticate a secret.

Only the SHA-256 of a secret is stored; a lookup by that digest plus a constant-time comparison
authenticates. Creating and revoking a token append audit events in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from registry import catalog
from registry.audit import log as audit
from registry.auth.models import ApiTokenRow
from registry.auth.roles import Principal, check_role
from registry.context import Context, resolve_actor
from registry.db import read_connection, table_of, transaction
from registry.errors import AlreadyExists, Hint, InvalidInput, NotFound, Unauthenticated
from registry.timeutil import parse_expiry, utc_now

__all__ = ["TOKEN_PREFIX", "TokenInfo", "authenticate", "create_token", "has_admin_token", "list_tokens",
           "revoke_token"]

TOKEN_PREFIX = "rgt_"
"""Every secret starts with this, so secret scanners and people recognise a registry token."""


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the secret."""

    name: str
    role: str
    datasets: list[str]
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return _active(self.revoked_at, self.expires_at)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "active": self.active}


def _active(revoked_at: str | None, expires_at: str | None) -> bool:
    return revoked_at is None and (expires_at is None or expires_at > utc_now())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(row.name, row.role, json.loads(row.datasets), row.created_at, row.created_by, row.expires_at,
                     row.revoked_at)


def create_token(ctx: Context, name: str, role: str, datasets: list[str] | None = None, expires: str | None = None,
                 actor: str | None = None) -> tuple[str, TokenInfo]:
    """Create token ``name`` with ``role``, seeing only ``datasets`` (all when empty), until ``expires``
    (ISO time or a duration such as ``30d``). Returns the secret, which is never shown again.

    Raises:
        InvalidName: a bad token or dataset name.
        InvalidInput: an unknown role or a bad expiry.
        AlreadyExists: a token of that name exists (revoked ones too: names are never reused).
    """
    catalog.check_dataset_name(name)  # the same naming rules as datasets
    check_role(role)
    scope = sorted(set(datasets or []))
    for dataset in scope:
        catalog.check_dataset_name(dataset)
    expires_at = parse_expiry(expires) if expires else None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    who = resolve_actor(ctx, actor)
    row = ApiTokenRow(name=name, role=role, datasets=json.dumps(scope), secret_sha256=_digest(secret),
                      created_at=utc_now(), created_by=who.name, expires_at=expires_at)
    try:
        with transaction(ctx.engine) as session:
            if session.exec(select(ApiTokenRow).where(ApiTokenRow.name == name)).first() is not None:
                raise AlreadyExists(f"token {name!r} exists already")
            session.add(row)
            session.flush()
            audit.record(session, ctx, "token.create", "token", name, actor=who,
                         details={"role": role, "datasets": scope, "expires_at": expires_at,
                                  "secret_sha256": row.secret_sha256})  # lets verify catch a swapped secret
    except IntegrityError as exc:
        raise AlreadyExists(f"token {name!r} exists already") from exc
    return secret, _info(row)


def list_tokens(ctx: Context) -> list[TokenInfo]:
    """Every token, active or not, by name."""
    with transaction(ctx.engine, readonly=True) as session:
        return [_info(row) for row in session.exec(select(ApiTokenRow).order_by(col(ApiTokenRow.name))).all()]


def has_admin_token(ctx: Context) -> bool:
    """Whether an active admin token exists (``serve --bootstrap-admin`` creates one otherwise)."""
    return any(t.role == "admin" and t.active for t in list_tokens(ctx))


def revoke_token(ctx: Context, name: str, actor: str | None = None) -> TokenInfo:
    """Revoke token ``name`` for good.

    Raises:
        NotFound: no such token.
        InvalidInput: it is revoked already.
    """
    who = resolve_actor(ctx, actor)
    with transaction(ctx.engine) as session:
        row = session.exec(select(ApiTokenRow).where(ApiTokenRow.name == name)).first()
        if row is None:
            raise NotFound(f"unknown token {name!r}; the list of tokens shows their names",
                           hint=Hint("command", "token list"))
        if row.revoked_at is not None:
            raise InvalidInput(f"token {name!r} was revoked at {row.revoked_at}")
        row.revoked_at = utc_now()
        session.add(row)
        session.flush()
        audit.record(session, ctx, "token.revoke", "token", name, actor=who, details={"role": row.role})
        return _info(row)


def authenticate(ctx: Context, secret: str | None) -> Principal:
    """The principal a bearer secret belongs to.

    Raises:
        Unauthenticated: no secret, or an unknown, expired or revoked one (one message for all, so
            a caller learns nothing about which tokens exist).
    """
    refused = Unauthenticated("a valid API token is required (Authorization: Bearer <token>)")
    if not secret or not secret.startswith(TOKEN_PREFIX):
        raise refused
    digest = _digest(secret)
    # A Core select of the columns needed (every API request runs this): a quarter of the ORM's cost.
    with read_connection(ctx.engine) as connection:
        row = connection.execute(_BY_DIGEST, {"digest": digest}).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, digest):
        raise refused
    if not _active(row.revoked_at, row.expires_at):
        raise refused
    return Principal(row.name, row.role, tuple(json.loads(row.datasets)))


_TOKENS = table_of(ApiTokenRow).c
_BY_DIGEST = sa_select(_TOKENS.name, _TOKENS.role, _TOKENS.datasets, _TOKENS.secret_sha256, _TOKENS.expires_at,
                       _TOKENS.revoked_at).where(_TOKENS.secret_sha256 == bindparam("digest"))
