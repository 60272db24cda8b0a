"""The registry's lineage namespace: fixed once, stored in the catalog, never derived again.

OpenLineage names a dataset by ``namespace`` + ``name``, the namespace being the datasource as
``scheme://authority``. Deriving ours from the host name (the old default) gave a registry a new
namespace whenever it moved hosts or ran behind several API processes, breaking every lineage graph
that joins on it. ``registry init`` now fixes it: ``--lineage-namespace``, else
``REGISTRY_LINEAGE_NAMESPACE``, else ``registry://reg-<12 random hex digits>``. A registry created
before this has none stored and keeps the old derived value until one is fixed with
``registry lineage namespace --fix``.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy.engine import Engine
from sqlmodel import select

from registry.audit import log as audit
from registry.context import Context
from registry.db import transaction
from registry.errors import Conflict, InvalidInput
from registry.lineage.models import LineageNamespaceRow
from registry.lineage.settings import default_namespace
from registry.timeutil import utc_now

__all__ = ["check_namespace", "fix_namespace", "registry_namespace", "stored_namespace"]

_FORM = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s?#]+(/[^\s?#]*)?$")
_FIXED: dict[str, str] = {}
"""Per process: catalog URL -> its stored namespace (it never changes once stored)."""


def check_namespace(text: str) -> str:
    """``text`` if it is a ``scheme://authority[/path]`` namespace, as the naming spec wants.

    Raises:
        InvalidInput: it is not.
    """
    value = text.strip()
    if not _FORM.match(value) or len(value) > 400:
        raise InvalidInput(f"lineage namespace {text!r}: write scheme://authority (e.g. registry://ml-platform), "
                           "lower-case scheme, no spaces, at most 400 characters")
    return value


def stored_namespace(engine: Engine) -> str | None:
    """The namespace fixed in the catalog, or None."""
    key = str(engine.url)
    if key not in _FIXED:
        with transaction(engine, readonly=True) as session:
            row = session.exec(select(LineageNamespaceRow).where(LineageNamespaceRow.id == 1)).first()
        if row is None:
            return None
        _FIXED[key] = row.namespace
    return _FIXED[key]


def registry_namespace(ctx: Context) -> str:
    """The namespace of this registry's datasets in events: the stored one; for a registry that has
    none yet, ``REGISTRY_LINEAGE_NAMESPACE`` or the old host-derived default."""
    return stored_namespace(ctx.engine) or ctx.settings.lineage.namespace or default_namespace(ctx.paths.home)


def fix_namespace(ctx: Context, requested: str | None = None) -> str:
    """Store the namespace (``requested``, else ``REGISTRY_LINEAGE_NAMESPACE``, else a new
    ``registry://reg-<hex>``) unless one is stored; returns the stored one.

    Raises:
        InvalidInput: ``requested`` is not ``scheme://authority``.
        Conflict: a different namespace is stored already (it never changes).
    """
    wanted = check_namespace(requested) if requested else None
    with transaction(ctx.engine) as session:
        row = session.exec(select(LineageNamespaceRow).where(LineageNamespaceRow.id == 1)).first()
        if row is None:
            fallback = ctx.settings.lineage.namespace
            value = wanted or (check_namespace(fallback) if fallback else f"registry://reg-{uuid.uuid4().hex[:12]}")
            row = LineageNamespaceRow(id=1, namespace=value, fixed_at=utc_now())
            session.add(row)
            session.flush()
            audit.record(session, ctx, "lineage.namespace", "registry", "lineage_namespace",
                         details={"namespace": value})
        elif wanted and wanted != row.namespace:
            raise Conflict(f"the lineage namespace is fixed as {row.namespace}; it never changes (events already "
                           "name it)")
        value = row.namespace
    _FIXED[str(ctx.engine.url)] = value
    return value
