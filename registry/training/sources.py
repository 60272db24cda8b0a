"""Admitting a job wherever the snapshot lives: a local :class:`~registry.Registry` (or the home
``Registry.open()`` finds), or a registry server through a ``registry_client.Client``.

The client is recognised by its ``admit_training`` and ``object_cache`` methods, never imported:
the registry does not depend on its client package.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from registry.config import find_home
from registry.context import Context, open_context
from registry.errors import InvalidInput
from registry.training.admission import Admission, ObjectSource, admit_training, local_objects
from registry.training.lockfile import LockEntry
from registry.training.view import write_view

__all__ = ["admit_job", "admitted_view"]


def admit_job(target: str | LockEntry, registry: Any = None, *, columns: Sequence[str] | None = None,
              job: str | None = None, allow_unverified: bool = False) -> tuple[Admission, ObjectSource]:
    """Admit a training job's read of ``target`` and say where its objects are read from.

    Raises:
        GateBlocked, NotFound, VerifyFailed, InvalidInput: as :func:`~registry.training.admission.admit_training`
            (or the client's equivalents over HTTP).
    """
    if registry is None:
        with _home_context() as home:
            return _local(home, target, columns, job, allow_unverified)
    ctx = _context_of(registry)
    if ctx is not None:
        return _local(ctx, target, columns, job, allow_unverified)
    if hasattr(registry, "admit_training") and hasattr(registry, "object_cache"):
        ref = target.target if isinstance(target, LockEntry) else target
        job = job or (target.job if isinstance(target, LockEntry) else None)
        locked = target if isinstance(target, LockEntry) else None
        answer = registry.admit_training(ref, columns=columns, job=job, allow_unverified=allow_unverified,
                                         content_hash=locked.content_hash if locked else None,
                                         namespace=locked.namespace if locked else None)
        admission = Admission.from_dict(answer.to_dict())
        if isinstance(target, LockEntry) and admission.plan.snapshot_id != target.snapshot_id:
            raise InvalidInput(f"lock entry for {target.dataset} names {target.snapshot_id}, but the server "
                               f"resolved {admission.plan.snapshot_id}")
        objects: ObjectSource = registry.object_cache(f"{admission.plan.dataset}@{admission.plan.snapshot_id}")
        return admission, objects
    raise InvalidInput("registry must be a registry.Registry or a registry_client.Client, "
                       f"not {type(registry).__name__}")


@contextmanager
def _home_context() -> Iterator[Context]:
    """The home ``Registry.open()`` would open (``REGISTRY_HOME``, else the nearest ``.registry``)."""
    ctx = open_context(find_home(None))
    try:
        yield ctx
    finally:
        ctx.close()


def _context_of(registry: Any) -> Context | None:
    """The context of a local :class:`~registry.Registry` (recognised by it, not imported: it sits above)."""
    ctx = getattr(registry, "ctx", None)
    return ctx if isinstance(ctx, Context) else None


def _local(ctx: Context, target: str | LockEntry, columns: Sequence[str] | None, job: str | None,
           allow_unverified: bool) -> tuple[Admission, ObjectSource]:
    admission = admit_training(ctx, target, columns=columns, job=job, allow_unverified=allow_unverified)
    return admission, local_objects(ctx, admission.plan)


def admitted_view(target: str | LockEntry, registry: Any = None, *, columns: Sequence[str] | None = None,
                  job: str | None = None, allow_unverified: bool = False) -> tuple[Admission, Path]:
    """Admit a training job as :func:`admit_job` does and return its flat Parquet view (written once
    per snapshot and column list: in the home's ``cache/views``, or next to the client's object cache).

    Raises:
        GateBlocked, NotFound, VerifyFailed, InvalidInput: as :func:`admit_job`.
    """
    if registry is None:
        with _home_context() as home:
            admission, objects = _local(home, target, columns, job, allow_unverified)
            return admission, write_view(admission.plan, objects, home.paths.cache_dir / "views")
    admission, objects = admit_job(target, registry, columns=columns, job=job, allow_unverified=allow_unverified)
    ctx = _context_of(registry)
    if ctx is None:  # the client's ObjectCache: the views go next to it
        cache_folder = objects.folder  # type: ignore[attr-defined]
        return admission, write_view(admission.plan, objects, Path(cache_folder).parent / "views")
    return admission, write_view(admission.plan, objects, ctx.paths.cache_dir / "views")
