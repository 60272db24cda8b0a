"""``registry policy|qa|gate|pin|pull``: QA policies, gates and pinned training reads (thin: parse, call, print).

``gate check`` is what CI calls; it opens only the catalog (no pyarrow, no numpy) so the whole
process answers in well under a second.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from registry.cli import output
from registry.cli.refs import parse_ref

if TYPE_CHECKING:
    from registry.service import RegistryService
from registry.errors import NotFound

__all__ = ["QUALITY_COMMANDS"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
lockfile_option = click.option("--lockfile", default="registry.lock", show_default=True,
                               type=click.Path(dir_okay=False), help="The lockfile to write or read.")


def _registry(ctx: click.Context) -> RegistryService:
    return ctx.obj.service()  # type: ignore[no-any-return]  # the root group's Session


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def _gate_lines(status: dict[str, Any]) -> None:
    output.say(status["message"])
    for check in status["failed"]:
        output.say(f"  failed: {check['name']} ({check['check']}): "
                   + (check["error"] or f"{_figure(check['metric'])} vs {check['threshold']}"))
    for check in status["warnings"]:
        output.say(f"  warning: {check['name']} ({check['check']}): {_figure(check['metric'])} vs {check['threshold']}")


def _result_table(result: dict[str, Any]) -> None:
    rows = []
    for check in result["checks"]:
        verdict = "pass" if check["passed"] else ("FAIL" if check["severity"] == "error" else "warn")
        note = check["details"].get("error") or check["details"].get("note") or ""
        rows.append([check["name"], check["check"], check["severity"], verdict, _figure(check["metric"]),
                     check["threshold"], note])
    output.say(f"{result['dataset']}@{result['snapshot_id'][:12]}  policy v{result['policy_version']}  "
               f"result {result['id']}  ({result['duration_ms']:,} ms)")
    output._table(["CHECK", "TYPE", "SEVERITY", "RESULT", "METRIC", "THRESHOLD", "NOTE"], rows)
    if result["gate"]:
        _gate_lines(result["gate"])


POLICY_EXAMPLE = """\b
A minimal policy (policy.yaml):
  maintainers: [alice]
  checks:
    - check: row_count
      min: 1000
    - check: not_null
      columns: [label]
"""


@click.group()
def policy() -> None:
    """A dataset's QA policy (YAML, versioned; changed only by its owner and maintainers)."""


@policy.command("set", epilog=POLICY_EXAMPLE)
@click.argument("name")
@click.argument("file", type=click.File("r"))
@json_option
@click.pass_context
def policy_set(ctx: click.Context, name: str, file: Any, as_json: bool) -> None:
    """Record FILE (YAML, '-' for stdin) as NAME's next policy version.

    Every check type, its options and the gate's rules: docs/quality.md."""
    info = _registry(ctx).set_policy(name, file.read(), source=file.name)
    text = (f"{name}: policy v{info.version} ({info.policy_hash[:12]}), {len(info.checks)} check(s)" if info.created
            else f"{name}: policy unchanged (still v{info.version})")
    output.emit(info.to_dict(), as_json, text)


@policy.command("show")
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=1), default=None, help="An older version.")
@json_option
@click.pass_context
def policy_show(ctx: click.Context, name: str, version: int | None, as_json: bool) -> None:
    """The current (or --version N) QA policy of NAME."""
    fast = ctx.obj.fast_reads()
    found = fast.policy(name, version) if fast is not None else None
    info = found if found is not None else _registry(ctx).policy(name, version).to_dict()
    if as_json:
        output.print_json(info)
        return
    output.note(f"# {name} policy v{info['version']} ({info['policy_hash']}) by {info['created_by']} "
                f"at {info['created_at']}")
    document = str(info["document"])
    sys.stdout.write(document if document.endswith("\n") else document + "\n")


@click.group()
def qa() -> None:
    """Evaluate QA policies."""


@qa.command("run")
@click.argument("ref")
@click.option("--no-fail", is_flag=True,
              help="Exit 0 even when the verdict is failed (the result is stored either way).")
@json_option
@click.pass_context
def qa_run(ctx: click.Context, ref: str, no_fail: bool, as_json: bool) -> None:
    """Evaluate NAME@REF under its dataset's current policy and store the gate result.

    Exits 1 when the verdict is failed (unless a waiver lets the gate pass), as `gate check` does."""
    with output.status(f"evaluating {ref}"):
        gate_result = _registry(ctx).qa_run(parse_ref(ref))
    output.render(gate_result.to_dict(), as_json, _result_table)
    if gate_result.status == "failed" and not (gate_result.gate or {}).get("passes") and not no_fail:
        raise SystemExit(1)


@click.group()
def gate() -> None:
    """Gates that block training: check (CI) and waive."""


@gate.command("check")
@click.argument("ref")
@click.option("--evaluate", is_flag=True, help="Run QA first when there is no result under the current policy.")
@json_option
@click.pass_context
def gate_check(ctx: click.Context, ref: str, evaluate: bool, as_json: bool) -> None:
    """Exit 0 if NAME@REF passes its gate (or by waiver); 1 if it failed, is stale or was never evaluated."""
    status = ctx.obj.gate_checker().gate_check(parse_ref(ref), evaluate).to_dict()
    output.render(status, as_json, _gate_lines)
    if not status["passes"]:
        raise SystemExit(1)


@gate.command("waive")
@click.argument("ref")
@click.option("--reason", required=True, help="Why the snapshot may be used anyway.")
@click.option("--checks", default=None, help="Only these checks, comma-separated (default: all).")
@click.option("--expires", default=None, help="When the waiver ends: ISO time or a duration (12h, 7d, 2w).")
@json_option
@click.pass_context
def gate_waive(ctx: click.Context, ref: str, reason: str, checks: str | None, expires: str | None,
               as_json: bool) -> None:
    """Let NAME@REF pass its gate despite failed checks (audited; owner and maintainers only)."""
    names = [c for c in checks.split(",") if c.strip()] if checks else None
    waiver = _registry(ctx).waive(parse_ref(ref), reason, names, expires)
    output.emit(waiver.to_dict(), as_json,
                f"waiver {waiver.id} for {waiver.dataset}@{waiver.snapshot_id[:12]} "
                f"({', '.join(waiver.checks) if waiver.checks else 'all checks'}; "
                f"expires {waiver.expires_at or 'never'})")


@click.command()
@click.argument("ref")
@lockfile_option
@click.option("--job", default=None, help="The training job this pin is for (one entry per dataset and job).")
@json_option
@click.pass_context
def pin(ctx: click.Context, ref: str, lockfile: str, job: str | None, as_json: bool) -> None:
    """Pin NAME@REF in the lockfile; refused (exit 1) unless its gate passes."""
    with output.status(f"pinning {ref}"):
        entry = _registry(ctx).pin(parse_ref(ref), lockfile, job)
    text = f"pinned {entry.dataset}@{entry.snapshot_id} ({entry.content_hash[:19]}) in {lockfile}"
    output.emit(entry.to_dict(), as_json, text + (f" (passes by waiver {entry.waiver_id})" if entry.waiver_id else ""))


@click.command()
@click.argument("outdir", required=False, default=".", type=click.Path(file_okay=False))
@lockfile_option
@click.option("--job", default=None, help="Only the entries pinned for this job.")
@click.option("--allow-unverified", is_flag=True, help="Read snapshots whose gate does not pass (audited).")
@json_option
@click.pass_context
def pull(ctx: click.Context, outdir: str, lockfile: str, job: str | None, allow_unverified: bool,
         as_json: bool) -> None:
    """Write every pinned snapshot of the lockfile to OUTDIR as Parquet, verifying each content hash."""
    if not Path(lockfile).is_file():
        raise NotFound(f"{lockfile}: no such lockfile; `registry pin NAME@REF` writes one")
    with output.status(f"pulling {lockfile}"):
        results = _registry(ctx).pull(lockfile, Path(outdir), job, allow_unverified)
    output.render([r.to_dict() for r in results], as_json, _pulled_lines)


def _pulled_lines(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        output.say(f"{row['path']}  {row['rows']:,} rows  {row['content_hash'][:19]}  (job {row['job'] or '-'})")


QUALITY_COMMANDS = [policy, qa, gate, pin, pull]
"""Registered on the root group by :mod:`registry.cli.main`."""
