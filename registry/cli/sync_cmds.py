"""``registry sync label-studio`` and ``registry requeue``: the labeling loop at the command line (thin)."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import click

from registry.cli import output
from registry.cli.refs import parse_ref
from registry.errors import InvalidInput, RegistryError

if TYPE_CHECKING:
    from registry.service import RegistryService
    from registry.sync.service import SyncResult

__all__ = ["requeue", "sync"]

_EVERY = re.compile(r"^(\d+)(s|m|h)?$")


def parse_every(text: str) -> float:
    """``30s``, ``5m``, ``1h`` or plain seconds, as seconds (at least one)."""
    match = _EVERY.match(text.strip())
    if not match or int(match[1]) < 1:
        raise InvalidInput(f"--every {text!r}: expected a duration such as 30s, 5m or 1h")
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[match[2]]


def _service(ctx: click.Context, command: str) -> RegistryService:
    """The registry, on this host: against a server the command is refused (exit 2) in the CLI's words
    before anything opens (the service itself refuses the labeling loop remotely too)."""
    ctx.obj.require_host(command)
    return ctx.obj.service()  # type: ignore[no-any-return]  # the root group's Session


@click.group()
def sync() -> None:
    """Sync a dataset from a running labeling tool."""


@sync.command("label-studio")
@click.argument("name")
@click.option("--url", required=True, help="The Label Studio server, e.g. http://localhost:8080 "
              "(token from $LABEL_STUDIO_API_KEY).")
@click.option("--project", required=True, type=int, help="The Label Studio project id.")
@click.option("--key", default=None, help="The task data field that identifies a sample (default: the task id).")
@click.option("--guideline-version", default=None, help="The labeling guideline of the annotations synced now.")
@click.option("--every", default=None, help="Keep syncing at this interval (30s, 5m, 1h) until stopped.")
@click.option("--evaluate", is_flag=True, help="Run the dataset's QA gate on the new snapshot and report it.")
@click.option("--register-webhook", "hook_url", default=None, metavar="URL",
              help="After syncing, register a Label Studio webhook calling this registry service at URL.")
@click.option("--author", default=None, help="Who syncs (default: the registry's author).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (one object per cycle).")
@click.pass_context
def label_studio(ctx: click.Context, name: str, url: str, project: int, key: str | None,
                 guideline_version: str | None, every: str | None, evaluate: bool, hook_url: str | None,
                 author: str | None, as_json: bool) -> None:
    """Commit what changed in Label Studio project PROJECT since the last sync as NAME's next snapshot.

    Nothing changed: no snapshot. A failure commits nothing and exits 2 naming the server and status;
    the next sync resumes from the last committed point (docs/labeling-loop.md)."""
    service = _service(ctx, "sync")
    interval = parse_every(every) if every is not None else None

    def cycle() -> SyncResult:
        with output.status(f"syncing project {project}") as note:
            result = service.sync_label_studio(name, url=url, project=project, key=key,
                                               guideline_version=guideline_version, author=author,
                                               evaluate=evaluate, progress=note)
        for warning in result.warnings:
            output.note(f"warning: {warning}")
        output.emit(result.to_dict(), as_json, result.line())
        return result

    if interval is None:
        result = cycle()
        if hook_url is not None:
            hook = service.register_label_studio_webhook(name, url=url, project=project, hook_url=hook_url)
            output.emit(hook.to_dict(), as_json, f"webhook registered: project {project} -> {hook.webhook}")
        if evaluate and result.gate and result.gate.get("status") == "failed":
            ctx.exit(1)
        return
    if hook_url is not None:
        raise InvalidInput("--register-webhook registers once; run it without --every")
    try:
        while True:
            try:
                cycle()
            except RegistryError as exc:  # keep polling: the next cycle resumes from the last committed point
                output.note(f"{time.strftime('%H:%M:%S')} sync failed: {exc.message}")
            time.sleep(interval)
    except KeyboardInterrupt:
        output.note("stopped")


@click.command()
@click.argument("ref", metavar="NAME@REF")
@click.option("--to", "tool", required=True, type=click.Choice(["label-studio"]), help="The labeling tool.")
@click.option("--url", required=True, help="The Label Studio server (token from $LABEL_STUDIO_API_KEY).")
@click.option("--project", required=True, type=int, help="The Label Studio project id.")
@click.option("--where", required=True, help="SQL predicate over the snapshot's rows, e.g. \"label != pred\".")
@click.option("--prediction-column", default=None, help="The column holding the model's label.")
@click.option("--score-column", default=None, help="The column holding the model's score.")
@click.option("--model-version", default=None, help="The model version the predictions come from.")
@click.option("--limit", type=int, default=None, help="Send at most N samples (default and maximum 10000).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def requeue(ctx: click.Context, ref: str, tool: str, url: str, project: int, where: str,
            prediction_column: str | None, score_column: str | None, model_version: str | None,
            limit: int | None, dry_run: bool, as_json: bool) -> None:
    """Send the samples of NAME@REF matching --where back to Label Studio, with the model's prediction."""
    service = _service(ctx, "requeue")
    if score_column is not None and prediction_column is None:
        raise InvalidInput("--score-column goes with --prediction-column")
    result = service.requeue(parse_ref(ref), url=url, project=project, where=where,
                             prediction_column=prediction_column, score_column=score_column,
                             model_version=model_version, limit=limit, dry_run=dry_run)
    if as_json:
        output.print_json(result.to_dict())
        return
    if dry_run:
        for task in result.tasks:
            target = f"task {task['task_id']}" if task["task_id"] is not None else "new task"
            output.say(f"{task['key']} -> {target}" + (f" with prediction {json.dumps(task['prediction'])}"
                                                         if task["prediction"] else ""))
        output.say(f"dry run: {result.matched} sample(s) would go to project {project}; nothing sent")
        return
    output.say(f"{result.matched} sample(s) -> project {project} at {result.server}: {len(result.created)} task(s) "
               f"created, {len(result.predicted)} existing task(s) given a prediction and marked for relabeling")
