"""Training reads over HTTP: scan plans, admitted training jobs, and a local cache of plan objects
keyed by SHA-256 (a second read of the same snapshot downloads nothing).

:class:`TrainingCalls` is mixed into :class:`~registry_client.Client`; :class:`ObjectCache` is a
small picklable value, so DataLoader workers and Ray tasks each fetch (and verify) only the objects
of their own share.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from registry_client.content import content_hash
from registry_client.errors import ConnectionFailed, InvalidInput, VerifyFailed, error_for
from registry_client.models import AdmissionPublic, LockEntryPublic, ReadTaskPublic, ScanPlanPublic, WireModel

if TYPE_CHECKING:
    import pyarrow as pa


__all__ = ["ObjectCache", "TrainingCalls", "default_cache_dir", "parent_from_env"]

_CHUNK = 1 << 20
M = TypeVar("M", bound=WireModel)


def default_cache_dir() -> Path:
    """``REGISTRY_CLIENT_CACHE``, else ``~/.cache/dataset-ledger/objects``."""
    named = os.environ.get("REGISTRY_CLIENT_CACHE", "").strip()
    return Path(named) if named else Path.home() / ".cache" / "dataset-ledger" / "objects"


def parent_from_env() -> str | None:
    """The caller's parent run as ``NAMESPACE/NAME/RUN_ID``, from ``OPENLINEAGE_PARENT_ID`` or from
    ``OPENLINEAGE_PARENT_RUN_ID`` with ``OPENLINEAGE_PARENT_JOB_NAMESPACE`` and ``..._JOB_NAME``
    (the server checks the form)."""
    whole = os.environ.get("OPENLINEAGE_PARENT_ID", "").strip()
    if whole:
        return whole
    run_id = os.environ.get("OPENLINEAGE_PARENT_RUN_ID", "").strip()
    if not run_id:
        return None
    namespace = os.environ.get("OPENLINEAGE_PARENT_JOB_NAMESPACE", "").strip()
    name = os.environ.get("OPENLINEAGE_PARENT_JOB_NAME", "").strip()
    if not namespace or not name:
        raise InvalidInput("OPENLINEAGE_PARENT_RUN_ID is set without OPENLINEAGE_PARENT_JOB_NAMESPACE and "
                           "OPENLINEAGE_PARENT_JOB_NAME; set all three, or OPENLINEAGE_PARENT_ID")
    return f"{namespace}/{name}/{run_id}"


class ObjectCache:
    """Plan objects of one snapshot, downloaded once into ``folder`` (named by their hash) and kept.

    A download is hashed as it is written and renamed into place only if it matches its name. A reader
    that re-checks cached files before trusting them (the registry's training readers do) keeps its
    verified markers in :attr:`markers`, inside the cache folder, so each file is re-hashed once per machine
    rather than once per worker process.
    """

    def __init__(self, url: str, authorization: str | None, ref: str, folder: Path, timeout: float = 60.0) -> None:
        self.url = url
        self.authorization = authorization
        self.ref = ref
        self.folder = folder
        self.timeout = timeout
        self.downloads: list[str] = []
        """Objects this instance downloaded (the rest came from the cache)."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "downloads": []}

    @property
    def markers(self) -> str:
        """The folder of verified markers for this cache's files (``.verified`` inside ``folder``)."""
        return str(self.folder / ".verified")

    def path(self, sha256: str) -> str:
        """The local file of one object, downloaded and verified if it is not cached yet.

        Raises:
            VerifyFailed: the bytes received do not hash to ``sha256``.
            ConnectionFailed, NotFound, ...: as the client's other calls.
        """
        target = self.folder / sha256[:2] / sha256
        if target.exists():
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{sha256}.{uuid.uuid4().hex[:8]}.partial")
        headers = {"Authorization": self.authorization} if self.authorization else {}
        address = f"{self.url}/api/v1/snapshots/{quote(self.ref, safe='@~')}/objects/{sha256}"
        digest = hashlib.sha256()
        try:
            with httpx.stream("GET", address, headers=headers, timeout=self.timeout) as response:
                if not response.is_success:
                    response.read()
                    body = response.json() if response.headers.get("content-type", "").startswith(
                        "application/json") else {}
                    error = body.get("error", {}) if isinstance(body, dict) else {}
                    raise error_for(response.status_code, error.get("code"), error.get("message", response.text),
                                    error.get("hint"))
                with open(partial, "wb") as fh:
                    for chunk in response.iter_bytes(_CHUNK):
                        digest.update(chunk)
                        fh.write(chunk)
            if digest.hexdigest() != sha256:
                raise VerifyFailed(f"object {sha256} from {self.url} hashes to {digest.hexdigest()}; not cached")
            partial.replace(target)
            _mark_verified(target, sha256, Path(self.markers))
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot fetch object {sha256} from {self.url}: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        self.downloads.append(sha256)
        return str(target)


def _mark_verified(path: Path, sha256: str, markers: Path) -> None:
    """Leave the verified marker the registry's readers look for, since these bytes were hashed as they
    arrived: the file's device, inode, size, modification and change times, as ``registry.storage.verified``
    writes them (a test holds the two formats equal). Any later write to the file changes them."""
    try:
        st = path.stat()
        marker = markers / sha256[:2] / sha256[2:]
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}")
        os.replace(tmp, marker)
    except OSError:
        pass  # without a marker the first reader hashes the file once more: slower, still safe


class TrainingCalls:
    """Scan plans and training admission (mixed into :class:`~registry_client.Client`)."""

    url: str
    _http: httpx.Client

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        raise NotImplementedError  # provided by Client (first in its method order, so this never runs)

    def plan(self, ref: str, shards: int = 1, columns: Sequence[str] | None = None) -> ScanPlanPublic:
        """The snapshot's scan plan (see ``registry.snapshots.plan``): read tasks in ``shards`` shards
        that together yield exactly its rows."""
        params: dict[str, Any] = {"shards": shards}
        if columns is not None:
            params["columns"] = list(columns)
        return self._call(ScanPlanPublic, "GET", f"/snapshots/{quote(ref, safe='@~')}/plan", params=params)

    def admit_training(self, ref: str, *, columns: Sequence[str] | None = None, job: str | None = None,
                       run_id: str | None = None, parent: str | None = None, allow_unverified: bool = False,
                       shards: int = 1, content_hash: str | None = None,
                       namespace: str | None = None) -> AdmissionPublic:
        """Start a training job's read of ``ref``: the gate is checked and the read audited once, under
        the job's lineage run (``run_id``, default ``OPENLINEAGE_RUN_ID``; ``parent``, default the
        OpenLineage parent variables; ``job``, default ``REGISTRY_JOB``). Returns the admission:
        ``plan``, ``run_id``, ``job`` and ``gate``. ``content_hash`` and ``namespace`` (of a lockfile
        entry) are checked by the server against the stored rows and its own namespace.

        Raises:
            GateBlocked: the gate does not pass and ``allow_unverified`` is False.
            VerifyFailed: the pinned content hash or namespace does not match.
        """
        params: dict[str, Any] = {"training": "true", "shards": shards,
                                  "job": job or os.environ.get("REGISTRY_JOB") or None,
                                  "run_id": run_id or os.environ.get("OPENLINEAGE_RUN_ID") or None,
                                  "parent": parent or parent_from_env(),
                                  "allow_unverified": "true" if allow_unverified else None,
                                  "content_hash": content_hash, "namespace": namespace}
        if columns is not None:
            params["columns"] = list(columns)
        params = {k: v for k, v in params.items() if v is not None}
        return self._call(AdmissionPublic, "GET", f"/snapshots/{quote(ref, safe='@~')}/plan", params=params)

    def object_cache(self, ref: str, folder: str | os.PathLike[str] | None = None) -> ObjectCache:
        """A cache of ``ref``'s plan objects in ``folder`` (default :func:`default_cache_dir`)."""
        authorization = self._http.headers.get("Authorization")
        return ObjectCache(self.url, authorization, ref, Path(folder) if folder else default_cache_dir(),
                           self._http.timeout.read or 60.0)

    def load_locked(self, entry: LockEntryPublic | dict[str, Any], *, job: str | None = None,
                    cache_dir: str | os.PathLike[str] | None = None) -> pa.Table:
        """The rows of a lockfile entry (see :func:`registry_client.lockfile.read_lockfile`): gated and
        audited once by the server, which checks the entry's namespace and content hash; the objects come
        from the local cache (downloaded and hash-checked once), so a second read downloads nothing.

        The rows read are hashed again here, the way the pin hashed them, so a server (or anything between)
        that answers with other rows than the pinned ones is caught.

        Raises:
            GateBlocked: the gate no longer passes.
            VerifyFailed: the entry was pinned in another registry, its rows changed, or the rows received do
                not hash to the entry's content hash.
        """
        import pyarrow as pa

        if isinstance(entry, LockEntryPublic):
            entry = entry.to_dict()
        ref = f"{entry['dataset']}@{entry['snapshot_id']}"
        answer = self.admit_training(ref, job=job or entry.get("job"), content_hash=entry["content_hash"],
                                     namespace=entry.get("namespace"))
        plan = answer.plan
        if plan.snapshot_id != entry["snapshot_id"]:
            raise VerifyFailed(f"{ref}: the server resolved {plan.snapshot_id}")
        cache = self.object_cache(ref, cache_dir)
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(plan.schema_)))
        parts = [_read_task(cache.path(task.object), task) for shard in plan.shards for task in shard]
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        # The server checked the pin, but its answer is not trusted: the rows read are hashed here the way
        # the pin was (registry_client.content), so a plan that hides, adds or swaps rows is refused.
        digest = content_hash(table, plan.key_columns)
        if digest != entry["content_hash"]:
            raise VerifyFailed(f"{ref}: the rows read hash to {digest}, not to the pinned {entry['content_hash']}; "
                               "the server's answer does not match the pin")
        return table


def _read_task(path: str, task: ReadTaskPublic) -> pa.Table:
    """One plan task's visible rows (the client cannot import ``registry.snapshots.plan.read_task``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    offset, length = task.offset, task.length
    group = pq.ParquetFile(path).read_row_group(task.row_group).slice(offset, length)
    if not task.hidden:
        return group
    positions = pa.array(range(offset, offset + length), pa.int64())
    return group.filter(pc.invert(pc.is_in(positions, value_set=pa.array(task.hidden, pa.int64()))))
