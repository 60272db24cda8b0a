"""``registry serve``: run the HTTP API under uvicorn."""

from __future__ import annotations

import os

import click

from registry.cli import output

__all__ = ["serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--bootstrap-admin", is_flag=True,
              help="Create an admin token named 'admin' if no active admin token exists, and print it once.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, bootstrap_admin: bool) -> None:
    """Serve the registry over HTTP (API under /api/v1, docs at /docs); see docs/api.md."""
    import uvicorn

    registry = ctx.obj.registry()  # the root group's _State: opens (and checks) the home first
    if bootstrap_admin:
        from registry.auth.tokens import create_token, has_admin_token

        if has_admin_token(registry.ctx):
            output.say("an admin token exists already; none created")
        else:
            secret, info = create_token(registry.ctx, "admin", "admin")
            output.say(f"created admin token {info.name}; it is shown only now:\n{secret}")
    os.environ["REGISTRY_HOME"] = str(registry.home)
    registry.close()
    output.say(f"serving {registry.home} on http://{host}:{port} (docs: /docs)")
    uvicorn.run("registry.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info")
