"""The resume point of a dataset's Label Studio sync, kept in the catalog (``label_sync``) with a
content-addressed object listing, per task id, the sample key it became and the ``updated_at`` it
had when last committed. A sync compares the server's task versions with this list to find what
changed, and saves the new list only after its snapshot is committed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlmodel import Session

from registry import catalog
from registry.audit import log as audit
from registry.audit.state_check import SYNC_STATE_COLUMNS
from registry.context import Context
from registry.db import transaction
from registry.errors import Hint, InvalidInput, NotFound
from registry.sync.models import LabelSyncRow
from registry.timeutil import utc_now

__all__ = ["SyncState", "load_state", "save_state", "sync_row"]

TaskVersions = dict[int, tuple[str, str]]
"""Task id -> (sample key, updated_at)."""


@dataclass
class SyncState:
    """Where a dataset syncs from and what its last committed sync saw."""

    url: str
    project: int
    key: str | None
    guideline_version: str | None = None
    tasks: TaskVersions = field(default_factory=dict)
    last_updated_at: str | None = None
    last_snapshot_id: str | None = None
    hook_secret_sha256: str | None = None
    exists: bool = False


def sync_row(session: Session, name: str) -> LabelSyncRow | None:
    """The sync row of dataset ``name`` (None when the dataset or its sync does not exist)."""
    try:
        dataset = catalog.get_dataset(session, name)
    except NotFound:
        return None
    return session.get(LabelSyncRow, dataset.id)


def load_state(ctx: Context, name: str, url: str, project: int, key: str | None) -> SyncState:
    """The saved state of ``name``'s sync, or a fresh one; the source must be the one saved.

    Raises:
        InvalidInput: the dataset already syncs from another server, project or key field.
    """
    with transaction(ctx.engine, readonly=True) as session:
        row = sync_row(session, name)
    if row is None:
        return SyncState(url, project, key)
    if (row.server_url, row.project_id) != (url, project):
        raise InvalidInput(f"{name} syncs from project {row.project_id} at {row.server_url}, not project {project} "
                           f"at {url}; sync into another dataset")
    if key is not None and key != row.key_field:
        fix = "sync with that key field or without one" if row.key_field else "sync without a key field"
        raise InvalidInput(f"{name} syncs keyed by {row.key_field or 'the task id'}; {fix}",
                           hint=Hint("option", "key", row.key_field) if row.key_field else None)
    tasks: TaskVersions = {}
    if row.state_sha256:
        raw = json.loads(ctx.store.read_bytes(row.state_sha256))
        tasks = {int(k): (str(v[0]), str(v[1])) for k, v in raw.items()}
    return SyncState(url, project, row.key_field, row.guideline_version, tasks, row.last_updated_at,
                     row.last_snapshot_id, row.hook_secret_sha256, exists=True)


def save_state(ctx: Context, name: str, state: SyncState, *, annotations: int | None = None,
               actor: str | None = None) -> None:
    """Write ``state`` as ``name``'s resume point (the task list as an object, the rest in the row), and a
    ``sync.state`` audit event recording the row in the same transaction (``verify`` cross-checks it)."""
    blob = json.dumps({str(k): list(v) for k, v in sorted(state.tasks.items())}, separators=(",", ":")).encode()
    sha = ctx.store.put_bytes(blob).sha256
    with transaction(ctx.engine) as session:
        dataset_id = catalog.get_dataset(session, name).id
        assert dataset_id is not None
        row = session.get(LabelSyncRow, dataset_id) or LabelSyncRow(dataset_id=dataset_id, server_url=state.url,
                                                                    project_id=state.project)
        row.key_field, row.state_sha256, row.tasks = state.key, sha, len(state.tasks)
        row.guideline_version = state.guideline_version
        row.last_updated_at, row.last_snapshot_id = state.last_updated_at, state.last_snapshot_id
        if annotations is not None:
            row.annotations = annotations
        row.synced_at = utc_now()
        session.add(row)
        session.flush()
        audit.record(session, ctx, "sync.state", "dataset", name, dataset=name, actor=actor,
                     details={**{c: getattr(row, c) for c in SYNC_STATE_COLUMNS},
                              "hook_secret_sha256": row.hook_secret_sha256})
