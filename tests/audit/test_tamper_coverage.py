"""Every column of every catalog table (from the SQLModel metadata) is either tamper-tested against `verify` /
`audit verify`, or listed here as not security-relevant with the reason: a column added later without either
fails this test, so it cannot slip by the tamper suite (issue 22)."""

from __future__ import annotations

from registry.metadata import metadata
from tests.audit import test_tamper_catalog, test_tamper_governance, test_tamper_state

_CHAIN = "the audit chain itself: every column is hashed into the event's hash, and `audit verify` names a " \
         "modified, inserted, deleted or reordered event (tests/audit/test_audit_tamper.py)"
_HEAD = "the chain head: `audit verify` compares the chain's last event with it and names a truncated tail or an " \
        "event beyond it (tests/audit/test_audit_tamper.py)"
_SEGMENT = "a sealed segment's index row: `audit verify` re-reads and re-hashes the segment it names and checks its " \
           "range against the events (tests/audit/test_audit_tamper.py, modified/missing/deleted segment cases)"

AUDIT_VERIFIED: dict[tuple[str, str], str] = {
    **{("audit_event", c): _CHAIN for c in ("seq", "event_id", "time", "actor", "actor_kind", "action", "object_type",
                                            "object_id", "dataset", "snapshot", "details", "client", "prev_hash",
                                            "hash")},
    **{("audit_head", c): _HEAD for c in ("id", "seq", "hash", "sealed_seq")},
    **{("audit_segment", c): _SEGMENT for c in ("sha256", "first_seq", "last_seq", "first_prev_hash", "last_hash",
                                                "events", "bytes", "created_at")},
}
"""Columns the chain's own verification (`audit verify`) covers."""

_CONFLICT = "a report of the latest refused merge (the `merge_conflicts` view), replaced by the next attempt and " \
            "cleared by a merge that lands; a merge recomputes its conflicts from the snapshots and never reads it"
_SYNC_LEASE = "a lease that keeps two processes from syncing one dataset at once; an edited lease delays a sync or " \
              "lets two race, and the loser's commit fails its compare-and-swap (invariant 3), so no data or " \
              "permission depends on it"
_OUTBOX = "the delivery queue of OpenLineage events to an external backend (invariant 9): its state says only " \
          "whether an event was sent; the graph the registry answers with is `lineage_edge`, cross-checked"
_LINEAGE_LEASE = "which process delivers the outbox, until when: an edited lease delays delivery, nothing else"
_DENIED = "the per-token window of the request.denied throttle: an edit changes only how many refusals are " \
          "recorded individually versus counted (each recorded event carries the count); the refused requests " \
          "themselves are refused regardless"

NOT_SECURITY_RELEVANT: dict[tuple[str, str], str] = {
    **{("merge_conflict", c): _CONFLICT for c in (
        "id", "dataset_id", "source", "target", "source_snapshot", "target_snapshot", "base_snapshot", "key",
        "column_name", "kind", "base", "ours", "theirs", "ours_annotator", "ours_labeled_at", "ours_guideline",
        "theirs_annotator", "theirs_labeled_at", "theirs_guideline", "recorded_at")},
    **{("sync_lease", c): _SYNC_LEASE for c in ("dataset", "owner", "expires_at")},
    **{("lineage_outbox", c): _OUTBOX for c in (
        "id", "run_id", "event_type", "job_namespace", "job_name", "payload", "status", "attempts", "last_error",
        "created_at", "next_attempt_at", "last_attempt_at", "delivered_at")},
    **{("lineage_lease", c): _LINEAGE_LEASE for c in ("id", "owner", "expires_at")},
    **{("denied_window", c): _DENIED for c in ("key", "window_started", "suppressed")},
}
"""Columns no security property rests on, each with the reason."""


def _tamper_tested() -> set[tuple[str, str]]:
    return set(test_tamper_catalog.CASES) | set(test_tamper_governance.CASES) | set(test_tamper_state.CASES)


def test_every_catalog_column_is_tamper_tested_or_explained() -> None:
    every = {(table.name, column.name) for table in metadata.sorted_tables for column in table.columns}
    tested = _tamper_tested()
    explained = set(AUDIT_VERIFIED) | set(NOT_SECURITY_RELEVANT)
    assert not tested & set(NOT_SECURITY_RELEVANT), "a column is both tamper-tested and called irrelevant"
    uncovered = sorted(every - tested - explained)
    assert not uncovered, f"columns neither tamper-tested nor listed as not security-relevant: {uncovered}"
    stale = sorted((tested | explained) - every)
    assert not stale, f"cases or reasons for columns that no longer exist: {stale}"
    assert all(len(reason) > 40 for reason in NOT_SECURITY_RELEVANT.values())


def test_every_ref_kind_is_tamper_tested() -> None:
    """Branches (main and others) and tags: moved, added and deleted."""
    attacks = test_tamper_catalog.REF_ATTACKS
    assert {"main rolled back", "tag deleted", "tag added", "branch added"} <= set(attacks)
    assert ("ref", "snapshot_id") in test_tamper_catalog.CASES
