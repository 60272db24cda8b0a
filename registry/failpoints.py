"""Named crash points for crash-safety tests.

When ``REGISTRY_FAILPOINT`` equals a point's name, the process kills itself with SIGKILL there,
as a power cut or OOM killer would. Unset (always, outside tests), a check is one dict lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "failpoint"]

POINTS = (
    "commit:after-change-object",
    "commit:after-objects",
    "commit:after-manifest",
    "commit:before-catalog-commit",
    "commit:after-catalog-commit",
)


def failpoint(name: str) -> None:
    """Die here, now, if the environment asks for it."""
    if os.environ.get("REGISTRY_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
