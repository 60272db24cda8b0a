"""The ``Ref`` value object: every accepted form parses and prints back unchanged, every rejected form
fails with the words it always did, each kind resolves against a real home (SQLite and PostgreSQL),
and a service answers a ``Ref`` exactly as it answers the same ref written as a string."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry import Registry, catalog
from registry.cli.refs import parse_ref, second_ref
from registry.db import transaction
from registry.errors import InvalidName, NotFound
from registry.refs import DATASET_NAME, MAIN, Ref, check_dataset_name
from registry.snapshots import history

# --- parsing --------------------------------------------------------------------------------------------

ACCEPTED = [
    # text, dataset, name, kind
    ("signs", "signs", None, "head"),
    ("vision/street-signs", "vision/street-signs", None, "head"),
    ("signs@main", "signs", "main", "branch"),
    ("signs@fix/labels", "signs", "fix/labels", "branch"),
    ("signs@v1", "signs", "v1", None),
    ("signs@relabel-2024.06_b", "signs", "relabel-2024.06_b", None),
    ("vision/street-signs@v1", "vision/street-signs", "v1", None),
    ("signs@3f2a9c1e", "signs", "3f2a9c1e", "id"),
    ("signs@" + "ab" * 32, "signs", "ab" * 32, "id"),
    ("signs@main~2", "signs", "main~2", "ancestor"),
    ("signs@v1~0", "signs", "v1~0", "ancestor"),
    ("signs@main~1~2", "signs", "main~1~2", "ancestor"),
    ("signs@3f2a9c1e~10", "signs", "3f2a9c1e~10", "ancestor"),
    # Accepted by the parser and left to the catalog (which finds nothing by that name), as always:
    ("signs@x~y", "signs", "x~y", None),
    ("signs@ABCDEF12", "signs", "ABCDEF12", None),
    ("signs@a@b", "signs", "a@b", None),
    ("signs@has space", "signs", "has space", None),
]


@pytest.mark.parametrize(("text", "dataset", "name", "kind"), ACCEPTED)
def test_every_accepted_form_parses_and_prints_back(text: str, dataset: str, name: str | None,
                                                     kind: str | None) -> None:
    ref = Ref.parse(text)
    assert (ref.dataset, ref.name, ref.kind) == (dataset, name, kind)
    assert str(ref) == text
    assert Ref.parse(str(ref)) == ref
    assert ref.ref_name == (name or MAIN)
    assert ref.qualified == f"{dataset}@{name or MAIN}"


REJECTED = [
    ("", "invalid dataset name ''"),
    ("Signs", "invalid dataset name 'Signs'"),
    ("signs@", "'signs@': nothing after '@'; write NAME@main, NAME@TAG or NAME@ID"),
    ("@v1", "invalid dataset name ''"),
    ("a/b/c", "invalid dataset name 'a/b/c'"),
    ("a/b/c@v1", "invalid dataset name 'a/b/c'"),
    ("signs\n", "invalid dataset name 'signs\\\\n'"),
    ("signs\n@v1", "invalid dataset name 'signs\\\\n'"),
    ("-signs", "invalid dataset name '-signs'"),
    ("s" * 201, "invalid dataset name 's{201}'"),
    ("sig ns@v1", "invalid dataset name 'sig ns'"),
]


@pytest.mark.parametrize(("text", "message"), REJECTED)
def test_every_rejected_form_fails_as_it_did(text: str, message: str) -> None:
    with pytest.raises(InvalidName, match=message):
        Ref.parse(text)
    with pytest.raises(InvalidName, match=message):  # the CLI's one helper says the same
        parse_ref(text)


def _old_split_ref(text: str) -> tuple[str, str]:
    """``registry.catalog.split_ref`` as it was before refs were parsed once (the reference behaviour)."""
    name, _, ref = text.partition("@")
    check_dataset_name(name)
    if "@" in text and not ref:
        raise InvalidName(f"{text!r}: nothing after '@'; write NAME@main, NAME@TAG or NAME@ID")
    return name, ref or MAIN


@given(st.text(alphabet="ab/@~-.9 \nA", max_size=12))
def test_parse_accepts_and_rejects_exactly_what_the_old_split_did(text: str) -> None:
    try:
        expected: tuple[str, str] | str = _old_split_ref(text)
    except InvalidName as exc:
        expected = exc.message
    try:
        ref = Ref.parse(text)
    except InvalidName as exc:
        assert exc.message == expected
    else:
        assert (ref.dataset, ref.ref_name) == expected
        assert str(ref) == text


_DATASETS = st.from_regex(DATASET_NAME, fullmatch=True).filter(lambda s: len(s) <= 200)
_PLAIN = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_HEX = st.from_regex(r"[0-9a-f]{8,64}", fullmatch=True)
_BASES = st.one_of(_PLAIN, _HEX, st.just(MAIN), st.builds("/".join, st.lists(_PLAIN, min_size=2, max_size=3)))
_NAMES = st.one_of(st.none(), _BASES,
                   st.builds(lambda base, steps: base + "".join(f"~{n}" for n in steps), _BASES,
                             st.lists(st.integers(0, 99), min_size=1, max_size=2)))


@given(_DATASETS, _NAMES)
def test_round_trip_for_generated_refs(dataset: str, name: str | None) -> None:
    text = dataset if name is None else f"{dataset}@{name}"
    ref = Ref.parse(text)
    assert (ref.dataset, ref.name) == (dataset, name)
    assert str(ref) == text and Ref.parse(str(ref)) == ref
    if name is None:
        assert ref.kind == "head"
    elif "~" in name:
        assert ref.kind == "ancestor" and ref.ancestry is not None
    elif catalog.full_match(catalog._HEX, name):
        assert ref.kind == "id"
    elif name == MAIN or "/" in name:
        assert ref.kind == "branch"
    else:
        assert ref.kind is None


def test_ancestry_splits_base_and_steps() -> None:
    assert Ref.parse("signs@main~2").ancestry == ("main", 2)
    assert Ref.parse("signs@main~1~2").ancestry == ("main~1", 2)
    assert Ref.parse("signs@v1").ancestry is None
    assert Ref.parse("signs").ancestry is None


def test_branch_forms_of_the_branch_commands() -> None:
    assert Ref.parse_branch("signs/relabel") == Ref("signs", "relabel")
    assert Ref.parse_branch("signs/relabel").kind == "branch"
    assert Ref.parse_branch("vision/signs/relabel") == Ref("vision/signs", "relabel")
    assert Ref.parse_branch("signs@relabel") == Ref("signs", "relabel")
    assert Ref.parse_branch("signs@relabel").kind == "branch"
    assert str(Ref.parse_branch("signs/relabel")) == "signs@relabel"
    for text in ("signs", "signs/", "/relabel"):
        with pytest.raises(InvalidName, match="name a branch as NAME/BRANCH"):
            Ref.parse_branch(text)
    with pytest.raises(InvalidName, match="nothing after '@'"):
        Ref.parse_branch("signs@")
    with pytest.raises(InvalidName, match="invalid dataset name 'Vision'"):
        Ref.parse_branch("Vision/relabel")


def test_a_default_dataset_reads_a_bare_second_ref() -> None:
    assert Ref.parse("v2", default_dataset="signs") == Ref("signs", "v2")
    assert Ref.parse("main~1", default_dataset="signs") == Ref("signs", "main~1")
    assert Ref.parse("signs", default_dataset="signs") == Ref("signs")
    assert Ref.parse("other@v1", default_dataset="signs") == Ref("other", "v1")
    # registry diff: a bare B is a ref of A's dataset only when A names a ref (`signs@v1 v2`)
    assert second_ref(Ref.parse("signs@v1"), "v2") == Ref("signs", "v2")
    assert second_ref(Ref.parse("signs@v1"), "signs") == Ref("signs")
    assert second_ref(Ref.parse("signs@v1"), "other@v3") == Ref("other", "v3")
    assert second_ref(Ref.parse("signs"), "other") == Ref("other")
    with pytest.raises(InvalidName, match="nothing after '@'"):
        second_ref(Ref.parse("signs@v1"), "signs@")


def test_coerce_equality_and_hashing() -> None:
    ref = Ref.parse("signs@v1")
    assert Ref.coerce(ref) is ref
    assert Ref.coerce("signs@v1") == ref
    assert Ref("signs", "v1", "tag") == ref and hash(Ref("signs", "v1", "tag")) == hash(ref)  # kind is not identity
    assert Ref("signs") != Ref("signs", "main")  # the head and main written out print differently
    assert ref.at("3f2a9c1e") == Ref("signs", "3f2a9c1e") and ref.at("3f2a9c1e").kind == "id"
    with pytest.raises(AttributeError):
        ref.name = "v2"  # type: ignore[misc]


# --- resolving against a real home ----------------------------------------------------------------------

NAME = "labels"


def _table(step: int) -> pa.Table:
    return pa.table({"id": ["a", "b", "c"], "value": pa.array([step, step + 1, step * 2], pa.int64())})


@pytest.fixture
def ids(reg: Registry) -> list[str]:
    """Three snapshots of ``labels`` on main (oldest first), tag ``v1`` on the first, branch ``dev`` at the
    second."""
    reg.create_dataset(NAME, "id")
    made = [reg.commit(NAME, _table(step), message=f"step {step}").snapshot_id for step in range(3)]
    reg.tag(f"{NAME}@{made[0]}", "v1")
    reg.branch(f"{NAME}/dev", made[1][:12])
    return made


def _resolve(reg: Registry, ref: Ref | str) -> str:
    with transaction(reg.ctx.engine, readonly=True) as session:
        dataset, snapshot = catalog.resolve_ref(session, ref)
        assert dataset.name == NAME
        return snapshot.id


def test_each_kind_resolves(reg: Registry, ids: list[str]) -> None:
    cases = {
        "labels": ("head", ids[2]),
        "labels@main": ("branch", ids[2]),
        "labels@dev": (None, ids[1]),
        "labels@v1": (None, ids[0]),
        f"labels@{ids[1][:8]}": ("id", ids[1]),
        f"labels@{ids[1]}": ("id", ids[1]),
        "labels@main~2": ("ancestor", ids[0]),
        "labels@main~1~1": ("ancestor", ids[0]),
        "labels@dev~1": ("ancestor", ids[0]),
        f"labels@{ids[2][:10]}~1": ("ancestor", ids[1]),
    }
    for text, (kind, expected) in cases.items():
        ref = Ref.parse(text)
        assert ref.kind == kind, text
        assert _resolve(reg, ref) == expected == _resolve(reg, text), text
        assert history.resolve(reg.ctx, ref).snapshot_id == expected, text
        assert history.resolve(reg.ctx, ref).to_dict() == history.resolve(reg.ctx, text).to_dict(), text


def test_the_catalog_says_whether_a_name_is_a_branch_or_a_tag(reg: Registry, ids: list[str]) -> None:
    with transaction(reg.ctx.engine, readonly=True) as session:
        assert catalog.classify(session, "labels@v1").kind == "tag"
        assert catalog.classify(session, Ref.parse("labels@dev")).kind == "branch"
        assert catalog.classify(session, "labels@main~1").kind == "ancestor"
        assert catalog.classify(session, "labels").kind == "head"
        assert catalog.classify(session, f"labels@{ids[0][:8]}").kind == "id"
        with pytest.raises(NotFound, match="labels@nope: no branch or tag by that name"):
            catalog.classify(session, "labels@nope")


def test_resolution_errors_are_unchanged(reg: Registry, ids: list[str]) -> None:
    with pytest.raises(NotFound, match="labels@nope: no branch, tag or snapshot id by that name"):
        _resolve(reg, "labels@nope")
    with pytest.raises(NotFound, match=r"labels@main~5: history has only 3 snapshot\(s\) back from main"):
        _resolve(reg, Ref.parse("labels@main~5"))
    with pytest.raises(NotFound, match="unknown dataset 'other'"):
        _resolve(reg, Ref("other"))
    with pytest.raises(InvalidName, match="nothing after '@'"):
        _resolve(reg, "labels@")
    with pytest.raises(NotFound, match="labels@x~y: no branch, tag or snapshot id"):
        _resolve(reg, "labels@x~y")
    reg.create_dataset("empty", "id")
    with pytest.raises(NotFound, match="dataset 'empty' has no snapshots yet"), \
            transaction(reg.ctx.engine, readonly=True) as session:
        catalog.resolve_ref(session, Ref("empty"))


def test_services_answer_a_ref_as_they_answer_its_text(reg: Registry, ids: list[str]) -> None:
    pairs = [("labels", Ref("labels")), ("labels@v1", Ref.parse("labels@v1")),
             ("labels@dev~1", Ref.parse("labels@dev~1")), (f"labels@{ids[1][:12]}", Ref("labels", ids[1][:12]))]
    for text, ref in pairs:
        assert reg.show(ref) == reg.show(text)
        assert reg.log(ref) == reg.log(text)
        assert reg.read(ref).sort_by("id").equals(reg.read(text).sort_by("id"))
        assert reg.plan(ref).to_dict() == reg.plan(text).to_dict()
        assert reg.gate(ref).to_dict() == reg.gate(text).to_dict()
        assert reg.blame(ref, column="value").equals(reg.blame(text, column="value"))
    assert reg.diff(Ref.parse("labels@v1"), Ref("labels")).to_dict() == reg.diff("labels@v1", "labels").to_dict()
    assert (reg.label_diff(Ref.parse("labels@v1"), Ref("labels"), column="value").to_dict()
            == reg.label_diff("labels@v1", "labels", column="value").to_dict())
    tagged = reg.tag(Ref.parse("labels@dev"), "v2")
    assert tagged.id == ids[1] and "v2" in reg.show("labels@v2").tags
    created = reg.branch(Ref.parse_branch("labels/exp"), "v1")
    assert (created.dataset, created.name, created.snapshot_id) == ("labels", "exp", ids[0])
    committed = reg.commit(Ref.parse("labels@exp"), _table(7), message="on exp")
    assert reg.show("labels@exp").id == committed.snapshot_id
    assert reg.show(Ref("labels")).id == ids[2]  # main did not move
