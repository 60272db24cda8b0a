"""Cross-checking the governance and lineage rows of the catalog against the audit chain (design invariant 5).

What the chain records of each (the writers' side of the contract, docs/security.md):

- a policy version: ``policy.set`` (``details.version``, ``policy_hash``, check names, ``maintainers``,
  ``document_sha256``);
- a gate result: ``gate.evaluate`` (object id the result's id; ``status``, ``policy_version``, ``policy_hash``,
  ``checks_sha256``, ``duration_ms``), or, for the result a merge stores, the merge's ``details.gate_result``;
- a waiver: ``gate.waive`` (object id the waiver's id; ``checks``, ``reason``, ``expires_at``);
- a pin: ``pin.create`` (object id the pin's id; the lockfile entry, ``lockfile`` and ``lineage_run_id``);
- lineage edges: a ``parent`` edge is a parent the child's commit or merge event names, a ``source`` edge a
  node of the commit's ``details.lineage_sources``, a ``read`` edge the ``lineage_run_id`` of a read or pin of
  that snapshot, ``consume``/``produce`` edges what the run's ``lineage.ingest`` event lists.

Rows are read by table name (these tables belong to the quality and lineage packages, which the audit does
not import). Facts an older event does not hold are not compared (the chain cannot judge them); every row
needs its event, and every event its row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from registry.audit.compare import compare, differs, time_problem

__all__ = ["check_governance", "read_governance"]

_TABLES = ("qa_policy", "gate_result", "gate_waiver", "dataset_pin", "lineage_edge")

Rows = dict[str, list[Mapping[str, Any]]]


def read_governance(session: Session) -> Rows:
    """Every row of the governance and lineage tables, as mappings of column to value."""
    return {table: [dict(r) for r in session.execute(text(f"SELECT * FROM {table}")).mappings().all()]
            for table in _TABLES}


def check_governance(replay: Any, rows: Rows, names: dict[int | None, str], wanted: Callable[[str], bool]
                     ) -> list[str]:
    """Every disagreement between these rows and ``replay`` (:class:`registry.audit.crosscheck._Replay`)."""
    problems: list[str] = []
    problems += _policies(replay, rows["qa_policy"], names, wanted)
    problems += _gate_results(replay, rows["gate_result"], names, wanted)
    problems += _waivers(replay, rows["gate_waiver"], names, wanted)
    problems += _pins(replay, rows["dataset_pin"], names, wanted)
    problems += _edges(replay, rows["lineage_edge"], wanted)
    return problems


def _sha(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else None


def _json(value: str | None) -> Any:
    try:
        return json.loads(value) if value is not None else None
    except ValueError:
        return value


def _policy_hash(checks: Any) -> str:
    """What :func:`registry.quality.policy_document.policy_hash` gives for ``checks``."""
    body = json.dumps({"format": 1, "checks": checks}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _owned(rows: list[Mapping[str, Any]], names: dict[int | None, str], wanted: Callable[[str], bool],
           problems: list[str], label: Callable[[Mapping[str, Any]], str]) -> list[tuple[Mapping[str, Any], str]]:
    owned = []
    for row in rows:
        dataset = names.get(row["dataset_id"])
        if dataset is None:
            problems.append(f"{label(row)} belongs to no dataset (dataset_id {row['dataset_id']})")
        elif wanted(dataset):
            owned.append((row, dataset))
    return owned


def _with_events(rows: list[Mapping[str, Any]], names: dict[int | None, str], wanted: Callable[[str], bool],
                 problems: list[str], present: set[Any], events: dict[Any, dict[str, Any]], action: str,
                 key: Callable[[Mapping[str, Any], str], Any], describe: Callable[[Mapping[str, Any], str], str],
                 label: Callable[[Mapping[str, Any]], str],
                 unjudged: Callable[[Mapping[str, Any]], bool] = lambda _row: False,
                 ) -> Iterator[tuple[Mapping[str, Any], str, str, dict[str, Any]]]:
    """Each owned row (added to ``present`` by ``key``) with its dataset, its description and the ``action``
    event that recorded it; a row without one is a problem, unless ``unjudged`` says the chain cannot tell."""
    for row, dataset in _owned(rows, names, wanted, problems, label):
        present.add(key(row, dataset))
        what = describe(row, dataset)
        event = events.get(key(row, dataset))
        if event is None:
            if not unjudged(row):
                problems.append(f"{what} has no {action} event in the audit chain (written outside the registry)")
            continue
        yield row, dataset, what, event


def _of_snapshot(kind: str) -> Callable[[Mapping[str, Any], str], str]:
    return lambda row, dataset: f"{kind} {row['id']} of {dataset}@{str(row['snapshot_id'])[:12]}"


def _by_id(row: Mapping[str, Any], _dataset: str) -> Any:
    return row["id"]


def _missing(kind: str, recorded: dict[Any, dict[str, Any]], present: set[Any], wanted: Callable[[str], bool],
             label: Callable[[Any, dict[str, Any]], str]) -> list[str]:
    return [f"{kind} {label(key, e)} recorded by the audit chain (event {e['seq']}) is missing from the catalog"
            for key, e in recorded.items() if key not in present and wanted(e["dataset"] or "")]


def _policies(replay: Any, rows: list[Mapping[str, Any]], names: dict[int | None, str],
              wanted: Callable[[str], bool]) -> list[str]:
    problems: list[str] = []
    present: set[Any] = set()
    for row, _dataset, what, event in _with_events(
            rows, names, wanted, problems, present, replay.policies, "policy.set",
            lambda r, d: (d, r["version"]), lambda r, d: f"policy {d}#{r['version']}",
            lambda r: f"policy #{r['version']}"):
        details = event["details"]
        checks = _json(row["checks"])
        problems += compare(what, event, row["created_at"], (
            ("policy_hash", row["policy_hash"], details.get("policy_hash")),
            ("checks", [c.get("name") for c in checks] if isinstance(checks, list) and
             all(isinstance(c, dict) for c in checks) else checks, details.get("checks")),
            ("maintainers", _json(row["maintainers"]), details.get("maintainers")),
            ("created_by", row["created_by"], event["actor"])))
        if isinstance(checks, list) and _policy_hash(checks) != row["policy_hash"]:
            problems.append(f"{what}: checks do not hash to its policy_hash {str(row['policy_hash'])[:12]}")
        if "document_sha256" in details and _sha(row["document"]) != details["document_sha256"]:
            problems.append(f"{what}: document is not the one the audit chain recorded (its SHA-256 is "
                            f"{str(_sha(row['document']))[:12]}, the chain has {str(details['document_sha256'])[:12]})")
    problems += _missing("policy", replay.policies, present, wanted, lambda key, _e: f"{key[0]}#{key[1]}")
    return problems


def _gate_results(replay: Any, rows: list[Mapping[str, Any]], names: dict[int | None, str],
                  wanted: Callable[[str], bool]) -> list[str]:
    problems: list[str] = []
    present: set[Any] = set()
    for row, dataset, what, event in _with_events(
            rows, names, wanted, problems, present, replay.gate_results, "gate.evaluate", _by_id,
            _of_snapshot("gate result"), lambda r: f"gate result {r['id']}",
            # stored by a merge whose event predates details.gate_result: the chain cannot judge it
            unjudged=lambda r: r["snapshot_id"] in replay.unrecorded_merge_gates):
        details = event["details"]
        columns: list[tuple[str, object, object]] = [
            ("dataset", dataset, event["dataset"]), ("snapshot_id", row["snapshot_id"], event["snapshot"]),
            ("status", row["status"], details.get("status")),
            ("policy_version", row["policy_version"], details.get("policy_version")),
            ("policy_hash", row["policy_hash"], details.get("policy_hash")),
            ("created_by", row["created_by"], event["actor"])]
        if "checks_sha256" in details:
            columns.append(("checks (SHA-256)", _sha(row["checks"]), details["checks_sha256"]))
        elif "failed" in details:  # an event from before checks_sha256: the failed checks' names
            outcomes = _json(row["checks"])
            failed = [o.get("name") for o in outcomes if isinstance(o, dict) and not o.get("passed")
                      and o.get("severity") == "error"] if isinstance(outcomes, list) else outcomes
            columns.append(("failed checks", failed, details["failed"]))
        if "duration_ms" in details:
            columns.append(("duration_ms", row["duration_ms"], details["duration_ms"]))
        problems += compare(what, event, row["created_at"], tuple(columns))
    problems += _missing("gate result", replay.gate_results, present, wanted, lambda key, _e: str(key))
    return problems


def _waivers(replay: Any, rows: list[Mapping[str, Any]], names: dict[int | None, str],
             wanted: Callable[[str], bool]) -> list[str]:
    problems: list[str] = []
    present: set[Any] = set()
    for row, dataset, what, event in _with_events(
            rows, names, wanted, problems, present, replay.waivers, "gate.waive", _by_id, _of_snapshot("waiver"),
            lambda r: f"waiver {r['id']}"):
        details = event["details"]
        problems += compare(what, event, row["created_at"], (
            ("dataset", dataset, event["dataset"]), ("snapshot_id", row["snapshot_id"], event["snapshot"]),
            ("checks", _json(row["checks"]), details.get("checks")),
            ("reason", row["reason"], details.get("reason")),
            ("expires_at", row["expires_at"], details.get("expires_at")),
            ("created_by", row["created_by"], event["actor"])))
    problems += _missing("waiver", replay.waivers, present, wanted, lambda key, _e: str(key))
    return problems


def _pins(replay: Any, rows: list[Mapping[str, Any]], names: dict[int | None, str],
          wanted: Callable[[str], bool]) -> list[str]:
    problems: list[str] = []
    present: set[Any] = set()
    for row, dataset, what, event in _with_events(
            rows, names, wanted, problems, present, replay.pins, "pin.create", _by_id, _of_snapshot("pin"),
            lambda r: f"pin {r['id']}"):
        details = event["details"]
        columns = tuple((column, row[column], details.get(key)) for column, key in (
            ("requested_ref", "ref"), ("job", "job"), ("content_hash", "content_hash"),
            ("gate_result_id", "gate_result_id"), ("waiver_id", "waiver_id"), ("lockfile", "lockfile"),
            ("pinned_at", "pinned_at")) if key in details)
        problems += [differs(what, column, ours, theirs) for column, ours, theirs in (
            ("dataset", dataset, event["dataset"]), ("snapshot_id", row["snapshot_id"], event["snapshot"]),
            ("pinned_by", row["pinned_by"], event["actor"]), *columns) if ours != theirs]
        late = time_problem(what, "pinned_at", row["pinned_at"], event)
        if late:
            problems.append(late)
    problems += _missing("pin", replay.pins, present, wanted, lambda key, _e: str(key))
    return problems


def _node_key(row: Mapping[str, Any], side: str) -> str:
    """What :attr:`registry.lineage.graph.Node.key` gives for one end of an edge row."""
    kind, name, version, namespace = (row[f"{side}_{c}"] for c in ("kind", "name", "version", "namespace"))
    if kind == "snapshot":
        return f"{name}@{version}"
    if kind == "run":
        return f"{namespace}/{name}#{version}"
    return f"{namespace}:{name}" + (f"@{version}" if version else "")


def _edges(replay: Any, rows: list[Mapping[str, Any]], wanted: Callable[[str], bool]) -> list[str]:
    problems = []
    for row in rows:
        kind, src, dst = row["kind"], _node_key(row, "src"), _node_key(row, "dst")
        snapshot_end = "dst" if kind in ("parent", "source", "produce") else "src"
        if row[f"{snapshot_end}_kind"] == "snapshot" and not wanted(row[f"{snapshot_end}_name"]):
            continue
        what = f"lineage edge {kind} {src} -> {dst}"
        foreign = [side for side in ("src", "dst") if row[f"{side}_kind"] == "snapshot" and row[f"{side}_namespace"]]
        if foreign:
            problems.append(f"{what}: {foreign[0]}_namespace is {row[foreign[0] + '_namespace']!r}, but this "
                            "registry's snapshots have none")
            continue
        problem, event = _edge_problem(replay, row, kind, src, dst)
        if problem:
            problems.append(f"{what}: {problem}")
        elif event is not None:
            late = time_problem(what, "created_at", row["created_at"], event)
            if late:
                problems.append(late)
    return problems


def _edge_problem(replay: Any, row: Mapping[str, Any], kind: str, src: str, dst: str
                  ) -> tuple[str | None, dict[str, Any] | None]:
    """Why the chain contradicts one edge (None: it agrees, or holds nothing to judge it by), and the event
    that recorded it."""
    if kind in ("parent", "source"):
        event = replay.snapshots.get(row["dst_version"]) if row["dst_kind"] == "snapshot" else None
        if event is None:
            return "its snapshot has no commit event in the audit chain", None
        details = event["details"]
        if event["dataset"] != row["dst_name"]:
            return f"the audit chain records that snapshot in dataset {event['dataset']!r}", None
        if kind == "parent":
            parents = details.get("parents") if isinstance(details.get("parents"), list) else [details.get("parent")]
            same_dataset = (row["src_kind"], row["src_name"]) == ("snapshot", event["dataset"])
            if not same_dataset or row["src_version"] not in parents:
                return f"the audit chain records no such parent (event {event['seq']})", None
        elif isinstance(details.get("lineage_sources"), list) and src not in details["lineage_sources"]:
            return f"the audit chain records no such source of that commit (event {event['seq']})", None
        return None, event
    if kind == "read":
        runs = replay.reads.get(row["src_version"]) if row["src_kind"] == "snapshot" else None
        if not runs:
            return "the audit chain records no training read or pin of that snapshot", None
        if row["dst_kind"] == "run" and row["dst_version"] in runs:
            return None, runs[row["dst_version"]]
        if None in runs:
            return None, None  # reads recorded before their run ids were: the chain cannot judge it
        return "the audit chain records no read of that snapshot by that run", None
    if kind in ("consume", "produce"):
        key = src if kind == "consume" else dst
        for event in replay.ingests.get(row["run_id"], []):
            if key in (event["details"].get("consumed" if kind == "consume" else "produced") or []):
                return None, event
        return f"no lineage.ingest event of run {row['run_id']!r} lists it", None
    return f"unknown edge kind {kind!r}", None
