"""Keeping pandas out of processes that never use it.

pyarrow imports pandas, when it is installed, the first time it converts Python values (``pa.array``,
``pa.scalar``, ``fill_null``...), only to learn whether they are pandas objects. In the ``registry``
command that import costs about 0.4 s and 100 MiB per process (measured: 1.45 s of a 2 s upsert commit on
a busy machine) for nothing: the registry never hands pandas objects to pyarrow.

:func:`hide_pandas` makes ``import pandas`` fail in this process, so pyarrow's probes find no pandas;
:func:`unhide_pandas` undoes it, for the few commands that use a library built on pandas (the Hugging Face
``datasets`` export). Library users who import ``registry`` are never affected: only the command-line
entry point calls it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["hide_pandas", "pandas_hidden", "unhide_pandas"]


class _NoPandas:
    """A meta-path finder under which ``import pandas`` raises ImportError (``sys.modules["pandas"] = None``
    would not do: pyarrow's compiled imports take the None for the module)."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
                  ) -> ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is hidden in this process (registry.arrow_setup.hide_pandas)", name=name)
        return None


_FINDER = _NoPandas()


def pandas_hidden() -> bool:
    """Whether :func:`hide_pandas` is in effect."""
    return _FINDER in sys.meta_path


def hide_pandas() -> bool:
    """Make ``import pandas`` fail from now on, unless pandas is imported already; True if hidden."""
    if "pandas" in sys.modules:
        return False
    if not pandas_hidden():
        sys.meta_path.insert(0, _FINDER)
    return True


def unhide_pandas() -> None:
    """Let ``import pandas`` work again, and pyarrow recognise pandas objects."""
    if pandas_hidden():
        sys.meta_path.remove(_FINDER)
    import pyarrow as pa  # lazy: only the commands that need pandas back pay for pyarrow here

    with contextlib.suppress(ImportError):  # pandas not installed: nothing to restore
        _ = pa.lib._pandas_api.pd  # pyarrow probes again, and now finds pandas
