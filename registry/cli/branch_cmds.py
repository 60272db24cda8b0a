"""``registry branch ...`` and ``registry merge``: thin wrappers over the branch and merge use cases."""

from __future__ import annotations

from typing import Any

import click

from registry.cli import output
from registry.cli.refs import parse_ref
from registry.errors import UnresolvedConflicts

__all__ = ["branch", "merge"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group()
def branch() -> None:
    """Create, list, delete and protect branches."""


@branch.command("create")
@click.argument("name_branch", metavar="NAME/BRANCH")
@click.option("--from", "from_ref", default=None, help="Start at this ref of NAME (default: main).")
@json_option
@click.pass_obj
def branch_create(state: Any, name_branch: str, from_ref: str | None, as_json: bool) -> None:
    """Create branch NAME/BRANCH (no data is copied)."""
    info = state.service().branch(name_branch, from_ref)
    output.emit(info.to_dict(), as_json, f"created branch {info.dataset}@{info.name} at {info.snapshot_id[:12]}")


def _branch_lines(rows: list[dict[str, Any]]) -> None:
    output.table(["branch", "head", "protected", "merged into main", "updated"],
                 [[r["name"], r["snapshot_id"][:12], "yes" if r["protected"] else "", "yes" if r["merged"] else "no",
                   r["updated_at"]] for r in rows])


@branch.command("list")
@click.argument("name")
@json_option
@click.pass_obj
def branch_list(state: Any, name: str, as_json: bool) -> None:
    """List the branches of NAME."""
    output.render([b.to_dict() for b in state.service().branches(name)], as_json, _branch_lines)


@branch.command("delete")
@click.argument("name_branch", metavar="NAME/BRANCH")
@click.option("--force", is_flag=True, help="Delete even if its work is not merged into main.")
@json_option
@click.pass_obj
def branch_delete(state: Any, name_branch: str, force: bool, as_json: bool) -> None:
    """Delete branch NAME/BRANCH (never main or a protected branch)."""
    info = state.service().delete_branch(name_branch, force)
    output.emit(info.to_dict(), as_json, f"deleted branch {info.dataset}@{info.name} (was {info.snapshot_id[:12]})")


@branch.command("protect")
@click.argument("name_branch", metavar="NAME/BRANCH")
@click.option("--off", is_flag=True, help="Remove the protection instead.")
@json_option
@click.pass_obj
def branch_protect(state: Any, name_branch: str, off: bool, as_json: bool) -> None:
    """Protect NAME/BRANCH: direct commits are refused; changes arrive only by merge."""
    info = state.service().protect(name_branch, not off)
    verb = "protected" if info.protected else "unprotected"
    output.emit(info.to_dict(), as_json, f"{verb} {info.dataset}@{info.name}")


def _conflict_lines(conflicts: list[dict[str, Any]]) -> None:
    def who(c: dict[str, Any], side: str) -> str:
        name = c.get(f"{side}_annotator")
        return f" ({name}, {c.get(f'{side}_labeled_at')}, guideline {c.get(f'{side}_guideline')})" if name else ""

    output.table(["key", "column", "kind", "base", "ours", "theirs", "resolution"],
                 [[str(c["key"]), c["column"], c["kind"], str(c["base"]), f"{c['ours']}{who(c, 'ours')}",
                   f"{c['theirs']}{who(c, 'theirs')}", (c.get("resolution") or {}).get("take", "")]
                  for c in conflicts])


@click.command()
@click.argument("source", metavar="NAME@SOURCE")
@click.option("--into", "into", default="main", show_default=True, help="The branch to merge into.")
@click.option("--strategy", type=click.Choice(["fail", "ours", "theirs"]), default="fail", show_default=True,
              help="What to do with conflicts left after --resolutions and --prefer.")
@click.option("--prefer", type=click.Choice(["ground-truth", "reviewer", "majority"]), default=None,
              help="Resolve label conflicts from the annotation records.")
@click.option("--resolutions", type=click.Path(dir_okay=False), default=None,
              help="Parquet/CSV/JSONL of KEY, column, value (or ours/theirs) resolving conflicts one by one.")
@click.option("--dry-run", is_flag=True, help="Show what the merge would do and its conflicts; change nothing.")
@click.option("-m", "--message", default="", help="Message of the merge snapshot.")
@click.option("--expect-target", default=None, help="Fail with exit 3 unless the target is at this snapshot.")
@click.option("--retry", type=click.IntRange(min=0), default=0, show_default=True,
              help="Start over this many times when a commit lands on the target during the merge.")
@json_option
@click.pass_obj
def merge(state: Any, source: str, into: str, strategy: str, prefer: str | None, resolutions: str | None,
          dry_run: bool, message: str, expect_target: str | None, retry: int, as_json: bool) -> None:
    """Merge NAME@SOURCE into --into, three-way against their merge base, gated by the target's QA policy.

    Exit 1 when conflicts remain (all listed) or the gate fails; 3 when the target moved."""
    try:
        with output.status(f"merging {source} into {into}"):
            result = state.service().merge(parse_ref(source), into, strategy=strategy, prefer=prefer,
                                            resolutions=resolutions, dry_run=dry_run, message=message,
                                            expect_target=expect_target, retry=retry)
    except UnresolvedConflicts as exc:
        if as_json:
            output.print_json({"outcome": "conflicts", "message": output.with_hint(exc.message, exc.hint),
                               "conflicts": exc.conflicts})
        else:
            _conflict_lines(exc.conflicts)
            output.error(f"error: {output.with_hint(exc.message, exc.hint)}")
        raise SystemExit(1) from None
    data = result.to_dict()
    if as_json:
        output.print_json(data)
        return
    if result.conflicts:
        _conflict_lines(result.conflicts)
    dataset = result.dataset
    if result.outcome == "up-to-date":
        output.say(f"already up to date: {dataset}@{into} holds {source}")
    elif result.outcome == "fast-forward":
        output.say(f"fast-forward {dataset}@{into}: {result.target_before[:12]} -> {result.snapshot_id}")
    elif result.outcome == "dry-run":
        unresolved = sum(1 for c in result.conflicts if "resolution" not in c)
        output.say(f"dry run: {len(result.conflicts)} conflict(s), {unresolved} unresolved; "
                   f"{result.changed:,} row(s) to upsert, {result.removed:,} to delete; nothing changed")
    else:
        output.say(str(result.snapshot_id))
        output.note(f"merged {source} into {dataset}@{into}: +{result.added:,} ~{result.changed:,} "
                    f"-{result.removed:,}; {len(result.conflicts)} conflict(s) resolved")
