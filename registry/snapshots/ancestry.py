"""Snapshot ancestry from the catalog alone: ancestors, first-parent chains, the merge base."""

from __future__ import annotations

import json
from collections import deque

from sqlalchemy import select as sa_select
from sqlmodel import Session

from registry.models import DatasetRow, SnapshotRow

__all__ = ["Graph", "load_graph"]


class Graph:
    """The parent links of one dataset's snapshots (ids only; one catalog query)."""

    def __init__(self, parents: dict[str, list[str]]) -> None:
        self.parents = parents

    def ancestors(self, snapshot_id: str) -> set[str]:
        """``snapshot_id`` and every snapshot reachable through any parent."""
        seen = {snapshot_id}
        pending = [snapshot_id]
        while pending:
            for parent in self.parents.get(pending.pop(), []):
                if parent not in seen:
                    seen.add(parent)
                    pending.append(parent)
        return seen

    def is_ancestor(self, older: str, newer: str) -> bool:
        """True when ``older`` is ``newer`` or one of its ancestors."""
        return older in self.ancestors(newer)

    def merge_base(self, a: str, b: str) -> str | None:
        """The nearest common ancestor of ``a`` and ``b`` (breadth first from ``b``), or None."""
        of_a = self.ancestors(a)
        seen = {b}
        queue = deque([b])
        while queue:
            current = queue.popleft()
            if current in of_a:
                return current
            for parent in self.parents.get(current, []):
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return None

    def first_parents(self, snapshot_id: str) -> list[str]:
        """``snapshot_id`` and its first-parent ancestors, newest first."""
        chain = [snapshot_id]
        while self.parents.get(chain[-1]):
            chain.append(self.parents[chain[-1]][0])
        return chain


def load_graph(session: Session, dataset: DatasetRow) -> Graph:
    """The parent links of every snapshot of ``dataset``."""
    table = SnapshotRow.__table__  # type: ignore[attr-defined]
    rows = session.execute(sa_select(table.c.id, table.c.parents).where(table.c.dataset_id == dataset.id)).all()
    return Graph({row[0]: json.loads(row[1]) for row in rows})
