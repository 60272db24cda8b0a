"""What ``registry --help`` says beyond the commands: the environment, the exit codes, whole summaries."""

from __future__ import annotations

import click

__all__ = ["ROOT_EPILOG", "whole_summaries"]

ROOT_EPILOG = """\b
Environment:
  REGISTRY_HOME   the registry home (default: the nearest .registry folder upwards)
  REGISTRY_URL    work against a server (`registry serve`) instead of a local home
  REGISTRY_TOKEN  the API token sent to REGISTRY_URL (`registry token create`)
  REGISTRY_ACTOR  who acts, as the audit log records it (default: the OS user)
  REGISTRY_PRELOAD
                  unset: at a terminal, the first command starts a background process
                  that keeps the imports, so the next ones start in ~0.1 s; off: never
                  use one; auto: start one in scripts too (docs/preload.md)

\b
Exit codes:
  0  ok
  1  a check failed (verify, gate check, qa run, diff --exit-code)
  2  user error (bad input, not found, not allowed)
  3  conflict (a ref moved, a name exists)
  4  internal error
"""
"""Shown under ``registry --help``; ``\\b`` keeps click from re-wrapping the lists."""


def whole_summaries(group: click.Group) -> None:
    """Give every command under ``group`` its whole first sentence as the summary in ``--help`` lists.

    Click cuts a summary to the terminal's width, often mid-word or inside a `backtick` span; a
    summary set explicitly is wrapped instead. Runs over commands registered by any module.
    """
    for command in group.commands.values():
        if command.short_help is None and command.help:
            command.short_help = _first_sentence(command.help)
        if isinstance(command, click.Group):
            whole_summaries(command)


def _first_sentence(text: str) -> str:
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph[: end + 1] if end >= 0 else paragraph
