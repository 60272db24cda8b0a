"""Recording refused API write attempts in the audit log (design invariant 6: who tried what).

A client hammering a refused route must not grow the audit log without bound, so per token (per
process) the first refusal is always recorded and later ones at most once per interval; each recorded
event says how many refusals since the previous one were left out (``suppressed``), so nothing is
silently lost from the count.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from registry.audit import log as audit
from registry.context import Context
from registry.db import transaction

__all__ = ["DeniedLimiter", "record_denied"]


@dataclass
class DeniedLimiter:
    """Per-token throttle of ``request.denied`` events: the first always, then one per ``interval`` seconds."""

    interval: float
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, token: str, now: float | None = None) -> int | None:
        """How many refusals of ``token`` were left out before this one, if this one is to be recorded;
        None if it is to be left out (and counted)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(token)
            if last is not None and now - last < self.interval:
                self._suppressed[token] = self._suppressed.get(token, 0) + 1
                return None
            self._last[token] = now
            if len(self._last) > _MAX_TOKENS:  # forget the oldest; a forgotten token is recorded again
                oldest = min(self._last, key=self._last.__getitem__)
                self._last.pop(oldest)
            return self._suppressed.pop(token, 0)


_MAX_TOKENS = 10_000
_limiters: dict[tuple[str, float], DeniedLimiter] = {}
_limiters_lock = threading.Lock()


def _limiter(ctx: Context) -> DeniedLimiter:
    """The throttle of this process for the catalog ``ctx`` writes to."""
    interval = ctx.settings.audit.denied_interval_seconds
    with _limiters_lock:
        return _limiters.setdefault((ctx.paths.database_url, interval), DeniedLimiter(interval))


def record_denied(ctx: Context, action: str, method: str, path: str) -> bool:
    """Append a ``request.denied`` event in its own transaction (``ctx.principal`` is the actor), unless
    this token had one recorded less than ``audit_denied_interval_seconds`` ago; whether it was recorded."""
    suppressed = _limiter(ctx).admit(ctx.principal or "")
    if suppressed is None:
        return False
    details: dict[str, object] = {"action": action, "method": method, "path": path}
    if suppressed:
        details["suppressed"] = suppressed
    with transaction(ctx.engine) as session:
        audit.record(session, ctx, "request.denied", "request", f"{method} {path}"[:200], details=details)
    return True
