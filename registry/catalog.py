"""Catalog queries and writes inside a caller's transaction. Nothing here commits."""

from __future__ import annotations

import json
import re

from sqlalchemy import update
from sqlmodel import Session, col, select

from registry.errors import AlreadyExists, AmbiguousRef, Hint, InvalidName, NotFound, RefConflict
from registry.models import DatasetRow, RefRow, SchemaVersionRow, SnapshotRow
from registry.refs import ANCESTOR as _ANCESTOR
from registry.refs import DATASET_NAME, MAIN, Ref, check_dataset_name, full_match
from registry.refs import HEX_ID as _HEX
from registry.timeutil import utc_now

__all__ = [
    "BRANCH_NAME",
    "DATASET_NAME",
    "MAIN",
    "TAG_NAME",
    "add_tag",
    "check_branch_name",
    "check_dataset_name",
    "check_tag_name",
    "classify",
    "dataset_id",
    "full_match",
    "get_dataset",
    "get_ref",
    "get_snapshot",
    "key_columns",
    "move_branch",
    "parents_of",
    "resolve",
    "resolve_ref",
]

TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
BRANCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99})*")


def check_tag_name(tag: str) -> str:
    """Return ``tag`` if it can name a tag (and cannot be mistaken for an id or ancestry).

    Raises:
        InvalidName: it is empty, has other characters, is ``main`` or looks like a snapshot id.
    """
    if not full_match(TAG_NAME, tag) or tag == MAIN or full_match(_HEX, tag):
        raise InvalidName(
            f"invalid tag name {tag!r}: use letters, digits, '.', '_', '-' (not 'main', and not 8+ hex "
            "characters, which read as a snapshot id)"
        )
    return tag


def check_branch_name(branch: str) -> str:
    """Return ``branch`` if it can name a branch: segments of letters, digits, ``.``, ``_``, ``-``
    joined by ``/`` (``main``, ``fix/labels``), not looking like a snapshot id, 200 characters at most.

    Raises:
        InvalidName: anything else (a trailing newline included).
    """
    if len(branch) > 200 or not full_match(BRANCH_NAME, branch) or full_match(_HEX, branch):
        raise InvalidName(
            f"invalid branch name {branch!r}: use letters, digits, '.', '_', '-' in segments joined by '/' "
            "(not 8+ hex characters, which read as a snapshot id)"
        )
    return branch


def get_dataset(session: Session, name: str) -> DatasetRow:
    """The dataset called ``name``.

    Raises:
        NotFound: there is none (the message suggests `registry dataset list`).
    """
    row = session.exec(select(DatasetRow).where(DatasetRow.name == name)).first()
    if row is None:
        raise NotFound(f"unknown dataset {name!r}; the list of datasets shows their names",
                       hint=Hint("command", "dataset list"))
    return row


def dataset_id(dataset: DatasetRow) -> int:
    """The primary key of a dataset row that has been stored."""
    assert dataset.id is not None, "dataset row not stored yet"
    return dataset.id


def key_columns(dataset: DatasetRow) -> list[str]:
    keys: list[str] = json.loads(dataset.key_columns)
    return keys


def parents_of(snapshot: SnapshotRow) -> list[str]:
    parents: list[str] = json.loads(snapshot.parents)
    return parents


def get_snapshot(session: Session, snapshot_id: str) -> SnapshotRow:
    row = session.get(SnapshotRow, snapshot_id)
    if row is None:
        raise NotFound(f"unknown snapshot {snapshot_id}")
    return row


def get_ref(session: Session, dataset: DatasetRow, name: str) -> RefRow | None:
    return session.get(RefRow, (dataset.id, name))


def resolve(session: Session, dataset: DatasetRow, ref_name: str) -> SnapshotRow:
    """The snapshot ``ref_name`` (the text after ``@``) names: a branch, a tag, ``REF~N``, or an id (prefix
    of 8+ hex chars).

    Raises:
        NotFound: nothing matches, or the dataset has no snapshots yet.
        AmbiguousRef: an id prefix matches several snapshots (they are listed).
    """
    ancestry = _ANCESTOR.fullmatch(ref_name)
    if ancestry:
        snapshot = resolve(session, dataset, ancestry["base"])
        for step in range(int(ancestry["n"])):
            parents = parents_of(snapshot)
            if not parents:
                raise NotFound(f"{dataset.name}@{ref_name}: history has only {step + 1} snapshot(s) "
                               f"back from {ancestry['base']}")
            snapshot = get_snapshot(session, parents[0])
        return snapshot
    named = get_ref(session, dataset, ref_name)
    if named is not None:
        return get_snapshot(session, named.snapshot_id)
    if full_match(_HEX, ref_name):
        matches = session.exec(
            select(SnapshotRow).where(SnapshotRow.dataset_id == dataset.id, col(SnapshotRow.id).startswith(ref_name))
        ).all()
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            listed = ", ".join(sorted(m.id[:16] for m in matches))
            raise AmbiguousRef(f"{dataset.name}@{ref_name} matches {len(matches)} snapshots ({listed}); "
                               "give more characters")
    if ref_name == MAIN:
        raise NotFound(f"dataset {dataset.name!r} has no snapshots yet; commit one first")
    raise NotFound(f"{dataset.name}@{ref_name}: no branch, tag or snapshot id by that name; the dataset's log "
                   "lists them", hint=Hint("command", "log", dataset.name))


def resolve_ref(session: Session, ref: Ref | str) -> tuple[DatasetRow, SnapshotRow]:
    """``NAME[@REF]`` -> the dataset and the snapshot it names (a string is parsed first).

    Raises:
        InvalidName: a string that is no ref. NotFound: no such dataset or ref.
        AmbiguousRef: an id prefix matches several snapshots.
    """
    ref = Ref.coerce(ref)
    dataset = get_dataset(session, ref.dataset)
    return dataset, resolve(session, dataset, ref.ref_name)


def classify(session: Session, ref: Ref | str) -> Ref:
    """``ref`` with its kind as the catalog knows it: a plain name is the ``branch`` or ``tag`` it names.

    Raises:
        NotFound: a plain name that is neither (an id, ancestry or the head keep the kind their syntax gives).
    """
    ref = Ref.coerce(ref)
    if ref.kind is not None:
        return ref
    row = get_ref(session, get_dataset(session, ref.dataset), ref.ref_name)
    if row is None:
        raise NotFound(f"{ref}: no branch or tag by that name")
    return Ref(ref.dataset, ref.name, "tag" if row.kind == "tag" else "branch")


def move_branch(session: Session, dataset: DatasetRow, branch: str, expected: str | None, new: str) -> None:
    """Point ``branch`` at ``new`` if it still points at ``expected`` (compare-and-swap).

    Raises:
        RefConflict: another writer moved the branch first.
    """
    now = utc_now()
    if expected is None:
        if get_ref(session, dataset, branch) is not None:
            raise RefConflict(f"{dataset.name}@{branch} was created by another writer; "
                              "re-read and commit again")
        session.add(RefRow(dataset_id=dataset_id(dataset), name=branch, kind="branch", snapshot_id=new, updated_at=now))
        session.flush()
        return
    result = session.execute(
        update(RefRow)
        .where(col(RefRow.dataset_id) == dataset.id, col(RefRow.name) == branch,
               col(RefRow.snapshot_id) == expected)
        .values(snapshot_id=new, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RefConflict(f"{dataset.name}@{branch} moved since it was read (expected {expected[:12]}); "
                          "another writer committed first: re-read and commit again")


def add_tag(session: Session, dataset: DatasetRow, tag: str, snapshot_id: str) -> None:
    """Create a tag; tags never move.

    Raises:
        AlreadyExists: a tag or branch of that name exists.
    """
    check_tag_name(tag)
    existing = get_ref(session, dataset, tag)
    if existing is not None:
        raise AlreadyExists(f"{dataset.name}@{tag} exists already (pointing at {existing.snapshot_id[:12]}); "
                            "tags never move: choose another name")
    session.add(RefRow(dataset_id=dataset_id(dataset), name=tag, kind="tag", snapshot_id=snapshot_id,
                       updated_at=utc_now()))


def latest_schema_version(session: Session, dataset: DatasetRow) -> SchemaVersionRow | None:
    return session.exec(
        select(SchemaVersionRow).where(SchemaVersionRow.dataset_id == dataset.id)
        .order_by(col(SchemaVersionRow.version).desc())
    ).first()
