"""Whether a snapshot's gate passes now, read from the catalog (see :mod:`registry.quality.verdict` for
the rule). :func:`gate_status` reads inside the caller's SQLModel transaction (pin, load, qa run);
:func:`check_gate` answers on its own, by the plain queries of :mod:`registry.quality.gate_sql` when
it can (the API and ``registry gate check`` ask often), else through SQLModel."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from registry import catalog
from registry.db import read_connection, transaction
from registry.models import DatasetRow, SnapshotRow
from registry.quality.gate_sql import gate_status_from_sql
from registry.quality.store import current_policy, latest_result, valid_waivers
from registry.quality.verdict import GateState, GateStatus, decide
from registry.refs import Ref
from registry.timeutil import utc_now

__all__ = ["GateState", "GateStatus", "check_gate", "check_gate_sqlmodel", "gate_status"]


def gate_status(session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> GateStatus:
    """The gate of ``snapshot`` now, read in the caller's transaction."""
    policy = current_policy(session, dataset)
    result = latest_result(session, snapshot.id, policy.policy_hash) if policy else None
    return decide(dataset.name, snapshot.id, policy, result, valid_waivers(session, snapshot.id, utc_now()),
                  lambda: latest_result(session, snapshot.id) is not None)


def check_gate(engine: Engine, ref: Ref | str) -> GateStatus:
    """The gate of the snapshot ``NAME@REF`` names (read-only).

    Branches, tags and full ids are answered by plain Core queries (CI pipelines and the API ask this
    often); anything else goes through the ORM, which also raises the proper error.

    Raises:
        InvalidName: a string that is no ref. NotFound: unknown dataset or ref.
        AmbiguousRef: an id prefix matches several snapshots.
    """
    ref = Ref.coerce(ref)
    with read_connection(engine) as connection:
        status = gate_status_from_sql(lambda sql, params: connection.execute(text(sql), params).all(), ref)
    return status if status is not None else check_gate_sqlmodel(engine, ref)


def check_gate_sqlmodel(engine: Engine, ref: Ref | str) -> GateStatus:
    """:func:`check_gate` through SQLModel alone: every ref form, and the proper error for a bad one.

    Raises:
        InvalidName: a string that is no ref. NotFound: unknown dataset or ref.
        AmbiguousRef: an id prefix matches several snapshots.
    """
    with transaction(engine, readonly=True) as session:
        return gate_status(session, *catalog.resolve_ref(session, ref))
