"""How the CLI prints: results on stdout, notes/progress/errors on stderr; JSON when asked."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from registry.errors import Hint

__all__ = ["NULL", "cell", "dataset_table", "diff_report", "emit", "error", "hint_words", "log_lines", "log_oneline",
           "note", "print_json", "progress_bar", "render", "say", "schema_versions", "show_snapshot", "status",
           "table", "with_hint"]

NULL = "(null)"
"""How a null prints in text (diff, blame, diff --labels, history, query); JSON prints ``null``."""


def cell(value: Any) -> str:
    """A value as a text cell: :data:`NULL` for null, JSON for lists and objects, else ``str``."""
    if value is None:
        return NULL
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def say(text: str) -> None:
    """A result line on stdout."""
    sys.stdout.write(text + "\n")


def note(text: str) -> None:
    """A human note on stderr (keeps stdout clean for scripts)."""
    sys.stderr.write(text + "\n")


def error(text: str) -> None:
    sys.stderr.write(text + "\n")


def hint_words(hint: Hint) -> str:
    """A hint in the CLI's words: ``--allow-breaking``, ``--key sample_id``, ```registry db upgrade```,
    ``records: DATASET@REF``, ``--strategy fail|ours|theirs``."""
    flag = "--" + hint.name.replace("_", "-")
    if hint.kind == "option":
        return f"{flag} {hint.value}" if hint.value else flag
    if hint.kind == "command":
        return f"`registry {hint.name}{f' {hint.value}' if hint.value else ''}`"
    if hint.kind == "value":
        choices = "|".join(part.strip() for part in (hint.value or "").split(","))
        return f"{flag} {choices}" if choices else flag
    return f"{hint.name}: {hint.value}" if hint.value else hint.name


def with_hint(message: str, hint: Hint | None) -> str:
    """An error's message followed by its hint in CLI words, e.g. ``... breaking schema change (...); allow
    breaking changes to commit it (--allow-breaking)``."""
    return f"{message} ({hint_words(hint)})" if hint is not None else message


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def emit(value: Any, as_json: bool, text: str) -> None:
    """JSON of ``value`` with ``--json``, else ``text``."""
    if as_json:
        print_json(value)
    else:
        say(text)


def render(value: Any, as_json: bool, renderer: Callable[[Any], None]) -> None:
    """JSON of ``value`` with ``--json``, else ``renderer(value)`` for people."""
    if as_json:
        print_json(value)
    else:
        renderer(value)


def _interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def status(label: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on a terminal; silent otherwise."""
    if not _interactive():
        yield lambda _msg: None
        return
    from rich.console import Console  # lazy: CLI start-up (rich loads when a table prints)

    console = Console(stderr=True)
    with console.status(label) as spinner:
        yield lambda msg: spinner.update(f"{label}: {msg}")


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal, fed ``(done, total)``; silent otherwise."""
    if not _interactive():
        yield lambda _done, _total: None
        return
    from rich.progress import Progress  # lazy: CLI start-up (rich loads when progress shows)

    with Progress(transient=True, console=None) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    say("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def table(headers: list[str], rows: list[list[str]]) -> None:
    """Left-aligned columns for people (scripts use ``--json``)."""
    _table(headers, rows)


def dataset_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        say("no datasets yet; create one with `registry dataset create NAME --key COLUMN`")
        return
    _table(["NAME", "KEY", "HEAD", "ROWS", "SNAPSHOTS", "LAST COMMIT"],
           [[r["name"], ",".join(r["key_columns"]), (r["head"] or "-")[:12], f"{r['rows']:,}", str(r["snapshots"]),
             r["last_commit_at"] or "-"] for r in rows])


def log_lines(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        refs = [*entry["branches"], *(f"tag: {t}" for t in entry["tags"])]
        decoration = f" ({', '.join(refs)})" if refs else ""
        say(f"snapshot {entry['id']}{decoration}")
        if entry["parents"]:
            say(f"Parents: {' '.join(p[:12] for p in entry['parents'])}")
        say(f"Author:  {entry['author']}")
        say(f"Date:    {entry['created_at']}")
        say(f"Rows:    {entry['rows']:,}  ({entry['summary']})")
        say("")
        say(f"    {entry['message'] or '(no message)'}")
        say("")


def log_oneline(entries: list[dict[str, Any]]) -> None:
    """``registry log --oneline``: short id, refs and the message's first line, one snapshot a line."""
    for entry in entries:
        refs = [*entry["branches"], *(f"tag: {t}" for t in entry["tags"])]
        decoration = f" ({', '.join(refs)})" if refs else ""
        subject = (entry["message"] or "(no message)").splitlines()[0] if entry["message"] else "(no message)"
        say(f"{entry['id'][:12]}{decoration} {subject}")


def show_snapshot(info: dict[str, Any]) -> None:
    refs = [*info["branches"], *info["tags"]]
    say(f"snapshot   {info['id']}")
    say(f"dataset    {info['dataset']}")
    say(f"parents    {' '.join(info['parents']) or '(none)'}")
    say(f"refs       {', '.join(refs) or '-'}")
    say(f"author     {info['author']}")
    say(f"time       {info['created_at']}")
    say(f"message    {info['message'] or '(no message)'}")
    say(f"rows       {info['rows']:,}  (+{info['added']:,} ~{info['changed']:,} -{info['removed']:,})")
    say(f"bytes      {info['bytes_written']:,} written by this commit")
    say(f"schema     version {info['schema_version']}")
    for column in info["schema"]:
        say(f"  {column['name']:<24} {column['type']}")


def _value(value: Any) -> str:
    if value is None:
        return NULL
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return repr(value)


def _row(row: dict[str, Any]) -> str:
    return "  ".join(f"{name}={_value(value)}" for name, value in row.items())


def diff_report(result: dict[str, Any]) -> None:
    say(f"diff {result['dataset']} {result['a'][:12]} -> {result['b'][:12]}")
    say(f"  added {result['added']:,}  removed {result['removed']:,}  changed {result['changed']:,}  "
        f"unchanged {result['unchanged']:,}")
    if result["schema_changes"]:
        say("schema changes:")
        for change in result["schema_changes"]:
            flag = "breaking" if change["breaking"] else "compatible"
            say(f"  {change['kind']:<20} {change['column']}: {change['before']} -> {change['after']} ({flag})")
    if result["changed_cells"]:
        say("changed cells by column:")
        for column, count in sorted(result["changed_cells"].items(), key=lambda kv: -kv[1]):
            say(f"  {column:<24} {count:,}")
    if result["examples"]:
        say("examples:")
        for example in result["examples"]:
            if example["kind"] == "changed":
                cells = ", ".join(f"{c}: {_value(example['before'][c])} -> {_value(example['after'][c])}"
                                  for c in example["columns"])
                say(f"  ~ {_value(example['key'])}  {cells}")
            elif example["kind"] == "added":
                say(f"  + {_row(example['after'])}")
            else:
                say(f"  - {_row(example['before'])}")


def schema_versions(versions: list[dict[str, Any]]) -> None:
    for version in versions:
        say(f"version {version['version']}  {version['fingerprint'][:16]}  {version['compatibility']}  "
            f"(first in {version['first_snapshot_id'][:12]}, {version['created_at']})")
        for change in version["changes"]:
            say(f"    {change['kind']}: {change['column']} {change['before'] or ''} -> {change['after'] or ''}")
        say("    columns: " + ", ".join(f"{c['name']} {c['type']}" for c in version["columns"]))
