"""When queued events are sent: right after the operation's transaction commits.

``auto`` (the default) delivers inline when events go to the home's JSON-lines file (a local
append, milliseconds) and hands off to a detached ``python -m registry.lineage.worker`` process when an
OpenLineage transport is configured, so a slow or unreachable backend never delays or fails the
operation: its cost stays the outbox INSERT plus starting a process. In a long-lived process that
started a :mod:`registry.lineage.worker` (the API server), the operation only wakes that thread.
``inline``, ``background`` and ``manual`` (only ``registry lineage flush``) force one behaviour. Nothing here raises.
"""

from __future__ import annotations

import logging
import subprocess
import sys

from sqlalchemy import event as sa_event
from sqlmodel import Session

from registry.config import child_environment
from registry.context import Context
from registry.lineage.outbox import deliver
from registry.lineage.worker import notify_worker

__all__ = ["after_operation", "deliver_after_commit", "spawn_background_flush"]

log = logging.getLogger(__name__)
_PENDING = "lineage_delivery_pending"


def deliver_after_commit(session: Session, ctx: Context) -> None:
    """Deliver the events queued in ``session`` once its transaction commits (once per session)."""
    if session.info.get(_PENDING):
        return
    session.info[_PENDING] = True

    def _deliver(_session: Session) -> None:
        after_operation(ctx)

    sa_event.listen(session, "after_commit", _deliver, once=True)


def after_operation(ctx: Context) -> None:
    """Start delivery as the settings say; errors are logged, never raised."""
    try:
        mode = ctx.settings.lineage.delivery
        if mode == "manual":
            return
        if mode == "inline" or (mode == "auto" and not ctx.settings.lineage.openlineage.configured()):
            deliver(ctx, respect_backoff=True)
        else:
            if not notify_worker(ctx):  # a server's delivery thread, else a detached process
                spawn_background_flush(ctx)
    except Exception:  # noqa: BLE001 - lineage never breaks the operation (design invariant 9)
        log.warning("lineage delivery after the operation failed; events stay queued", exc_info=True)


def spawn_background_flush(ctx: Context) -> None:
    """Start a detached ``python -m registry.lineage.worker`` for this home and return at once."""
    settings = ctx.settings.lineage
    env = child_environment(REGISTRY_HOME=str(ctx.paths.home), REGISTRY_DATABASE_URL=ctx.paths.database_url)
    subprocess.Popen(  # noqa: S603 - our own module, arguments are not user input
        [sys.executable, "-m", "registry.lineage.worker", "--home", str(ctx.paths.home),
         "--wait", str(settings.background_seconds)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
