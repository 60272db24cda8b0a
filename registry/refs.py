"""What a ref says, parsed once: :class:`Ref` is ``NAME[@REF]`` as a value, not a string to split again.

Edges (the CLI, the client's callers) parse what users type with :meth:`Ref.parse`; services take
``Ref | str`` and call :meth:`Ref.coerce` once at entry; the catalog resolves a ``Ref`` to a snapshot
(:func:`registry.catalog.resolve_ref`). The name rules (dataset names, what reads as a snapshot id or
as ancestry) live here so the parser and the catalog cannot disagree. This module imports only the
error vocabulary.

The forms, all given back unchanged by ``str(ref)``:

=====================  ===========  ===========  ==========================================
text                   ``name``     ``kind``     meaning
=====================  ===========  ===========  ==========================================
``signs``              None         head         the head of ``main``
``signs@main``         main         branch       the head of ``main``, written out
``signs@fix/labels``   fix/labels   branch       only a branch may hold ``/``
``signs@v1``           v1           None         a branch or a tag: the catalog says which
``signs@3f2a9c1e``     3f2a9c1e     id           a snapshot id or a prefix of 8+ hex chars
``signs@v1~2``         v1~2         ancestor     two first-parent steps back from ``v1``
=====================  ===========  ===========  ==========================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from registry.errors import InvalidName

__all__ = ["ANCESTOR", "DATASET_NAME", "HEX_ID", "MAIN", "Ref", "RefKind", "check_dataset_name", "full_match",
           "kind_of"]

MAIN = "main"
DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?")
HEX_ID = re.compile(r"[0-9a-f]{8,64}")
"""A snapshot id or a prefix of one; no branch or tag may look like this."""
ANCESTOR = re.compile(r"(?P<base>.+?)~(?P<n>\d+)")
"""``BASE~N``: N first-parent steps back from BASE (which may itself be ``X~M``)."""

RefKind = Literal["branch", "tag", "id", "ancestor", "head"]


def full_match(pattern: re.Pattern[str], text: object) -> bool:
    """Whether ``text`` is a string that ``pattern`` matches from its first to its last character.

    Every name check goes through this: ``re.match`` with ``$`` accepts a trailing newline
    (``"main\\n"``), which would let a name spoof another in listings.
    """
    return isinstance(text, str) and pattern.fullmatch(text) is not None


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name.

    Raises:
        InvalidName: it has characters other than lowercase letters, digits, ``.``, ``_``, ``-``
            and at most one ``/``.
    """
    if len(name) > 200 or not full_match(DATASET_NAME, name):
        raise InvalidName(
            f"invalid dataset name {name!r}: use lowercase letters, digits, '.', '_', '-' and at most "
            "one '/' for a namespace (e.g. vision/street-signs)"
        )
    return name


def kind_of(name: str | None) -> RefKind | None:
    """The kind the text after ``@`` has by its syntax alone, or None for a plain name (a branch or a tag)."""
    if name is None:
        return "head"
    if full_match(ANCESTOR, name):
        return "ancestor"
    if full_match(HEX_ID, name):
        return "id"
    if name == MAIN or "/" in name:
        return "branch"
    return None


@dataclass(frozen=True)
class Ref:
    """``NAME[@REF]``: a dataset and, after ``@``, a branch, a tag, a snapshot id (prefix) or ``REF~N``.

    ``name`` is the text after ``@`` as written, None for the head of ``main``. ``kind`` is what that
    text is, when its syntax says (``head``, ``id``, ``ancestor``, ``branch`` for ``main`` and names
    with ``/``, or a ref made by :meth:`parse_branch`), else None until the catalog says whether the
    name is a branch or a tag (:func:`registry.catalog.classify`). Two refs are equal when they name
    the same text of the same dataset, whatever is known of their kind.
    """

    dataset: str
    name: str | None = None
    kind: RefKind | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind is None and self.name is None:
            object.__setattr__(self, "kind", "head")
        elif self.kind is None:
            object.__setattr__(self, "kind", kind_of(self.name))

    @classmethod
    def parse(cls, text: str, default_dataset: str | None = None) -> Ref:
        """``NAME``, ``NAME@REF`` (REF a branch, tag, id prefix or ``REF~N``) -> a ``Ref``.

        With ``default_dataset``, a text without ``@`` that is not that dataset's name is a ref of
        it: ``parse("v2", default_dataset="signs")`` is ``signs@v2`` (how ``registry diff signs@v1 v2``
        reads its second ref), while ``parse("signs", default_dataset="signs")`` stays ``signs``.

        Raises:
            InvalidName: the dataset name is not valid, or nothing follows ``@``.
        """
        if default_dataset is not None and "@" not in text and text != default_dataset:
            return cls.parse(f"{default_dataset}@{text}")
        dataset, sep, name = text.partition("@")
        check_dataset_name(dataset)
        if sep and not name:
            raise InvalidName(f"{text!r}: nothing after '@'; write NAME@main, NAME@TAG or NAME@ID")
        return cls(dataset, name if sep else None)

    @classmethod
    def parse_branch(cls, text: str) -> Ref:
        """``NAME/BRANCH`` or ``NAME@BRANCH`` (branch commands) -> a ``Ref`` of kind ``branch``; a
        namespaced dataset keeps its own ``/`` (``vision/signs/relabel`` is branch ``relabel`` of
        ``vision/signs``). The branch name itself is checked where a branch is created.

        Raises:
            InvalidName: no branch is named, or the dataset name is not valid.
        """
        if "@" in text:
            ref = cls.parse(text)
            return cls(ref.dataset, ref.ref_name, "branch")
        dataset, _, branch = text.rpartition("/")
        if not dataset or not branch:
            raise InvalidName(f"{text!r}: name a branch as NAME/BRANCH (e.g. street-signs/relabel)")
        return cls(check_dataset_name(dataset), branch, "branch")

    @classmethod
    def coerce(cls, ref: Ref | str) -> Ref:
        """``ref`` itself, or the ``Ref`` a string parses to (see :meth:`parse`)."""
        return ref if isinstance(ref, Ref) else cls.parse(ref)

    @property
    def ref_name(self) -> str:
        """The text after ``@``, ``main`` when none was written."""
        return MAIN if self.name is None else self.name

    @property
    def qualified(self) -> str:
        """``NAME@REF`` with ``@main`` written out for the head of ``main``."""
        return f"{self.dataset}@{self.ref_name}"

    @property
    def ancestry(self) -> tuple[str, int] | None:
        """``(BASE, N)`` for ``BASE~N`` (BASE may itself be ``X~M``), else None."""
        found = ANCESTOR.fullmatch(self.ref_name)
        return (found["base"], int(found["n"])) if found else None

    def at(self, name: str | None) -> Ref:
        """A ref of the same dataset naming ``name`` (e.g. the full snapshot id this one resolved to)."""
        return Ref(self.dataset, name)

    def __str__(self) -> str:
        return self.dataset if self.name is None else f"{self.dataset}@{self.name}"
