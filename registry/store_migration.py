"""Moving a home's objects to another store, verified, then switching the home over to it.

``migrate`` copies every object the catalog references (what ``gc`` keeps and ``verify`` checks:
change and delete objects, manifests and their layers, annotation records and the labeling
configurations they cite, audit segments), checks each one's SHA-256 as the destination itself
serves it, and only then writes the new storage URL into the home's ``registry.json``. Snapshot
ids do not change: they are derived from content, never from where bytes sit.

A journal under the home's cache lists the objects already verified at a destination, so an
interrupted migration resumes where it stopped. Writers should be stopped while migrating (a commit
that lands in the old store after the last pass would be missing from the new one; ``verify``
reports it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from registry.audit import log as audit
from registry.config import HOME_CONFIG, default_storage_url, read_home_config, write_home_config
from registry.context import Context
from registry.db import transaction
from registry.errors import Hint, InvalidInput, StorageError, VerifyFailed
from registry.failpoints import failpoint
from registry.snapshots.gc import referenced_objects
from registry.snapshots.verify import verify
from registry.storage.base import ObjectStore, open_store
from registry.storage.info import StoreInfo, describe_store

__all__ = ["MigrateResult", "StoreInfo", "migrate", "normalize_url", "store_info"]

Progress = Callable[[int, int], None]


@dataclass
class MigrateResult:
    """What a migration copied, skipped (already verified at the destination) and switched."""

    source: str
    destination: str
    objects: int = 0
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    verified: bool = False
    """The full ``verify`` ran against the destination (``--verify``) and passed."""
    switched: bool = False
    store_commit_id: str | None = None
    overridden_by_env: bool = False
    """``REGISTRY_STORAGE_URL`` is set, so it still wins over the switched configuration."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def normalize_url(url: str) -> str:
    """A storage URL as the home records it: local folders as absolute ``file://`` URIs.

    Raises:
        InvalidInput: the URL is empty.
    """
    url = url.strip()
    if not url:
        raise InvalidInput("give the destination store: s3://bucket/prefix, lakefs://repo/branch/prefix or a "
                           "folder", hint=Hint("option", "to"))
    if url.startswith("file://") or "://" not in url:
        path = Path(unquote(urlparse(url).path)) if url.startswith("file://") else Path(url).expanduser()
        return path.resolve().as_uri()
    return url.rstrip("/")


def migrate(ctx: Context, to_url: str, verify_all: bool = False, progress: Progress | None = None,
            actor: str | None = None) -> MigrateResult:
    """Copy every referenced object to ``to_url``, verify each at the destination, then switch the home.

    Raises:
        InvalidInput: ``to_url`` is the store in use.
        StorageError: either store cannot be read or written; a copied object does not verify.
        CheckFailed: ``verify_all`` and the full verify against the destination found a problem.
    """
    destination = normalize_url(to_url)
    source = normalize_url(ctx.paths.storage_url)
    if destination == source:
        raise InvalidInput(f"the home already uses {destination}; nothing to migrate")
    target = open_store(destination, ctx.settings.storage, ctx.paths.cache_dir)
    result = MigrateResult(source=source, destination=destination)
    journal = _Journal(ctx.paths.cache_dir / "migrate" / hashlib.sha256(destination.encode()).hexdigest()[:16])
    # Passes until nothing new is referenced: objects an audit seal or a late commit added meanwhile.
    done: set[str] = set()
    while True:
        wanted = sorted(referenced_objects(ctx) - done)
        if not wanted:
            break
        result.objects += len(wanted)
        for number, sha in enumerate(wanted, 1):
            if sha in journal.verified:
                result.skipped += 1
            else:
                result.bytes_copied += _copy(ctx.store, target, sha)
                journal.add(sha)
                result.copied += 1
                failpoint("migrate:after-object")
            done.add(sha)
            if progress:
                progress(number, len(wanted))
    result.store_commit_id = target.seal_commit(None, f"registry storage migrate from {source}")
    if verify_all:
        _verify_at(ctx, target)
        result.verified = True
    _switch(ctx, destination)
    ctx.store = ctx.cache.store = target  # the audit event may seal a segment: it belongs in the new store
    with transaction(ctx.engine) as session:
        audit.record(session, ctx, "store.migrate", "store", destination, actor=actor, details={
            "from": source, "to": destination, "objects": result.objects, "copied": result.copied,
            "skipped": result.skipped, "bytes_copied": result.bytes_copied, "verified": result.verified,
            "store_commit_id": result.store_commit_id})
    journal.remove()
    result.switched = True
    result.overridden_by_env = bool(ctx.settings.storage.url) and normalize_url(ctx.settings.storage.url or "") != \
        destination
    return result


def _copy(source: ObjectStore, target: ObjectStore, sha: str) -> int:
    """Copy one object and check its hash as the destination serves it; returns its size."""
    with open(source.local_path(sha), "rb") as src, target.staging_file() as staged:
        shutil.copyfileobj(src, staged, 16 << 20)
        info = target.put(staged)
    if info.sha256 != sha:
        raise StorageError(f"object {sha} read from the source store hashes to {info.sha256}; verify the source "
                           "store", hint=Hint("command", "verify"))
    stored = target.digest(sha)
    if stored.sha256 != sha or stored.size != info.size:
        raise StorageError(f"object {sha} does not verify at {target.url} after copying (its bytes hash to "
                           f"{stored.sha256}); the migration stopped before switching, run it again")
    return info.size


def _verify_at(ctx: Context, target: ObjectStore) -> None:
    there = Context(paths=ctx.paths, engine=ctx.engine, store=target, settings=ctx.settings, client=ctx.client,
                    principal=ctx.principal, author=ctx.author)
    report = verify(there)
    if not report.ok:
        raise VerifyFailed(f"verify against {target.url} failed, the home still uses the old store: "
                           f"{report.problems[0]}")


def _switch(ctx: Context, destination: str) -> None:
    """Record the new store in the home's config (the default local folder is recorded by omission)."""
    home = ctx.paths.home
    config = read_home_config(home) or {"format": 1}
    if destination == default_storage_url(home):
        config.pop("storage_url", None)
    else:
        config["storage_url"] = destination
    try:
        write_home_config(home, config)
    except OSError as exc:
        raise StorageError(f"cannot write {home / HOME_CONFIG}: {exc.strerror}; every object is copied and "
                           "verified, run the migration again to switch") from exc


class _Journal:
    """Object names verified at one destination, one per line, appended as each is done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.verified = set(path.read_text().split())
        except FileNotFoundError:
            self.verified = set()

    def add(self, sha: str) -> None:
        with open(self.path, "a") as fh:
            fh.write(sha + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.verified.add(sha)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def store_info(ctx: Context) -> StoreInfo:
    """Describe the home's store and probe it with one lookup (never prints a secret)."""
    return describe_store(ctx.store, ctx.settings.storage.url, ctx.paths.home)
