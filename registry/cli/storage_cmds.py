"""``registry storage ...``: which object store a home uses, and moving it to another (thin: parse, call, print)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry.cli import output

if TYPE_CHECKING:
    from registry.registry import Registry

__all__ = ["storage"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _host(ctx: click.Context) -> Registry:
    """The home (storage work runs only where it lives; refused against a server)."""
    return ctx.obj.host()  # type: ignore[no-any-return]


@click.group()
def storage() -> None:
    """The object store: local folder, S3-compatible bucket or lakeFS branch (see docs/storage.md)."""


@storage.command("info")
@json_option
@click.pass_context
def storage_info(ctx: click.Context, as_json: bool) -> None:
    """Which store this home uses, where that is configured, and whether it answers."""
    fast = ctx.obj.fast_reads()
    info = fast.store_info() if fast is not None else None
    if info is None:
        info = _host(ctx).store_info().to_dict()
    output.render(info, as_json, _info_lines)


def _info_lines(info: dict[str, Any]) -> None:
    output.say(f"store:       {info['url']} ({info['kind']})")
    output.say(f"configured:  {info['configured_by']}")
    for key, value in info["details"].items():
        output.say(f"{key + ':':<12} {value if value not in (None, '') else '-'}")
    if info["cache_dir"]:
        output.say(f"cache:       {info['cache_dir']} ({info['cache_bytes']:,} bytes)")
    output.say("reachable:   yes" if info["reachable"] else f"reachable:   NO ({info['error']})")


@storage.command("migrate")
@click.option("--to", "to_url", required=True,
              help="Destination: s3://bucket/prefix, lakefs://repository/branch/prefix, or a folder.")
@click.option("--verify", "verify_all", is_flag=True,
              help="Also run the full verify against the destination before switching (every object is "
                   "hash-checked at the destination either way).")
@json_option
@click.pass_context
def storage_migrate(ctx: click.Context, to_url: str, verify_all: bool, as_json: bool) -> None:
    """Copy every referenced object to --to, verify each there, then switch this home to it.

    Snapshot ids do not change. An interrupted migration resumes where it stopped."""
    with output.progress_bar(f"copying objects to {to_url}") as advance:
        result = _host(ctx).migrate_store(to_url, verify_all=verify_all, progress=_progress(advance))
    if result.overridden_by_env:
        output.note(f"warning: REGISTRY_STORAGE_URL is set and overrides the switch; set it to {result.destination} "
                    "or unset it")
    output.emit(result.to_dict(), as_json,
                f"switched to {result.destination}: {result.objects} object(s), {result.copied} copied "
                f"({result.bytes_copied:,} bytes), {result.skipped} already verified there"
                + ("; full verify passed" if result.verified else ""))


def _progress(advance: Any) -> Any:
    """Feed the progress bar on a terminal; otherwise a line on stderr every 1,000 objects."""

    def report(done: int, total: int) -> None:
        advance(done, total)
        if done % 1000 == 0 or done == total:
            output.note(f"migrate: {done:,}/{total:,} objects")

    return report
