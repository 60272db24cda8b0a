"""``registry token ...``: create, list and revoke API tokens (thin: parse, call, print)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry.auth.roles import ROLES
from registry.cli import output

if TYPE_CHECKING:
    from registry.registry import Registry

__all__ = ["token"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _host(ctx: click.Context) -> Registry:
    """The home (tokens are made only where it lives; refused against a server)."""
    return ctx.obj.host()  # type: ignore[no-any-return]


@click.group()
def token() -> None:
    """API tokens for `registry serve`: create (shown once), list, revoke."""


@token.command("create")
@click.option("--name", required=True, help="A unique name; the audit log records it as the actor.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do (see docs/api.md).")
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeat; default: every dataset).")
@click.option("--expires", default=None, help="ISO time or duration (30m, 12h, 7d, 2w); default: never.")
@json_option
@click.pass_context
def token_create(ctx: click.Context, name: str, role: str, datasets: tuple[str, ...], expires: str | None,
                 as_json: bool) -> None:
    """Create a token and print its secret once (only its SHA-256 is stored)."""
    secret, info = _host(ctx).create_token(name, role, list(datasets), expires)
    output.emit({**info.to_dict(), "token": secret}, as_json,
                f"created token {info.name} (role {info.role}); it is shown only now:\n{secret}")


@token.command("list")
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """Every token with its role, scope and state (never the secret)."""
    fast = ctx.obj.fast_reads()
    tokens = fast.tokens() if fast is not None else None
    if tokens is None:
        tokens = [t.to_dict() for t in _host(ctx).tokens()]
    output.render(tokens, as_json, _token_lines)


def _token_lines(tokens: list[dict[str, Any]]) -> None:
    if not tokens:
        output.say("no tokens; `registry token create --name NAME --role ROLE` creates one")
        return
    output.table(["NAME", "ROLE", "DATASETS", "CREATED", "EXPIRES", "STATE"],
                 [[t["name"], t["role"], ",".join(t["datasets"]) or "*", t["created_at"][:19],
                   (t["expires_at"] or "-")[:19], "active" if t["active"] else
                   ("revoked" if t["revoked_at"] else "expired")] for t in tokens])


@token.command("revoke")
@click.argument("name")
@json_option
@click.pass_context
def token_revoke(ctx: click.Context, name: str, as_json: bool) -> None:
    """Revoke token NAME; requests with it get 401 from then on."""
    info = _host(ctx).revoke_token(name)
    output.emit(info.to_dict(), as_json, f"revoked token {info.name}")
