"""``registry``: the thin command-line edge. Parse, call one service function, print, map errors.

Exit codes: 0 ok; 1 a check failed; 2 user error; 3 conflict; 4 internal error. The mapping from
error classes lives in :data:`registry.errors.EXIT_CODES` and is applied only in :func:`main`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from registry.arrow_setup import hide_pandas
from registry.cli import output
from registry.cli.help_text import ROOT_EPILOG, whole_summaries
from registry.cli.label_output import label_diff_report
from registry.cli.once import only_once
from registry.cli.refs import parse_ref, second_ref
from registry.cli.session import Session

if TYPE_CHECKING:
    from registry.snapshots.commit import Mode
from registry.cli.serve_cmds import admin_token_text
from registry.cli.streams import export_rows
from registry.distribution import DISTRIBUTION
from registry.errors import QuerySyntaxError, RegistryError, exit_code_for

__all__ = ["cli", "main"]

INTERNAL_ERROR = 4


pass_state = click.make_pass_decorator(Session)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=ROOT_EPILOG)
@click.option("--home", envvar="REGISTRY_HOME", type=click.Path(file_okay=False),
              help="Registry home (default: $REGISTRY_HOME, else the nearest .registry folder upwards).")
@click.option("--author", envvar=None, default=None,
              help="Who acts, as the audit log records it (default: $REGISTRY_ACTOR, else the OS user).")
@click.version_option(package_name=DISTRIBUTION)
@click.pass_context
def cli(ctx: click.Context, home: str | None, author: str | None) -> None:
    """An immutable, incremental dataset registry: snapshots, diffs, verification, audit."""
    ctx.obj = Session(home, author)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option("--lineage-namespace", metavar="URI", default=None,
              help="This registry's OpenLineage namespace, scheme://authority (default: a new registry://reg-<id>).")
@json_option
@click.pass_context
def init(ctx: click.Context, path: str | None, lineage_namespace: str | None, as_json: bool) -> None:
    """Create a registry home at PATH (default ./.registry) and its first admin API token, printed once
    (none when an active admin token exists).

    On an existing home it says so and changes nothing (exit 0); `registry db upgrade` applies migrations."""

    from registry.config import HOME_DIRNAME  # lazy: parsing arguments and --help load no pydantic

    ctx.obj.require_host("init")
    home = Path(path) if path else (Path(ctx.obj.home) if ctx.obj.home else Path(HOME_DIRNAME))
    if (home / "registry.json").is_file():
        output.emit({"home": str(home.resolve()), "created": False, "admin_token": None}, as_json,
                    f"registry home {home.resolve()} exists already; nothing changed")
        return
    from registry.context import create_home  # lazy: CLI start-up
    from registry.lineage.namespace import check_namespace  # lazy: CLI start-up

    if lineage_namespace:
        check_namespace(lineage_namespace)
    paths = create_home(home, ctx.obj.settings)
    ctx.obj.home = str(paths.home)
    host = ctx.obj.host("init")
    namespace, _ = host.lineage_namespace(lineage_namespace)
    secret = host.create_admin_token()
    if as_json:
        output.print_json({"home": str(paths.home), "created": True, "admin_token": secret,
                           "lineage_namespace": namespace})
        return
    output.say(f"initialised registry home {paths.home} (lineage namespace {namespace})")
    if secret:
        output.say(admin_token_text(secret))


@cli.group()
def db() -> None:
    """Catalog schema maintenance."""


@db.command("upgrade")
@json_option
@pass_state
def db_upgrade(state: Session, as_json: bool) -> None:
    """Apply pending catalog migrations."""
    from registry.config import RegistryPaths, find_home  # lazy: parsing arguments and --help load no pydantic
    from registry.db import upgrade  # lazy: CLI start-up

    state.require_host("db upgrade")
    home = find_home(state.home, settings=state.settings)
    paths = RegistryPaths.for_home(home, state.settings.for_home(home))
    upgrade(paths.database_url)
    output.emit({"home": str(paths.home), "up_to_date": True}, as_json, f"catalog of {paths.home} is up to date")


@cli.group()
def dataset() -> None:
    """Create and list datasets."""


@dataset.command("create")
@click.argument("name")
@click.option("--key", "key", required=True, multiple=True, callback=only_once,
              help="Key column(s), comma-separated, e.g. sample_id.")
@click.option("--description", default="", help="What the dataset holds.")
@click.option("--owner", default=None, help="Owner (default: the acting user).")
@json_option
@pass_state
def dataset_create(state: Session, name: str, key: str, description: str, owner: str | None, as_json: bool) -> None:
    """Create dataset NAME keyed by --key."""
    info = state.service().create_dataset(name, key.split(","), description, owner)
    output.emit(info.to_dict(), as_json, f"created dataset {info.name} (key: {', '.join(info.key_columns)})")


@dataset.command("list")
@json_option
@pass_state
def dataset_list(state: Session, as_json: bool) -> None:
    """List datasets with their head snapshot."""
    fast = state.fast_reads()
    rows = fast.datasets() if fast is not None else None
    if rows is None:
        rows = [d.to_dict() for d in state.service().datasets()]
    output.render(rows, as_json, output.dataset_table)


@cli.command()
@click.argument("name")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("-m", "--message", default="", help="What changed and why.")
@click.option("--author", default=None, help="Who commits (default: $REGISTRY_ACTOR or the OS user).")
@click.option("--mode", type=click.Choice(["replace", "upsert"]), default="replace", show_default=True,
              help="replace: FILE is the full content; upsert: FILE's rows are merged by key.")
@click.option("--delete-keys", type=click.Path(dir_okay=False), default=None,
              help="A file of keys to remove (with --mode upsert).")
@click.option("--expect-parent", default=None, help="Fail with exit 3 unless the branch is at this snapshot.")
@click.option("--allow-breaking", is_flag=True, help="Accept a breaking schema change.")
@click.option("--job", default=None, help="OpenLineage job NAMESPACE/NAME (default registry/commit/NAME).")
@click.option("--run-id", default=None, help="OpenLineage run id (a UUID) of this commit (default: a new one).")
@click.option("--parent-run", default=None, help="The run this commit belongs to: NAMESPACE/NAME/RUN_ID.")
@click.option("--source", "sources", multiple=True,
              help="An input besides the parent: DATASET@REF, or a URI such as s3://bucket/key (repeatable).")
@json_option
@pass_state
def commit(state: Session, name: str, file: str | None, message: str, author: str | None, mode: Mode,
           delete_keys: str | None, expect_parent: str | None, allow_breaking: bool, job: str | None,
           run_id: str | None, parent_run: str | None, sources: tuple[str, ...], as_json: bool) -> None:
    """Commit FILE (Parquet, CSV or JSONL) as the next snapshot of NAME (or NAME@BRANCH)."""
    from registry.lineage.emit import LineageRun  # lazy: CLI start-up

    lineage = LineageRun(job=job, run_id=run_id, parent_run=parent_run, sources=sources)
    with output.status("committing") as note:
        result = state.service().commit(name, file, message=message, author=author, mode=mode,
                                         delete_keys=delete_keys, expect_parent=expect_parent,
                                         allow_breaking=allow_breaking, progress=note, lineage=lineage)
    data = result.to_dict()
    if as_json:
        output.print_json(data)
    elif not result.created:
        output.say(f"no change: {parse_ref(name).qualified} is still {result.snapshot_id}")
    else:
        output.say(result.snapshot_id)
        output.note(f"{name}: +{result.added:,} ~{result.changed:,} -{result.removed:,} -> {result.rows:,} rows, "
                    f"{result.bytes_written:,} bytes written")


@cli.command()
@click.argument("name")
@click.option("-n", "--limit", "--max-count", "limit", type=click.IntRange(min=1), default=None,
              help="Show at most this many snapshots.")
@click.option("--oneline", is_flag=True, help="One line per snapshot: short id, refs, message.")
@json_option
@pass_state
def log(state: Session, name: str, limit: int | None, oneline: bool, as_json: bool) -> None:
    """History of NAME (or NAME@REF), newest first."""
    ref = parse_ref(name)
    fast = state.fast_reads()
    entries = fast.log(ref, limit) if fast is not None else None
    if entries is None:
        entries = [s.to_dict() for s in state.service().log(ref, limit)]
    output.render(entries, as_json, output.log_oneline if oneline else output.log_lines)


@cli.command()
@click.argument("ref")
@json_option
@pass_state
def show(state: Session, ref: str, as_json: bool) -> None:
    """Details of the snapshot NAME@REF names."""
    parsed = parse_ref(ref)
    fast = state.fast_reads()
    info = fast.show(parsed) if fast is not None else None
    if info is None:
        info = state.service().show(parsed).to_dict()
    output.render(info, as_json, output.show_snapshot)


@cli.command()
@click.argument("ref")
@click.argument("tag_name", metavar="TAG")
@json_option
@pass_state
def tag(state: Session, ref: str, tag_name: str, as_json: bool) -> None:
    """Tag the snapshot NAME@REF names as TAG (tags never move)."""
    info = state.service().tag(parse_ref(ref), tag_name)
    output.emit({"dataset": info.dataset, "tag": tag_name, "snapshot_id": info.id}, as_json,
                f"tagged {info.dataset}@{info.id[:12]} as {tag_name}")


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--rows", type=click.IntRange(min=0), default=10, show_default=True,
              help="Example rows to show of each kind.")
@click.option("--labels", is_flag=True, help="Label diff: change matrix, per-class net change, who relabeled.")
@click.option("--column", default="label", show_default=True, help="The label column (with --labels).")
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences, 0 when there are none (for CI).")
@click.option("--quiet", is_flag=True, help="Print nothing; implies --exit-code.")
@json_option
@pass_state
def diff(state: Session, a: str, b: str, rows: int, labels: bool, column: str, exit_code: bool, quiet: bool,
         as_json: bool) -> None:
    """Row-level diff from NAME@A to NAME@B (with --labels, how the labels moved and by whom).

    B without `NAME@` is a ref of A's dataset: `registry diff street-signs@v1 v2`."""
    ref_a = parse_ref(a)
    ref_b = second_ref(ref_a, b)
    if labels:
        changes = state.service().label_diff(ref_a, ref_b, column, 0 if quiet else None if as_json else rows).to_dict()
        differs = bool(changes["relabeled"] or changes["rows_a"] != changes["rows_b"]
                       or changes["distribution_a"] != changes["distribution_b"])
        report: Any = label_diff_report
    else:
        changes = state.service().diff(ref_a, ref_b, 0 if quiet else rows).to_dict()
        differs = bool(changes["added"] or changes["removed"] or changes["changed"] or changes["schema_changes"])
        report = output.diff_report
    if not quiet:
        output.render(changes, as_json, report)
    if differs and (exit_code or quiet):
        raise SystemExit(1)


@cli.command()
@click.argument("name")
@json_option
@pass_state
def schema(state: Session, name: str, as_json: bool) -> None:
    """Schema versions of NAME and whether each change was compatible or breaking."""
    fast = state.fast_reads()
    versions = fast.schema(name) if fast is not None else None
    if versions is None:
        versions = [v.to_dict() for v in state.service().schema(name)]
    output.render(versions, as_json, output.schema_versions)


_TRAINING_FORMATS = ("coco", "yolo", "hf")
"""Export formats written by registry.training.export (files or folders, never stdout)."""


@cli.command()
@click.argument("ref")
@click.argument("out", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet", *_TRAINING_FORMATS]), default=None,
              help="csv, jsonl or parquet (default: OUT's suffix; needed when OUT is - for stdout), or a "
                   "training format: coco (a JSON file), yolo or hf (a new folder).")
@json_option
@pass_state
def export(state: Session, ref: str, out: str, fmt: str | None, as_json: bool) -> None:
    """Write the rows of NAME@REF to OUT (.parquet, .csv or .jsonl), to stdout with `-`, or in a training
    format (--format coco|yolo|hf)."""
    if fmt in _TRAINING_FORMATS:

        host = state.host("export --format")
        if out == "-":
            raise click.UsageError(f"--format {fmt} writes files; give an OUT path instead of -")
        with output.status(f"exporting {ref} as {fmt}"):
            result = host.export_training(parse_ref(ref), out, fmt)
        output.emit(dict(result), as_json, f"wrote {result['rows']:,} rows to {out} ({fmt})")
        return
    count = export_rows(state.service(), parse_ref(ref), out, fmt)
    if out != "-":
        output.emit({"ref": ref, "out": out, "rows": count}, as_json, f"wrote {count:,} rows to {out}")
    elif not as_json:
        output.note(f"wrote {count:,} rows to stdout")


@cli.command()
@click.argument("name", required=False)
@json_option
@pass_state
def verify(state: Session, name: str | None, as_json: bool) -> None:
    """Recompute every object hash, manifest and snapshot id, and cross-check the catalog against the
    audit chain; exit 1 on the first mismatch."""

    with output.progress_bar("verifying snapshots") as advance:
        report = state.service().verify(name, progress=advance)
    if as_json:
        output.print_json(report.to_dict())
    elif report.ok:
        output.say(f"ok: {report.snapshots} snapshot(s), {report.objects} object(s), {report.bytes:,} bytes verified")
    if not report.ok:
        if not as_json:
            output.error(f"verify failed: {report.problems[0]}")
            for problem in report.problems[1:]:
                output.error(f"  also: {problem}")
        raise SystemExit(1)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--min-age", type=click.FloatRange(min=0), default=3600, show_default=True,
              help="Keep unreferenced objects younger than this many seconds (commits in flight).")
@json_option
@pass_state
def gc(state: Session, dry_run: bool, min_age: float, as_json: bool) -> None:
    """Delete objects no snapshot references, and leftovers: temporary files and a killed writer's scratch
    folders past --min-age, and index caches of an earlier format."""
    report = state.host("gc").gc(dry_run=dry_run, min_age=min_age)
    verb = "would delete" if dry_run else "deleted"
    output.emit(report.to_dict(), as_json,
                f"{verb} {len(report.deleted)} object(s) ({report.deleted_bytes:,} bytes) and "
                f"{len(report.leftovers)} leftover(s) (temporary files, scratch folders, old index caches); "
                f"{report.referenced} referenced object(s) kept")


@cli.command()
@click.argument("refs", nargs=-1)
@click.option("--auto", "auto", is_flag=True,
              help="Apply the compaction policy to every branch head of the NAMEs given (default every dataset); "
                   "for cron.")
@json_option
@pass_state
def compact(state: Session, refs: tuple[str, ...], auto: bool, as_json: bool) -> None:
    """Merge the layers of NAME (or NAME@REF) into one; ids and content do not change."""
    if auto:
        results = state.host("compact").compact_auto(list(refs) or None)
        output.emit([r.to_dict() for r in results], as_json,
                    "\n".join(f"{r.dataset}@{r.ref}: {r.layers_before} layer(s) -> {r.layers_after}"
                              f"{' (base rewritten)' if r.full else ''}" for r in results)
                    or "nothing to compact")
        return
    if len(refs) != 1:
        raise click.UsageError("give one NAME or NAME@REF to compact, or --auto [NAME...]")
    with output.status(f"compacting {refs[0]}"):
        result = state.host("compact").compact(parse_ref(refs[0]))
    output.emit(result.to_dict(), as_json,
                f"{result.dataset}@{result.snapshot_id[:12]}: {result.layers_before} layer(s) -> "
                f"{result.layers_after}")


from registry.cli.audit_cmds import audit, query  # noqa: E402  (registered after the core commands)
from registry.cli.provenance_cmds import blame, history, import_  # noqa: E402

cli.add_command(audit)
cli.add_command(query)
cli.add_command(import_)
cli.add_command(history)
cli.add_command(blame)
from registry.cli.lineage_cmds import lineage  # noqa: E402

cli.add_command(lineage)
from registry.cli.quality_cmds import QUALITY_COMMANDS  # noqa: E402

for _command in QUALITY_COMMANDS:
    cli.add_command(_command)
from registry.cli.serve_cmds import serve  # noqa: E402
from registry.cli.token_cmds import token  # noqa: E402

cli.add_command(token)
cli.add_command(serve)
from registry.cli.storage_cmds import storage  # noqa: E402

cli.add_command(storage)
from registry.cli.sync_cmds import requeue, sync  # noqa: E402

cli.add_command(sync)
cli.add_command(requeue)

from registry.cli.branch_cmds import branch, merge  # noqa: E402

cli.add_command(branch)
cli.add_command(merge)
from registry.cli.preload_cmds import preload  # noqa: E402

cli.add_command(preload)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; every error becomes one line on stderr and its documented exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    whole_summaries(cli)
    try:
        cli.main(args=args, prog_name="registry", standalone_mode=False)
    except RegistryError as exc:
        body = exc.to_dict()
        body["error"].pop("hint", None)
        body["error"]["message"] = output.with_hint(exc.message, exc.hint)  # the hint in CLI words
        _report(body, as_json, keep_lines=isinstance(exc, QuerySyntaxError))
        return exit_code_for(exc)
    except click.exceptions.Abort:
        output.error("aborted")
        return 130
    except click.ClickException as exc:
        _report({"error": {"code": "usage", "message": exc.format_message()}}, as_json)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        output.error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        _report({"error": {"code": "internal", "message": f"internal error: {type(exc).__name__}: {exc}"}}, as_json)
        return INTERNAL_ERROR
    return 0


def _report(body: dict[str, dict[str, str]], as_json: bool, keep_lines: bool = False) -> None:
    """The error on stderr: JSON with ``--json``, else one ``error: ...`` line (line breaks shown as ``\\n``,
    so a name holding one cannot forge output); a query's parse error keeps its lines, which point at
    the column."""
    message = body["error"]["message"].replace("\r", "\\r")
    body["error"]["message"] = message if keep_lines else message.replace("\n", "\\n")
    if as_json:
        sys.stderr.write(json.dumps(body) + "\n")
    else:
        output.error(f"error: {body['error']['message']}")


def run() -> None:
    """The console entry point: run the CLI, flush its output, and leave without interpreter teardown.

    Every result is written and every transaction committed (or rolled back) by the time ``main``
    returns. Native libraries' thread pools (Arrow, DuckDB) can race their own static destructors at
    interpreter exit and abort a finished process ("terminate called without an active exception",
    exit -6), turning a success into a failure for a script; ``os._exit`` skips that teardown. pandas is
    hidden from pyarrow first (:mod:`registry.arrow_setup`): no command needs it, and pyarrow would import
    it on its first conversion (0.4 s, 100 MiB).
    """
    hide_pandas()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
