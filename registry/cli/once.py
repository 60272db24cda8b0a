"""Options that may be given only once: click keeps the last of repeated options silently, so
``--key a --key b`` would create a dataset keyed by ``b`` alone."""

from __future__ import annotations

import click

__all__ = ["only_once"]


def only_once(_ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """A click callback for an option declared ``multiple=True``: its one value (None if absent).

    Raises:
        click.BadParameter: it was given more than once (exit 2).
    """
    if len(value) > 1:
        raise click.BadParameter(f"given {len(value)} times ({', '.join(value)}); give it once "
                                 "(several key columns go comma-separated: --key a,b)", param=param)
    return value[0] if value else None
