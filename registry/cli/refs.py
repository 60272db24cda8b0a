"""How the CLI reads refs: each command argument naming ``NAME[@REF]`` is parsed here, once, into a
:class:`~registry.refs.Ref` that the command passes on (to the local registry or to the server).

A malformed ref is an :class:`~registry.errors.InvalidName` that :func:`registry.cli.main.main` prints
as it prints every error (``error: ...``, exit 2), in the words the services used when they parsed
strings themselves.
"""

from __future__ import annotations

from registry.refs import Ref

__all__ = ["parse_ref", "second_ref"]


def parse_ref(arg: str, default_dataset: str | None = None) -> Ref:
    """The ref a command argument names (``NAME``, ``NAME@REF``; see :meth:`Ref.parse`).

    Raises:
        InvalidName: the dataset name is not valid, or nothing follows ``@``.
    """
    return Ref.parse(arg, default_dataset)


def second_ref(a: Ref, b: str) -> Ref:
    """``b`` as a ref of ``a``'s dataset when it names no dataset of its own (no ``NAME@``).

    ``registry diff street-signs@v1 v2`` compares with ``street-signs@v2``, as ``git diff v1 v2``
    compares two revisions of one repository. A bare ``b`` equal to ``a``'s dataset name keeps its
    old meaning (that dataset's ``main``), so ``registry diff street-signs@v1 street-signs`` still works,
    and so does a bare ``b`` after a bare ``a`` (``registry diff street-signs other``: two datasets).

    Raises:
        InvalidName: ``b`` is not a ref.
    """
    return parse_ref(b, a.dataset if a.name is not None else None)
