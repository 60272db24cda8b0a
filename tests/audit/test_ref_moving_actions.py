"""Every audit action the code records either moves a ref and names it (``details.moved_ref``) or is declared
to move none (``crosscheck.MOVES_NO_REF``), so a new kind of event cannot slip past verify's replay of refs.

The actions are found in the source: each ``record(session, ctx, ACTION, ...)`` call in ``registry/``, with
ACTION a literal, a conditional of literals, an ``audit_action`` field (its ``audit_action=`` literals and
default) or a parameter (the literals its callers pass).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

from registry import Registry
from registry.audit.crosscheck import MOVES_NO_REF, _Replay
from tests.support.paths import ROOT

SOURCES = sorted((ROOT / "registry").rglob("*.py"))


def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in SOURCES}


def _literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


def _keyword_literals(trees: dict[Path, ast.Module], name: str) -> list[str]:
    """Literals passed as ``name=`` anywhere, or given as the default of a field ``name``."""
    found = []
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == name:
                found += _literals(node.value)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name \
                    and node.value is not None:
                found += _literals(node.value)
    return found


def _parameter_literals(trees: dict[Path, ast.Module], function: ast.FunctionDef, name: str) -> list[str]:
    """Literals the callers of ``function`` pass as its parameter ``name``."""
    params = [a.arg for a in function.args.args]
    index = params.index(name)
    found = []
    for tree in trees.values():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if callee != function.name:
                continue
            if index < len(node.args):
                found += _literals(node.args[index])
            found += [v for k in node.keywords if k.arg == name for v in _literals(k.value)]
    return found


def _local_literals(function: ast.FunctionDef, name: str) -> list[str]:
    return [v for node in ast.walk(function) if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name) and target.id == name
            for v in _literals(node.value)]


def _details_keys(call: ast.Call) -> set[str] | None:
    """The literal keys of the call's ``details={...}`` (None when it is not a dict display)."""
    for keyword in call.keywords:
        if keyword.arg == "details":
            if not isinstance(keyword.value, ast.Dict):
                return None
            return {k.value for k in keyword.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return set()


def recorded_actions() -> dict[str, list[set[str] | None]]:
    """Every action recorded in ``registry/`` -> the details keys of each of its call sites."""
    trees = _trees()
    actions: dict[str, list[set[str] | None]] = defaultdict(list)
    for path, tree in trees.items():
        in_recorder = path.parts[-2:] == ("audit", "log.py")  # the recorder calls itself by its bare name
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for function in functions:
            for node in ast.walk(function):
                if not (isinstance(node, ast.Call) and len(node.args) >= 3 and (
                        (isinstance(node.func, ast.Attribute) and node.func.attr == "record"
                         and isinstance(node.func.value, ast.Name) and node.func.value.id in ("audit", "audit_log"))
                        or (in_recorder and isinstance(node.func, ast.Name) and node.func.id == "record"))):
                    continue
                arg = node.args[2]
                names = _literals(arg)
                for part in (arg.body, arg.orelse) if isinstance(arg, ast.IfExp) else (arg,):
                    if isinstance(part, ast.Attribute):
                        names += _keyword_literals(trees, part.attr)
                    elif isinstance(part, ast.Name):
                        if part.id in [a.arg for a in function.args.args]:
                            names += _parameter_literals(trees, function, part.id)
                        names += _local_literals(function, part.id)
                assert names, f"{path}:{node.lineno}: cannot tell which action this record() call writes"
                for name in names:
                    actions[name].append(_details_keys(node))
    return dict(actions)


def test_the_scan_finds_the_known_actions() -> None:
    actions = recorded_actions()
    assert {"snapshot.commit", "snapshot.import", "snapshot.sync", "merge", "branch.create", "ref.tag",
            "pin.refuse", "read.unverified", "request.denied", "gate.waive"} <= set(actions)


def test_every_recorded_action_names_the_ref_it_moves_or_is_declared_to_move_none() -> None:
    actions = recorded_actions()
    undeclared = []
    for action, sites in sorted(actions.items()):
        naming = [keys is not None and "moved_ref" in keys for keys in sites]
        if action in MOVES_NO_REF:
            assert not any(naming), f"{action} is declared to move no ref, but an event of it names one"
        elif not all(naming):
            undeclared.append(action)
    assert not undeclared, (f"audit action(s) {undeclared} neither carry details.moved_ref nor are listed in "
                            "registry.audit.crosscheck.MOVES_NO_REF")
    assert not MOVES_NO_REF - set(actions), f"MOVES_NO_REF lists actions nothing records: {MOVES_NO_REF - set(actions)}"


def test_the_events_that_move_refs_name_them_as_the_catalog_has_them(reg: Registry) -> None:
    """Commit, branch, tag, fast-forward and true merges: each event's ``moved_ref`` is the ref now at its snapshot."""
    reg.create_dataset("signs", "id")
    reg.commit("signs", pa.table({"id": [1, 2], "label": ["a", "b"]}))
    reg.branch("signs@fix")
    reg.commit("signs@fix", pa.table({"id": [3], "label": ["c"]}), mode="upsert")
    reg.merge("signs@fix")
    reg.commit("signs@fix", pa.table({"id": [4], "label": ["d"]}), mode="upsert")
    reg.commit("signs", pa.table({"id": [5], "label": ["e"]}), mode="upsert")
    reg.merge("signs@fix")
    reg.tag("signs@main", "v1")
    moved = [e for e in reg.audit_log(dataset="signs") if "moved_ref" in e.details]
    assert {e.action for e in moved} == {"snapshot.commit", "branch.create", "merge", "ref.tag"}
    assert {e.details["moved_ref"] for e in moved} == {"main", "fix", "v1"}
    assert {e.details.get("fast_forward") for e in moved if e.action == "merge"} == {True, False}
    assert reg.verify().ok


def test_events_written_before_moved_ref_still_replay() -> None:
    """A chain written before events carried ``moved_ref``: commits, merges and branches by ``details.ref``,
    tags by ``details.tag``; a read naming a ref moves nothing."""
    replay = _Replay()
    base = {"seq": 1, "time": "t", "actor": "a", "object_type": "ref", "object_id": "x", "dataset": "d"}
    for action, snapshot, details in (("snapshot.commit", "s1", {"ref": "main"}), ("ref.tag", "s1", {"tag": "v1"}),
                                      ("branch.create", "s1", {"ref": "dev"}), ("read.training", "s0", {"ref": "main"}),
                                      ("merge", "s2", {"ref": "main"})):
        replay.apply({**base, "action": action, "snapshot": snapshot, "details": details})
    assert {k: (v["snapshot"], v["kind"]) for k, v in replay.refs.items()} == {
        ("d", "main"): ("s2", "branch"), ("d", "v1"): ("s1", "tag"), ("d", "dev"): ("s1", "branch")}
