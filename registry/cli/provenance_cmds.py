"""``registry import``, ``history`` and ``blame``: annotator provenance at the command line (thin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry.cli import output
from registry.cli.once import only_once
from registry.cli.refs import parse_ref

if TYPE_CHECKING:
    from registry.service import RegistryService

__all__ = ["blame", "history", "import_"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _registry(ctx: click.Context) -> RegistryService:
    return ctx.obj.service()  # type: ignore[no-any-return]  # the root group's Session


@click.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(["label-studio", "coco", "yolo", "table"]))
@click.argument("name")
@click.argument("file", type=click.Path())
@click.option("--key", default=None, multiple=True, callback=only_once,
              help="The field that identifies a sample (label-studio: a task data field, "
              "default the task id; coco: id or file_name).")
@click.option("--guideline-version", default=None, help="The labeling guideline the annotators followed.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="label-studio: the labeling config XML (hashed and stored).")
@click.option("--resolve", type=click.Choice(["gt-majority", "majority"]), default="gt-majority", show_default=True,
              help="How a row's label is chosen: ground truth first, then majority vote; or majority only.")
@click.option("--map", "mapping", default=None,
              help="table: record field=column pairs, e.g. key=item,annotator=worker_id,value=answer.")
@click.option("--users", type=click.Path(dir_okay=False), default=None,
              help="label-studio: the tool's users (GET /api/users/ as JSON) to add emails and names by user id.")
@click.option("-m", "--message", default="", help="Commit message (default: names the format and file).")
@click.option("--author", default=None, help="Who imports (default: --author of the registry, $REGISTRY_ACTOR or "
              "the OS user).")
@json_option
@click.pass_context
def import_(ctx: click.Context, fmt: str, name: str, file: str, key: str | None, guideline_version: str | None,
            config: str | None, resolve: str, mapping: str | None, users: str | None, message: str,
            author: str | None, as_json: bool) -> None:
    """Import a labeling tool's export FILE as the next snapshot of NAME, with its annotation records.

    label-studio reads the JSON, JSON_MIN, CSV and TSV exports; yolo a zip or folder (docs/importers.md)."""
    with output.status(f"importing {file}") as note:
        result = _registry(ctx).import_annotations(fmt, name, file, key=key, guideline_version=guideline_version,
                                                    config=config, resolve=resolve, mapping=mapping,
                                                    message=message, author=author, progress=note,
                                                    **({"users": users} if users else {}))
    for warning in result.warnings:
        output.note(f"warning: {warning}")
    if as_json:
        output.print_json(result.to_dict())
        return
    commit = result.commit
    if not commit.created:
        output.say(f"no change: {name}@main is still {commit.snapshot_id}")
        return
    output.say(commit.snapshot_id)
    created = " (dataset created)" if result.dataset_created else ""
    output.note(f"{name}{created}: {result.samples:,} samples, {result.records:,} annotation records from "
                f"{result.source_format}; +{commit.added:,} ~{commit.changed:,} -{commit.removed:,} rows")


@click.command()
@click.argument("name")
@click.argument("key")
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, key: str, as_json: bool) -> None:
    """Every labeling act and every snapshot that changed sample KEY of NAME, in time order."""
    entries = [e.to_dict() for e in _registry(ctx).history(name, key)]
    output.render(entries, as_json, _history_table)


def _history_table(entries: list[dict[str, Any]]) -> None:
    cell = output.cell
    output.table(["TIME", "WHAT", "VALUE", "BY", "GUIDELINE", "SNAPSHOT", "MESSAGE"], [
        [cell(e["time"]), f"{e['kind']} {e['change'] or ''}".strip(), cell(e["value"]), _by(e),
         cell(e["guideline_version"]), e["snapshot_id"][:12], e["message"] or "-"] for e in entries])


def _by(entry: dict[str, Any]) -> str:
    """Who made the event: the annotator, or for a model's prediction the model and its version."""
    if entry.get("source_kind") not in (None, "human"):
        model = f"model {entry.get('model_version') or '(version unknown)'}"
        return f"{entry['annotator']} ({model})" if entry["annotator"] else model
    return output.cell(entry["annotator"])


@click.command()
@click.argument("ref")
@click.option("--column", default="label", show_default=True, help="The label column.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows (by key).")
@json_option
@click.pass_context
def blame(ctx: click.Context, ref: str, column: str, limit: int | None, as_json: bool) -> None:
    """Per row of NAME@REF: the snapshot that last changed it and who labeled its current value."""
    rows = _registry(ctx).blame(parse_ref(ref), column, limit).to_pylist()
    if as_json:
        output.print_json(rows)
        return
    keys = [k for k in rows[0] if k not in _BLAME_COLUMNS] if rows else []
    cell = output.cell
    output.table([*(k.upper() for k in keys), "SNAPSHOT", "CHANGED", "AUTHOR", "ANNOTATOR", "GUIDELINE"], [
        [*(cell(r[k]) for k in keys), cell(r["snapshot_id"])[:12], cell(r["changed_at"]), cell(r["author"]),
         cell(r["annotator"]), cell(r["guideline_version"])] for r in rows])


_BLAME_COLUMNS = {"snapshot_id", "changed_at", "author", "message", "annotator", "guideline_version", "labeled_at"}
