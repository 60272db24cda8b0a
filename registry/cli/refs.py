"""How the CLI reads a pair of refs: ``registry diff NAME@A B`` means ``NAME@A NAME@B``."""

from __future__ import annotations

__all__ = ["second_ref"]


def second_ref(a: str, b: str) -> str:
    """``b`` as a ref of ``a``'s dataset when it names no dataset of its own (no ``NAME@``).

    ``registry diff street-signs@v1 v2`` compares with ``street-signs@v2``, as ``git diff v1 v2``
    compares two revisions of one repository. A bare ``b`` equal to ``a``'s dataset name keeps its
    old meaning (that dataset's ``main``), so ``registry diff street-signs@v1 street-signs`` still works.
    """
    name, sep, _ = a.partition("@")
    if "@" in b or not sep or b == name:
        return b
    return f"{name}@{b}"
