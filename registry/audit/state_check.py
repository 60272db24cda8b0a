"""Cross-checking branch protection and the labeling-tool sync state against the audit chain (design
invariant 5).

What the chain records of each (the writers' side of the contract, docs/security.md):

- a protection: ``branch.protect`` (``details.branch``, ``details.protected``); the row is created by the
  first ``protected: true`` after none (its ``created_at`` and ``created_by`` are that event's), removed by
  ``protected: false`` or ``branch.delete`` of the branch;
- a sync's resume point: ``sync.state`` (object id the dataset; ``details`` every column of the
  ``label_sync`` row but the hook secret's hash), written in the transaction that saves the row;
- the lineage namespace: ``lineage.namespace`` (``details.namespace``), once;
- a registered webhook: ``sync.hook`` (``details.hook_secret_sha256``; ``sync.state`` records it too).

A ``label_sync`` row of a dataset synced before ``sync.state`` events existed (the chain holds its
``snapshot.sync`` events and no ``sync.state``) cannot be judged; every other row needs its event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from registry.audit.compare import compare, differs, time_problem

__all__ = ["SYNC_STATE_COLUMNS", "StateReplay", "check_state", "read_state"]

_TABLES = ("branch_protection", "label_sync", "lineage_namespace")

SYNC_STATE_COLUMNS = ("tool", "server_url", "project_id", "key_field", "guideline_version", "last_updated_at",
                      "last_snapshot_id", "state_sha256", "tasks", "annotations", "synced_at")
"""The ``label_sync`` columns a ``sync.state`` event records (``details``), by name."""

Rows = dict[str, list[Mapping[str, Any]]]


class StateReplay:
    """What the chain says of protections and sync state."""

    def __init__(self) -> None:
        self.protections: dict[tuple[str, str], dict[str, Any]] = {}
        """(dataset, branch) -> the event that protected it (still protected)."""
        self.sync_states: dict[str, dict[str, Any]] = {}
        """Dataset -> its latest ``sync.state`` event."""
        self.hook_secrets: dict[str, tuple[object, dict[str, Any]]] = {}
        """Dataset -> the hook secret's SHA-256 its latest ``sync.hook`` or ``sync.state`` event recorded."""
        self.namespace: dict[str, Any] | None = None
        """The ``lineage.namespace`` event (the namespace never changes)."""
        self.legacy_syncs: set[str] = set()
        """Datasets with ``snapshot.sync`` events and (so far) no ``sync.state`` event."""

    def apply(self, event: dict[str, Any]) -> None:
        action, details, dataset = event["action"], event["details"], event["dataset"]
        if action == "lineage.namespace" and self.namespace is None:
            self.namespace = event
        if not dataset:
            return
        branch = details.get("branch")
        if action == "branch.protect" and isinstance(branch, str):
            if details.get("protected") is True:
                self.protections.setdefault((dataset, branch), event)
            else:
                self.protections.pop((dataset, branch), None)
        elif action == "branch.delete" and isinstance(branch, str):
            self.protections.pop((dataset, branch), None)
        elif action == "sync.state":
            self.sync_states[dataset] = event
            self.legacy_syncs.discard(dataset)
            if "hook_secret_sha256" in details:
                self.hook_secrets[dataset] = (details["hook_secret_sha256"], event)
        elif action == "sync.hook":
            self.hook_secrets[dataset] = (details.get("hook_secret_sha256"), event)
        elif action == "snapshot.sync" and dataset not in self.sync_states:
            self.legacy_syncs.add(dataset)


def read_state(session: Session) -> Rows:
    """Every row of the protection and sync-state tables, as mappings of column to value."""
    return {table: [dict(r) for r in session.execute(text(f"SELECT * FROM {table}")).mappings().all()]
            for table in _TABLES}


def check_state(replay: StateReplay, rows: Rows, names: dict[int | None, str], wanted: Callable[[str], bool]
                ) -> list[str]:
    """Every disagreement between these rows and ``replay``, naming the table, the row and the column."""
    return _protections(replay, rows["branch_protection"], names, wanted) + \
        _syncs(replay, rows["label_sync"], names, wanted) + _namespace(replay, rows["lineage_namespace"])


def _namespace(replay: StateReplay, rows: list[Mapping[str, Any]]) -> list[str]:
    """The namespace row against the event that fixed it (a home whose row predates the event: unjudged)."""
    event = replay.namespace
    if event is None:
        return []
    if not rows:
        return [f"lineage_namespace recorded by the audit chain (event {event['seq']}) is missing from the catalog"]
    problems = []
    for row in rows:
        what = f"lineage_namespace row {row['id']}"
        problems += compare(what, event, row["fixed_at"], (("namespace", row["namespace"],
                                                            event["details"].get("namespace")),
                                                           ("id", row["id"], 1)))
    return [p.replace(": created_at is", ": fixed_at is") for p in problems]


def _protections(replay: StateReplay, rows: list[Mapping[str, Any]], names: dict[int | None, str],
                 wanted: Callable[[str], bool]) -> list[str]:
    problems: list[str] = []
    present = set()
    for row in rows:
        dataset = names.get(row["dataset_id"])
        if dataset is None:
            problems.append(f"branch_protection of branch {row['branch']!r} belongs to no dataset "
                            f"(dataset_id {row['dataset_id']})")
            continue
        if not wanted(dataset):
            continue
        present.add((dataset, row["branch"]))
        what = f"branch_protection {dataset}@{row['branch']}"
        event = replay.protections.get((dataset, row["branch"]))
        if event is None:
            problems.append(f"{what} has no branch.protect event in the audit chain that protected it "
                            "(protected outside the registry)")
            continue
        problems += compare(what, event, row["created_at"], (("created_by", row["created_by"], event["actor"]),))
    problems += [f"branch_protection {d}@{b} recorded by the audit chain (event {e['seq']}) is missing from the "
                 "catalog (the branch was unprotected outside the registry)"
                 for (d, b), e in replay.protections.items() if wanted(d) and (d, b) not in present]
    return problems


def _syncs(replay: StateReplay, rows: list[Mapping[str, Any]], names: dict[int | None, str],
           wanted: Callable[[str], bool]) -> list[str]:
    problems: list[str] = []
    for row in rows:
        dataset = names.get(row["dataset_id"])
        if dataset is None:
            problems.append(f"label_sync row belongs to no dataset (dataset_id {row['dataset_id']})")
            continue
        if not wanted(dataset):
            continue
        what = f"label_sync {dataset}"
        event = replay.sync_states.get(dataset)
        if event is None:
            if dataset not in replay.legacy_syncs:
                problems.append(f"{what} has no sync.state event in the audit chain (written outside the registry)")
            continue
        details = event["details"]
        problems += [differs(what, column, row[column], details[column]) for column in SYNC_STATE_COLUMNS
                     if column in details and row[column] != details[column]]
        late = time_problem(what, "synced_at", row["synced_at"], event)
        if late:
            problems.append(late)
        if dataset in replay.hook_secrets:
            recorded, _hook = replay.hook_secrets[dataset]
            if row["hook_secret_sha256"] != recorded:
                problems.append(differs(what, "hook_secret_sha256", row["hook_secret_sha256"], recorded))
    return problems
