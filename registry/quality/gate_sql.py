"""The gate of a snapshot from a few plain SQL queries over the catalog tables, through any driver.

The standard library's ``sqlite3`` (``registry gate check``'s fast path in
:mod:`registry.quality.gatecheck`) and SQLAlchemy Core (:func:`registry.quality.gate.check_gate`)
both run it; it imports neither, so the fast path stays free of SQLAlchemy and the two gate modules
do not import each other.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from registry.errors import InvalidName
from registry.quality.verdict import GateStatus, decide
from registry.refs import Ref
from registry.timeutil import utc_now

__all__ = ["Rows", "gate_status_from_sql"]

_FULL_ID = re.compile(r"^[0-9a-f]{64}$")
_Policy = namedtuple("_Policy", "version policy_hash")
_Result = namedtuple("_Result", "id created_at status checks")
_Waiver = namedtuple("_Waiver", "id checks reason expires_at created_by created_at")


Rows = Callable[[str, dict[str, object]], Sequence[Sequence[Any]]]
"""Runs one SQL query with ``:name`` parameters and returns its rows (sqlite3 and SQLAlchemy Core both can)."""


def gate_status_from_sql(rows: Rows, ref: Ref | str) -> GateStatus | None:
    """The gate of ``NAME[@BRANCH|@TAG|@FULL_ID]`` from a few plain queries over the catalog tables, or None
    when this path cannot answer (bad or unknown names, ``REF~N``, id prefixes: the ORM path says which error)."""
    try:
        parsed = Ref.coerce(ref)
    except InvalidName:
        return None
    if parsed.kind == "ancestor":
        return None
    name, at = parsed.dataset, parsed.ref_name
    dataset = rows("SELECT id FROM dataset WHERE name = :name", {"name": name})
    if not dataset:
        return None
    dataset_id = dataset[0][0]
    named = rows("SELECT snapshot_id FROM ref WHERE dataset_id = :dataset AND name = :ref",
                 {"dataset": dataset_id, "ref": at})
    if not named and _FULL_ID.fullmatch(at):
        named = rows("SELECT id FROM snapshot WHERE dataset_id = :dataset AND id = :id",
                     {"dataset": dataset_id, "id": at})
    if not named:
        return None
    snapshot_id = named[0][0]
    found = rows("SELECT version, policy_hash FROM qa_policy WHERE dataset_id = :dataset ORDER BY version DESC LIMIT 1",
                 {"dataset": dataset_id})
    policy = _Policy(*found[0]) if found else None
    result = None
    if policy is not None:
        found = rows("SELECT id, created_at, status, checks FROM gate_result WHERE snapshot_id = :snapshot AND "
                     "policy_hash = :policy ORDER BY created_at DESC, id LIMIT 1",
                     {"snapshot": snapshot_id, "policy": policy.policy_hash})
        result = _Result(*found[0]) if found else None
    waivers = [_Waiver(*w) for w in rows(
        "SELECT id, checks, reason, expires_at, created_by, created_at FROM gate_waiver WHERE snapshot_id = :snapshot "
        "AND (expires_at IS NULL OR expires_at > :now) ORDER BY created_at DESC", {"snapshot": snapshot_id,
                                                                                  "now": utc_now()})]
    older = rows("SELECT 1 FROM gate_result WHERE snapshot_id = :snapshot LIMIT 1", {"snapshot": snapshot_id})
    return decide(name, snapshot_id, policy, result, waivers, lambda: bool(older))
