"""Settings are resolved once, when a context opens; tests that change the environment after opening
one re-resolve them with :func:`reresolve`, as reopening the home would."""

from __future__ import annotations

from registry import Registry
from registry.config import Settings

__all__ = ["reresolve"]


def reresolve(reg: Registry) -> None:
    """Give ``reg``'s context the settings the environment (and the home's ``registry.json``) say now."""
    reg.ctx.settings = Settings().for_home(reg.ctx.paths.home)
