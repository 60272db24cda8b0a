"""``registry lineage``: walk the lineage graph, deliver queued OpenLineage events, ingest events.

``registry lineage NAME@REF`` walks the graph (the ``show`` subcommand is implied); ``flush``,
``status`` and ``ingest`` manage events. Thin: parse, call one service function, print.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from registry.cli import output
from registry.cli.refs import parse_ref

if TYPE_CHECKING:
    from registry.cli.session import Session

__all__ = ["lineage"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


class _DefaultToShow(click.Group):
    """``registry lineage NAME@REF ...`` means ``registry lineage show NAME@REF ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in self.commands and not {"-h", "--help"} & set(args[:1]):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToShow)
def lineage() -> None:
    """Lineage graph and OpenLineage events: `registry lineage NAME@REF`, flush, status, ingest."""


@lineage.command("show")
@click.argument("ref")
@click.option("--upstream", "direction", flag_value="upstream", help="Only what REF came from.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what came from REF.")
@click.option("--depth", type=click.IntRange(min=1), default=3, show_default=True, help="Steps to walk.")
@click.option("--dot", "as_dot", is_flag=True, help="Print Graphviz DOT.")
@json_option
@click.pass_obj
def show(state: Any, ref: str, direction: str | None, depth: int, as_dot: bool, as_json: bool) -> None:
    """Walk the lineage graph from the snapshot NAME@REF (both directions by default)."""
    from registry.lineage.graph import (
        to_dot,  # lazy: CLI start-up
    )

    graph = state.service().lineage_walk(parse_ref(ref), direction or "both", depth)
    if as_dot:
        sys.stdout.write(to_dot(graph))
        return
    output.render(graph.to_dict(), as_json, _graph_lines)


def _graph_lines(graph: dict[str, Any]) -> None:
    output.say(f"lineage of {graph['root']} ({graph['direction']}, depth {graph['depth']})")
    if not graph["edges"]:
        output.say("  no edges recorded")
    for edge in graph["edges"]:
        output.say(f"  {edge['src']} -[{edge['kind']}]-> {edge['dst']}")


@lineage.command("flush")
@click.option("--wait", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Keep retrying with backoff for up to this many seconds while events are pending.")
@click.option("--retry-failed", is_flag=True, help="First return events that gave up to pending.")
@click.option("--background", is_flag=True, hidden=True, help="Automatic delivery: honour backoff, print nothing.")
@json_option
@click.pass_obj
def flush(state: Session, wait: float, retry_failed: bool, background: bool, as_json: bool) -> None:
    """Deliver pending OpenLineage events now, in order, each exactly once."""
    report = state.host().lineage_flush(retry_failed=retry_failed, respect_backoff=background, wait=wait)
    if background:
        return
    if report.busy:
        text = "another process is delivering events; nothing sent"
    elif report.disabled:
        text = "OPENLINEAGE_DISABLED=true: nothing sent"
    else:
        text = f"delivered {report.delivered} event(s); {report.pending} pending"
        if report.errors:
            text += f"; last error: {report.errors[-1]}"
    output.emit(report.to_dict(), as_json, text)


@lineage.command("status")
@json_option
@click.pass_obj
def status(state: Session, as_json: bool) -> None:
    """Pending, retrying, failed and delivered event counts, and where events go."""
    fast = state.fast_reads()
    info = fast.lineage_status() if fast is not None else None
    if info is None:
        info = state.host().lineage_status().to_dict()
    output.render(info, as_json, _status_lines)


def _status_lines(info: dict[str, Any]) -> None:
    output.say(f"pending    {info['pending']} ({info['retrying']} retrying)")
    output.say(f"failed     {info['failed']}")
    output.say(f"delivered  {info['delivered']}")
    output.say(f"sink       {info['sink']} (delivery: {info['delivery']})")
    if info["oldest_pending"]:
        output.say(f"oldest     {info['oldest_pending']}")
    if info["last_error"]:
        output.say(f"last error {info['last_error']}")


@lineage.command("ingest")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@json_option
@click.pass_obj
def ingest(state: Any, file: Any, as_json: bool) -> None:
    """Record the consumers named by OpenLineage RunEvents in FILE (JSON, a JSON list or JSON lines; - for stdin)."""

    results = [r.to_dict() for r in state.service().ingest_lineage(file.read())]
    output.render(results, as_json, _ingest_lines)


def _ingest_lines(results: list[dict[str, Any]]) -> None:
    for result in results:
        consumed = ", ".join(result["consumed"]) or "no registry snapshot"
        output.say(f"{result['job']} run {result['run_id']}: read {consumed}; {result['new_edges']} new edge(s)")
        for reason in result["skipped"]:
            output.note(f"  skipped {reason}")
        for name in result.get("other_namespaces", []):
            output.note(f"  not this registry's namespace: {name}")


@lineage.command("namespace")
@click.option("--fix", "fix", metavar="URI", default=None,
              help="Fix the namespace as URI (scheme://authority) if none is stored yet.")
@json_option
@click.pass_obj
def namespace(state: Session, fix: str | None, as_json: bool) -> None:
    """Show this registry's lineage namespace (fixed at `registry init`), or fix one on an older registry."""
    value, fixed = state.host().lineage_namespace(fix)
    info = {"namespace": value, "fixed": fixed}
    output.render(info, as_json, _namespace_lines)


def _namespace_lines(info: dict[str, Any]) -> None:
    output.say(info["namespace"])
    if not info["fixed"]:
        output.note("derived from the host, not fixed: fix it with `registry lineage namespace --fix URI`")
