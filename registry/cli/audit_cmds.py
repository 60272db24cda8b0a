"""``registry audit ...`` and ``registry query``: the auditor's commands (thin: parse, call, print)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from registry.cli import output

if TYPE_CHECKING:
    from registry.service import RegistryService

__all__ = ["audit", "query"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _registry(ctx: click.Context) -> RegistryService:
    return ctx.obj.service()  # type: ignore[no-any-return]  # the root group's Session


@click.group()
def audit() -> None:
    """The tamper-evident audit log: list, verify, checkpoint, seal."""


@audit.command("log")
@click.option("--dataset", default=None, help="Only events about this dataset.")
@click.option("--actor", default=None, help="Only events by this actor.")
@click.option("--action", default=None, help="Only this action (e.g. snapshot.commit; 'snapshot.' for all of them).")
@click.option("--since", default=None, help="From this ISO date/time on (UTC unless it says otherwise).")
@click.option("--until", default=None, help="Before this ISO date/time.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the newest N matching events.")
@json_option
@click.pass_context
def audit_log(ctx: click.Context, dataset: str | None, actor: str | None, action: str | None, since: str | None,
              until: str | None, limit: int | None, as_json: bool) -> None:
    """Audit events, oldest first."""
    events = [e.to_dict() for e in _registry(ctx).audit_log(dataset=dataset, actor=actor, action=action, since=since,
                                                             until=until, limit=limit)]
    output.render(events, as_json, _event_lines)


def _event_lines(events: list[dict[str, Any]]) -> None:
    if not events:
        output.say("no matching audit events")
        return
    output.table(["SEQ", "TIME", "ACTOR", "ACTION", "OBJECT", "DATASET"],
                 [[str(e["seq"]), e["time"][:19], f"{e['actor']} ({e['actor_kind']})", e["action"],
                   _clip(f"{e['object_type']}:{e['object_id']}", OBJECT_WIDTH), e["dataset"] or "-"] for e in events])


OBJECT_WIDTH = 48
"""Characters of OBJECT shown in `audit log`; longer ones end in an ellipsis (``--json`` has them whole)."""


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@audit.command("verify")
@click.option("--checkpoint", "checkpoint", type=click.Path(dir_okay=False), default=None,
              help="A checkpoint file from `registry audit checkpoint`: also prove the history up to it.")
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, checkpoint: str | None, as_json: bool) -> None:
    """Recompute the whole hash chain; exit 1 naming the first bad event."""
    report = _registry(ctx).verify_audit(Path(checkpoint) if checkpoint else None)
    if as_json:
        output.print_json(report.to_dict())
    elif report.ok:
        against = f"; matches the checkpoint at event {report.checkpoint['seq']}" if report.checkpoint else ""
        output.say(f"ok: {report.events:,} event(s) in {report.segments} sealed segment(s) and the catalog chain "
                   f"to head {report.head_seq} ({report.head_hash[:12]}){against}")
    if not report.ok:
        if not as_json:
            output.error(f"audit verify failed at event {report.first_bad_seq}: {report.problem}")
        raise SystemExit(1)


@audit.command("checkpoint")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the checkpoint to this file (default: print it).")
@json_option
@click.pass_context
def audit_checkpoint(ctx: click.Context, out: str | None, as_json: bool) -> None:
    """The current (sequence, head hash, time), to keep outside the registry."""
    checkpoint = _registry(ctx).audit_checkpoint(Path(out) if out else None)
    if out is None or as_json:
        output.print_json(checkpoint.to_dict())
    else:
        output.say(f"checkpoint at event {checkpoint.seq} ({checkpoint.hash[:12]}) written to {out}")


@audit.command("seal")
@json_option
@click.pass_context
def audit_seal(ctx: click.Context, as_json: bool) -> None:
    """Seal the unsealed events into a Parquet segment now."""
    result = ctx.obj.host().seal_audit()
    if result is None:
        output.emit({"sealed": None}, as_json, "nothing to seal")
    else:
        output.emit({"sealed": result.to_dict()}, as_json,
                    f"sealed events {result.first_seq}..{result.last_seq} into segment {result.segment[:12]} "
                    f"({result.bytes:,} bytes)")


@click.command()
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--dataset", "dataset_ref", default=None, metavar="NAME@REF",
              help="Also expose that snapshot's rows as the view `data`.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (the same as --format json).")
@click.pass_context
def query(ctx: click.Context, sql: str, fmt: str, dataset_ref: str | None, as_json: bool) -> None:
    """Read-only SQL (DuckDB) over the catalog's views: datasets, snapshots, refs, audit_log and more.

    Views: datasets, snapshots, refs, schema_versions, annotations, audit_log, ... The query cannot read or
    write files, attach databases, load extensions or change settings.
    """
    result = _registry(ctx).query(sql, dataset=dataset_ref)
    rows = result.to_pylist()
    if fmt == "json" or as_json:
        output.print_json(rows)
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.column_names)
        writer.writerows([[_cell(v) for v in row.values()] for row in rows])
    else:
        output.table(result.column_names, [[output.cell(v) for v in row.values()] for row in rows])
        output.note(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _cell(value: object) -> str:
    """A CSV cell: null is the empty cell."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)
