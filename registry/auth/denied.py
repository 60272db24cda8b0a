"""Recording refused API write attempts in the audit log (design invariant 6: who tried what)."""

from __future__ import annotations

from registry.audit import log as audit
from registry.context import Context
from registry.db import transaction

__all__ = ["record_denied"]


def record_denied(ctx: Context, action: str, method: str, path: str) -> None:
    """Append a ``request.denied`` event in its own transaction; ``ctx.principal`` is the actor."""
    with transaction(ctx.engine) as session:
        audit.record(session, ctx, "request.denied", "request", f"{method} {path}"[:200],
                     details={"action": action, "method": method, "path": path})
