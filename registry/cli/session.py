"""``Session``: what one ``registry`` command works against, chosen once per process.

Commands call the use cases of :class:`registry.service.RegistryService` on :meth:`Session.service` and
never ask where the registry runs: with ``REGISTRY_URL`` set it is the server there
(:class:`registry.remote_service.RemoteService`), otherwise the home at ``--home`` opened in this process
(:class:`registry.registry.Registry`). Work that changes a home itself (init, gc, compaction, tokens,
serving, storage migration) asks for :meth:`Session.host`, which refuses against a server (exit 2)
because it runs only where the home lives. The labeling loop (``sync``, ``requeue``) is a use case of the
service, but only a local one: its commands call :meth:`Session.require_host` first, so the Label Studio
token never goes to a server the client names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import click

from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.cli.fast_reads import FastReads
    from registry.config import Settings
    from registry.quality.verdict import GateStatus
    from registry.refs import Ref
    from registry.registry import Registry  # lazy: loading the catalog stack costs start-up time
    from registry.service import GateChecker, RegistryService

__all__ = ["URL_ENV", "Session", "local_only"]

URL_ENV = "REGISTRY_URL"


def local_only(command: str | None = None) -> NoReturn:
    """Refuse a command that has no endpoint (exit 2), naming it as typed."""
    if command is None:
        current = click.get_current_context(silent=True)
        command = current.command_path.removeprefix("registry ") if current is not None else "this command"
    raise InvalidInput(f"`registry {command}` runs only on the registry host; unset {URL_ENV} and run it there")


class _HomeGateChecker:
    """:class:`~registry.service.GateChecker` on a home, through the fast path of
    :func:`registry.quality.gatecheck.check_gate_at` (plain ``sqlite3`` when it can answer)."""

    def __init__(self, home: str | None, actor: str | None) -> None:
        self.home = home
        self.actor = actor

    def gate_check(self, ref: Ref | str, evaluate: bool = False) -> GateStatus:
        from registry.quality.gatecheck import check_gate_at  # lazy: start-up speed of CI gates

        client = None
        if evaluate:
            from registry.context import ClientInfo  # lazy: only when evaluating, which loads the data stack

            client = ClientInfo(kind="cli")
        return check_gate_at(self.home, ref, evaluate=evaluate, actor=self.actor, client=client)


class Session:
    """The root group's state: ``--home`` and ``--author``, and the registry they name (opened on first use)."""

    def __init__(self, home: str | None, author: str | None = None) -> None:
        self.home = home
        self.author = author
        self._service: RegistryService | None = None
        self._local: Registry | None = None
        self._settings: Settings | None = None
        self._fast: FastReads | None = None
        self._fast_tried = False

    @property
    def settings(self) -> Settings:
        """The settings of this invocation, resolved from the environment once (the CLI is an entry point)."""
        if self._settings is None:
            from registry.config import Settings  # lazy: parsing arguments and --help load no pydantic

            self._settings = Settings()
        return self._settings

    @property
    def remote(self) -> bool:
        """True when ``REGISTRY_URL`` names a server to work against."""
        return bool(self.settings.remote.url)

    def service(self) -> RegistryService:
        """The registry every use case runs on: the server at ``REGISTRY_URL`` (acting with
        ``REGISTRY_TOKEN``), else the home at ``--home`` (acting for ``--author``, audited as a CLI client)."""
        if self._service is None:
            if self.remote:
                from registry.remote_service import RemoteService  # lazy: only commands against a server

                self._service = RemoteService.from_settings(self.settings.remote, self.author)
            else:
                self._service = self._open_local()
        return self._service

    def require_host(self, command: str | None = None) -> None:
        """Refuse (exit 2) when ``REGISTRY_URL`` is set: ``command`` runs only where the home lives.

        Raises:
            InvalidInput: ``REGISTRY_URL`` is set (the command has no endpoint).
        """
        if self.remote:
            local_only(command)

    def host(self, command: str | None = None) -> Registry:
        """The home opened in this process, for work that runs only where it lives (see :meth:`require_host`)."""
        self.require_host(command)
        return self._open_local()

    def gate_checker(self) -> GateChecker:
        """What ``registry gate check`` asks: the server, or the home read through plain ``sqlite3`` when it
        can answer that way (a CI gate starts without loading the data stack)."""
        if self.remote:
            return self.service()
        return _HomeGateChecker(self.home, self.author)

    def fast_reads(self) -> FastReads | None:
        """Plain ``sqlite3`` reads of the home's embedded catalog for the everyday read-only commands, or None
        when they cannot answer here (a server at ``REGISTRY_URL``, no home, a catalog that is not SQLite or
        not at the newest migration): the command then asks :meth:`service`. A reader that returns None
        sends the command the same way (see :mod:`registry.cli.fast_reads`)."""
        if not self._fast_tried:
            self._fast_tried = True
            if not self.remote:
                from registry.cli.fast_reads import FastReads  # lazy: only read-only commands use it
                from registry.quality.gatecheck import (  # lazy: only read-only commands use it
                    open_readonly_catalog,
                    sqlite_catalog,
                )

                found = sqlite_catalog(self.home, self.settings)
                conn = open_readonly_catalog(found[1]) if found is not None else None
                if found is not None and conn is not None:
                    self._fast = FastReads.begin(conn, found[0], self.settings.for_home(found[0]))
        return self._fast

    def _open_local(self) -> Registry:
        if self._local is None:
            from registry.context import ClientInfo  # lazy: loading the catalog stack costs start-up time
            from registry.registry import Registry  # lazy: loading the catalog stack costs start-up time

            self._local = Registry.open(self.home, self.settings)
            self._local.ctx.client = ClientInfo(kind="cli")
            self._local.ctx.author = self.author
        return self._local

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        for opened in {id(x): x for x in (self._service, self._local) if x is not None}.values():
            opened.close()
