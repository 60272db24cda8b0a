"""The commit stage that guards branches: a direct commit to a branch that does not exist, or to a
protected one, is refused (the refusal is audited). It lives with the commit stages, not with the
branch use cases of :mod:`registry.branching.branches` (which sit above snapshots and use it too).
"""

from __future__ import annotations

from typing import NoReturn

from sqlmodel import Session, select

from registry import catalog
from registry.audit import log as audit
from registry.branch_models import BranchProtectionRow
from registry.context import Context
from registry.db import transaction
from registry.errors import Hint, NotFound, PermissionDenied
from registry.models import DatasetRow, RefRow

__all__ = ["branch_ref", "guard_commit", "is_protected", "refuse_commit"]


def is_protected(session: Session, dataset: DatasetRow, branch: str) -> bool:
    return session.get(BranchProtectionRow, (dataset.id, branch)) is not None


def branch_ref(session: Session, dataset: DatasetRow, branch: str, lock: bool = False) -> RefRow:
    """The branch's ref row; ``lock``: held until the transaction ends (``SELECT ... FOR UPDATE`` on
    PostgreSQL; SQLite's write transactions are serial already), so commits to it wait."""
    ref = session.exec(select(RefRow).where(RefRow.dataset_id == dataset.id, RefRow.name == branch)
                       .with_for_update()).first() if lock else catalog.get_ref(session, dataset, branch)
    if ref is None or ref.kind != "branch":
        raise NotFound(f"{dataset.name} has no branch {branch!r}; the list of its branches shows their names",
                       hint=Hint("command", "branch list", dataset.name))
    return ref


def guard_commit(ctx: Context, name: str, branch: str, actor: str | None = None) -> None:
    """Refuse a direct commit to a branch that does not exist or is protected (the refusal is audited).

    An early check, before any object is written; the commit repeats it in the transaction that moves
    the branch (after its compare-and-swap locked the ref row, which ``protect_branch`` locks too),
    so a branch protected in between refuses the commit all the same.

    Raises:
        NotFound: ``branch`` is not ``main`` and does not exist.
        PermissionDenied: ``branch`` is protected: changes reach it only by merge.
    """
    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, name)
        if branch != catalog.MAIN:
            branch_ref(session, dataset, branch)
        refused = is_protected(session, dataset, branch)
    if refused:
        refuse_commit(ctx, name, branch, actor)


def refuse_commit(ctx: Context, name: str, branch: str, actor: str | None = None) -> NoReturn:
    """Audit a direct commit refused by the branch's protection, and raise.

    Raises:
        PermissionDenied: always.
    """
    with transaction(ctx.engine) as session:
        audit.record(session, ctx, "commit.denied", "ref", f"{name}@{branch}", dataset=name, actor=actor,
                     details={"branch": branch, "reason": "protected branch"})
    raise PermissionDenied(f"{name}@{branch} is protected: direct commits are refused; commit to another "
                           f"branch and merge that branch into {branch}",
                           hint=Hint("command", "merge", f"{name}@BRANCH --into {branch}"))
