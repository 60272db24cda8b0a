"""Branch use cases: create (O(1): a new ref, no data copied), list, delete, protect.

A branch is a ref of kind ``branch`` that moves by compare-and-swap; ``main`` is created by a
dataset's first commit. A protected branch refuses direct commits: changes reach it only by merge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlmodel import select

from registry import catalog
from registry.audit import log as audit
from registry.branch_models import BranchProtectionRow
from registry.context import Context, resolve_actor
from registry.db import transaction
from registry.errors import AlreadyExists, Hint, InvalidInput, InvalidName
from registry.models import RefRow
from registry.quality.store import require_maintainer
from registry.refs import Ref
from registry.snapshots.ancestry import load_graph
from registry.snapshots.guard import branch_ref as _branch_ref
from registry.snapshots.guard import guard_commit, is_protected, refuse_commit
from registry.timeutil import utc_now

__all__ = ["BranchInfo", "check_branch_name", "create_branch", "delete_branch", "guard_commit", "is_protected",
           "list_branches", "protect_branch", "refuse_commit"]


@dataclass(frozen=True)
class BranchInfo:
    """One branch: where it points, whether it is protected, and how it relates to ``main``."""

    dataset: str
    name: str
    snapshot_id: str
    protected: bool
    updated_at: str
    merged: bool
    """Its head is reachable from ``main`` (deleting it loses nothing)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_branch_name(branch: str) -> str:
    """``branch`` if it can name a new branch (the tag-name rules: not ``main``, not id-like).

    Raises:
        InvalidName: it cannot.
    """
    try:
        return catalog.check_tag_name(branch)
    except InvalidName:
        raise InvalidName(f"invalid branch name {branch!r}: use letters, digits, '.', '_', '-' (not 'main', "
                          "and not 8+ hex characters, which read as a snapshot id)") from None


def _branch_parts(branch_ref: Ref | str) -> tuple[str, str]:
    """``(NAME, BRANCH)`` of a branch ref; a string is read by :meth:`Ref.parse_branch` (``NAME/BRANCH`` or
    ``NAME@BRANCH``), a ``Ref`` of the head of ``main`` names ``main``.

    Raises:
        InvalidName: a string that names no branch.
    """
    ref = branch_ref if isinstance(branch_ref, Ref) else Ref.parse_branch(branch_ref)
    return ref.dataset, ref.ref_name


def create_branch(ctx: Context, branch_ref: Ref | str, from_ref_name: str | None = None, actor: str | None = None
                  ) -> BranchInfo:
    """Create branch ``NAME/BRANCH`` at ``from_ref_name`` (a ref of the same dataset, default ``main``).

    Raises:
        InvalidName: a bad branch name. NotFound: unknown dataset or ``from_ref_name``.
        AlreadyExists: a branch or tag of that name exists.
    """
    name, branch = _branch_parts(branch_ref)
    check_branch_name(branch)
    who = resolve_actor(ctx, actor)
    with transaction(ctx.engine) as session:
        dataset = catalog.get_dataset(session, name)
        start = catalog.resolve(session, dataset, from_ref_name or catalog.MAIN)
        if catalog.get_ref(session, dataset, branch) is not None:
            raise AlreadyExists(f"{name}@{branch} exists already; pick another name or delete it first")
        now = utc_now()
        session.add(RefRow(dataset_id=catalog.dataset_id(dataset), name=branch, kind="branch",
                           snapshot_id=start.id, updated_at=now))
        session.flush()
        audit.record(session, ctx, "branch.create", "ref", f"{name}@{branch}", dataset=name, snapshot=start.id,
                     actor=who, details={"branch": branch, "ref": branch, "moved_ref": branch,
                              "from": from_ref_name or catalog.MAIN})
        return BranchInfo(name, branch, start.id, False, now, True)


def list_branches(ctx: Context, name: str) -> list[BranchInfo]:
    """Every branch of dataset ``name``, ``main`` first, then by name."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, catalog.check_dataset_name(name))
        refs = session.exec(select(RefRow).where(RefRow.dataset_id == dataset.id, RefRow.kind == "branch")).all()
        protected = {r.branch for r in session.exec(
            select(BranchProtectionRow).where(BranchProtectionRow.dataset_id == dataset.id)).all()}
        graph = load_graph(session, dataset)
        main = next((r.snapshot_id for r in refs if r.name == catalog.MAIN), None)
        on_main = graph.ancestors(main) if main else set()
        infos = [BranchInfo(name, r.name, r.snapshot_id, r.name in protected, r.updated_at,
                            r.snapshot_id in on_main) for r in refs]
    return sorted(infos, key=lambda b: (b.name != catalog.MAIN, b.name))


def delete_branch(ctx: Context, branch_ref: Ref | str, force: bool = False, actor: str | None = None) -> BranchInfo:
    """Delete branch ``NAME/BRANCH`` (its snapshots stay; tags and other branches keep them reachable).

    Raises:
        InvalidInput: it is ``main``, it is protected, or it holds work not merged into ``main``
            (unless ``force``). NotFound: no such branch.
    """
    name, branch = _branch_parts(branch_ref)
    who = resolve_actor(ctx, actor)
    with transaction(ctx.engine) as session:
        dataset = catalog.get_dataset(session, name)
        if branch == catalog.MAIN:
            raise InvalidInput(f"{name}@main cannot be deleted")
        ref = _branch_ref(session, dataset, branch)
        if is_protected(session, dataset, branch):
            raise InvalidInput(f"{name}@{branch} is protected; it cannot be deleted")
        main = catalog.get_ref(session, dataset, catalog.MAIN)
        merged = main is not None and load_graph(session, dataset).is_ancestor(ref.snapshot_id, main.snapshot_id)
        if not merged and not force:
            raise InvalidInput(f"{name}@{branch} has work not merged into main (head {ref.snapshot_id[:12]}); "
                               "merge it first, or force the deletion to delete it anyway",
                               hint=Hint("option", "force"))
        info = BranchInfo(name, branch, ref.snapshot_id, False, ref.updated_at, merged)
        session.delete(ref)
        session.flush()
        audit.record(session, ctx, "branch.delete", "ref", f"{name}@{branch}", dataset=name,
                     snapshot=ref.snapshot_id, actor=who, details={"branch": branch, "merged": merged,
                                                                   "forced": force and not merged})
        return info


def protect_branch(ctx: Context, branch_ref: Ref | str, protected: bool = True, actor: str | None = None) -> BranchInfo:
    """Protect (or, with ``protected=False``, unprotect) branch ``NAME/BRANCH``; owner and maintainers only.

    Raises:
        NotFound: no such branch. PermissionDenied: the actor neither owns nor maintains the dataset.
    """
    name, branch = _branch_parts(branch_ref)
    who = resolve_actor(ctx, actor)
    with transaction(ctx.engine) as session:
        dataset = catalog.get_dataset(session, name)
        ref = _branch_ref(session, dataset, branch, lock=True)
        require_maintainer(session, dataset, who.name, "change branch protection")
        existing = session.get(BranchProtectionRow, (dataset.id, branch))
        if protected and existing is None:
            session.add(BranchProtectionRow(dataset_id=catalog.dataset_id(dataset), branch=branch,
                                            created_at=utc_now(), created_by=who.name))
        elif not protected and existing is not None:
            session.delete(existing)
        session.flush()
        audit.record(session, ctx, "branch.protect", "ref", f"{name}@{branch}", dataset=name,
                     snapshot=ref.snapshot_id, actor=who, details={"branch": branch, "protected": protected})
        return BranchInfo(name, branch, ref.snapshot_id, protected, ref.updated_at, True)
