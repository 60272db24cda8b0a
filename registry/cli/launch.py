"""The ``registry`` console command: hand the command to this user's preloaded process when one runs
(:mod:`registry.cli.preload_client`), else run it here (:func:`registry.cli.main.run`).

Standard library only until it knows which: when nothing is preloaded this costs one ``stat``.
``python -m registry.cli.main`` always runs in its own process.
"""

from __future__ import annotations

import os
import sys

from registry.cli.preload_client import forward

__all__ = ["run"]


def run() -> None:
    """The console entry point."""
    code = forward(sys.argv[1:])
    if code is not None:
        os._exit(code)
    from registry.cli.main import run as run_here  # lazy: the launcher imports the CLI only when nothing is preloaded

    run_here()


if __name__ == "__main__":
    run()
