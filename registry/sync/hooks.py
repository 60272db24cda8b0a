"""Label Studio webhooks: the per-dataset secret, registering the hook, and the runner that turns a
burst of events into as few syncs as needed, never two at once for one dataset.

Coalescing (the exactly-once argument, ``docs/labeling-loop.md``): each dataset has at most one sync
thread. An event while none runs starts one; an event while one runs only sets ``pending``. The thread
loops while ``pending`` was set after its last sync began, so every event is followed by at least one
sync that started after it (nothing is missed) and a burst of N events costs at most two syncs.
Across processes (several ``registry serve`` workers) the catalog's sync lease (:mod:`.lease`) keeps
one sync at a time: a runner that finds it held waits and syncs after the holder, so the argument holds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from registry import catalog
from registry.audit import log as audit
from registry.context import Context
from registry.db import transaction
from registry.errors import Conflict, Hint, InvalidInput, NotFound, RegistryError, Unauthenticated
from registry.sync.client import LabelStudioClient, check_url
from registry.sync.models import LabelSyncRow
from registry.sync.service import sync_label_studio
from registry.sync.state import sync_row

__all__ = ["HOOK_ACTIONS", "SECRET_HEADER", "HookRunner", "WebhookInfo", "check_secret", "hook_path",
           "register_webhook", "sync_from_row"]

SECRET_HEADER = "X-Registry-Hook-Secret"
HOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED",
                "TASKS_CREATED", "TASKS_DELETED")
_log = logging.getLogger(__name__)


def hook_path(name: str) -> str:
    return f"/api/v1/hooks/label-studio/{name}"


@dataclass(frozen=True)
class WebhookInfo:
    """A Label Studio webhook registered for a dataset: the URL it calls and the project it watches (the
    secret it sends is never returned; only its SHA-256 is kept)."""

    webhook: str
    project: int

    def to_dict(self) -> dict[str, object]:
        return {"webhook": self.webhook, "project": self.project}


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_webhook(ctx: Context, name: str, client: LabelStudioClient, project: int, registry_url: str) -> str:
    """Create the webhook of project ``project`` that calls this registry at ``registry_url`` for
    dataset ``name``; a new secret replaces the old one (only its SHA-256 is kept). Returns the hook URL.

    Raises:
        NotFound: ``name`` has never been synced (sync once first, so the hook has a source).
        UpstreamError: Label Studio refused the webhook.
    """
    base = check_url(registry_url)
    url = base if "/hooks/label-studio/" in base else base + hook_path(name)
    with transaction(ctx.engine, readonly=True) as session:
        if sync_row(session, name) is None:
            raise NotFound(f"{name} has no Label Studio sync yet; run a sync without registering a webhook first",
                           hint=Hint("command", "sync label-studio"))
    secret = secrets.token_urlsafe(32)
    client.call("POST", "/api/webhooks/", body={
        "project": project, "url": url, "send_payload": True, "send_for_all_actions": False,
        "headers": {SECRET_HEADER: secret}, "is_active": True, "actions": list(HOOK_ACTIONS)})
    with transaction(ctx.engine) as session:
        row = session.get(LabelSyncRow, catalog.get_dataset(session, name).id)
        assert row is not None
        row.hook_secret_sha256 = _sha(secret)
        session.add(row)
        session.flush()
        audit.record(session, ctx, "sync.hook", "dataset", name, dataset=name,
                     details={"url": url, "hook_secret_sha256": row.hook_secret_sha256})  # verify checks it
    return url


def check_secret(ctx: Context, name: str, secret: str | None) -> LabelSyncRow:
    """The sync row of ``name`` if ``secret`` is its hook secret.

    Raises:
        Unauthenticated: no secret, a wrong one, or no hook registered for ``name`` (the same answer,
            so a caller learns nothing about which datasets exist).
    """
    with transaction(ctx.engine, readonly=True) as session:
        row = sync_row(session, name)
    expected = row.hook_secret_sha256 if row is not None else None
    if not secret or expected is None or not hmac.compare_digest(_sha(secret), expected):
        raise Unauthenticated(f"missing or wrong {SECRET_HEADER} for the Label Studio hook of {name}")
    return row  # type: ignore[return-value]


@dataclass
class _Slot:
    running: bool = False
    pending: bool = False
    runs: int = 0
    last_error: str | None = None
    idle: threading.Event = field(default_factory=threading.Event)


class HookRunner:
    """Runs ``sync(name)`` in a background thread per dataset, coalescing requests (see the module doc)."""

    def __init__(self, sync: Callable[[str], object], busy_wait: float = 1.0) -> None:
        self._sync = sync
        self.busy_wait = busy_wait
        """Seconds to wait before syncing again when another process held the dataset's sync lease."""
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}

    def request(self, name: str) -> str:
        """Ask for a sync of ``name``: ``started`` a thread, or ``queued`` behind the running one."""
        with self._lock:
            slot = self._slots.setdefault(name, _Slot())
            if slot.running:
                slot.pending = True
                return "queued"
            slot.running, slot.pending = True, False
            slot.idle.clear()
        threading.Thread(target=self._loop, args=(name, slot), name=f"hook-sync-{name}", daemon=True).start()
        return "started"

    def _loop(self, name: str, slot: _Slot) -> None:
        while True:
            try:
                self._sync(name)
                slot.last_error = None
            except Conflict as exc:  # another process syncs it now (or moved it): sync again after that one
                slot.last_error = exc.message
                time.sleep(self.busy_wait)
                with self._lock:
                    slot.pending = True
            except RegistryError as exc:  # logged; the next event (or a manual sync) resumes
                slot.last_error = exc.message
                _log.warning("hook sync of %s failed: %s", name, slot.last_error)
            except Exception:  # noqa: BLE001 - a background thread must not die silently
                slot.last_error = "internal error"
                _log.exception("hook sync of %s failed", name)
            with self._lock:
                slot.runs += 1
                if not slot.pending:
                    slot.running = False
                    slot.idle.set()
                    return
                slot.pending = False

    def status(self, name: str) -> dict[str, object]:
        slot = self._slots.get(name) or _Slot()
        return {"running": slot.running, "pending": slot.pending, "runs": slot.runs, "last_error": slot.last_error}

    def wait(self, name: str, timeout: float) -> bool:
        """Wait until ``name`` has no sync running or queued; False on timeout."""
        slot = self._slots.get(name)
        return True if slot is None else slot.idle.wait(timeout)


def sync_from_row(ctx: Context, token: str | None) -> Callable[[str], object]:
    """The sync a hook runs: the dataset's saved source, with the server process's token."""
    def run(name: str) -> object:
        with transaction(ctx.engine, readonly=True) as session:
            row = sync_row(session, name)
        if row is None:
            raise InvalidInput(f"{name} has no Label Studio sync")
        return sync_label_studio(ctx, name, url=row.server_url, project=row.project_id, token=token,
                                 author="label-studio-hook")
    return run
