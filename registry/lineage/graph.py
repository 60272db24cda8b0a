"""The lineage graph: edges recorded by commits, reads and ingested events, and walks over them.

Nodes are registry snapshots (``snapshot``: dataset name + snapshot id), external datasets
(``dataset``: namespace + name) and job runs (``run``: job namespace + job name + run id).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Literal

from sqlmodel import Session, col, select

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.errors import Hint, InvalidInput
from registry.lineage.models import LineageEdgeRow
from registry.refs import Ref
from registry.timeutil import utc_now

__all__ = ["Direction", "Edge", "LineageGraph", "Node", "record_edge", "to_dot", "walk"]

Direction = Literal["upstream", "downstream", "both"]


@dataclass(frozen=True)
class Node:
    """One vertex of the graph; ``namespace`` is ``""`` for this registry's snapshots."""

    kind: str
    name: str
    version: str = ""
    namespace: str = ""

    @property
    def key(self) -> str:
        if self.kind == "snapshot":
            return f"{self.name}@{self.version}"
        if self.kind == "run":
            return f"{self.namespace}/{self.name}#{self.version}"
        return f"{self.namespace}:{self.name}" + (f"@{self.version}" if self.version else "")

    def label(self) -> str:
        """Short form for people: ids cut to 12 characters."""
        if self.kind == "snapshot":
            return f"{self.name}@{self.version[:12]}"
        if self.kind == "run":
            return f"{self.namespace}/{self.name} run {self.version[:8]}"
        return f"{self.namespace}:{self.name}"

    def to_dict(self) -> dict[str, str]:
        return {**asdict(self), "key": self.key}


@dataclass(frozen=True)
class Edge:
    kind: str
    src: Node
    dst: Node
    run_id: str
    created_at: str

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "src": self.src.key, "dst": self.dst.key, "run_id": self.run_id or None,
                "created_at": self.created_at}


def _src(row: LineageEdgeRow) -> Node:
    return Node(row.src_kind, row.src_name, row.src_version, row.src_namespace)


def _dst(row: LineageEdgeRow) -> Node:
    return Node(row.dst_kind, row.dst_name, row.dst_version, row.dst_namespace)


def record_edge(session: Session, kind: str, src: Node, dst: Node, run_id: str = "") -> bool:
    """Add ``src -> dst`` in ``session``'s transaction unless it exists; True if it was added."""
    existing = session.exec(select(LineageEdgeRow.id).where(
        LineageEdgeRow.kind == kind, LineageEdgeRow.src_kind == src.kind,
        LineageEdgeRow.src_namespace == src.namespace, LineageEdgeRow.src_name == src.name,
        LineageEdgeRow.src_version == src.version, LineageEdgeRow.dst_kind == dst.kind,
        LineageEdgeRow.dst_namespace == dst.namespace, LineageEdgeRow.dst_name == dst.name,
        LineageEdgeRow.dst_version == dst.version)).first()
    if existing is not None:
        return False
    session.add(LineageEdgeRow(kind=kind, src_kind=src.kind, src_namespace=src.namespace, src_name=src.name,
                               src_version=src.version, dst_kind=dst.kind, dst_namespace=dst.namespace,
                               dst_name=dst.name, dst_version=dst.version, run_id=run_id, created_at=utc_now()))
    return True


@dataclass(frozen=True)
class LineageGraph:
    """The part of the graph within ``depth`` steps of ``root``; each node with its distance."""

    root: Node
    direction: str
    depth: int
    nodes: dict[str, tuple[Node, int]]
    edges: list[Edge]

    def to_dict(self) -> dict[str, object]:
        return {"root": self.root.key, "direction": self.direction, "depth": self.depth,
                "nodes": [{**node.to_dict(), "distance": dist} for node, dist in self.nodes.values()],
                "edges": [e.to_dict() for e in self.edges]}


def walk(ctx: Context, ref: Ref | str, direction: Direction = "both", depth: int = 3) -> LineageGraph:
    """Edges reachable from the snapshot ``ref`` (``NAME@REF``) within ``depth`` steps.

    Raises:
        NotFound / AmbiguousRef: ``ref`` names no single snapshot.
        InvalidInput: ``depth`` is below 1.
    """
    if depth < 1:
        raise InvalidInput(f"depth must be at least 1, got {depth}", hint=Hint("option", "depth"))
    ref = Ref.coerce(ref)
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = catalog.resolve_ref(session, ref)
        root = Node("snapshot", dataset.name, snapshot.id)
        nodes: dict[str, tuple[Node, int]] = {root.key: (root, 0)}
        edges: dict[int, Edge] = {}
        for way in (["upstream", "downstream"] if direction == "both" else [direction]):
            _bfs(session, root, way == "downstream", depth, nodes, edges)
    ordered = sorted(edges.values(), key=lambda e: (e.created_at, e.src.key, e.dst.key))
    return LineageGraph(root, direction, depth, nodes, ordered)


def _bfs(session: Session, root: Node, forward: bool, depth: int, nodes: dict[str, tuple[Node, int]],
         edges: dict[int, Edge]) -> None:
    """Breadth-first along edges (``forward``: src -> dst, i.e. downstream), adding what it meets."""
    seen = {root.key}
    frontier = deque([(root, 0)])
    while frontier:
        node, dist = frontier.popleft()
        if dist >= depth:
            continue
        for row in _adjacent(session, node, forward):
            assert row.id is not None
            edges.setdefault(row.id, Edge(row.kind, _src(row), _dst(row), row.run_id, row.created_at))
            nxt = _dst(row) if forward else _src(row)
            if nxt.key not in seen:
                seen.add(nxt.key)
                nodes.setdefault(nxt.key, (nxt, dist + 1))
                frontier.append((nxt, dist + 1))


def _adjacent(session: Session, node: Node, forward: bool) -> list[LineageEdgeRow]:
    """Edges leaving ``node`` (``forward``) or entering it."""
    if forward:
        where = (col(LineageEdgeRow.src_kind) == node.kind, col(LineageEdgeRow.src_name) == node.name,
                 col(LineageEdgeRow.src_version) == node.version, col(LineageEdgeRow.src_namespace) == node.namespace)
    else:
        where = (col(LineageEdgeRow.dst_kind) == node.kind, col(LineageEdgeRow.dst_name) == node.name,
                 col(LineageEdgeRow.dst_version) == node.version, col(LineageEdgeRow.dst_namespace) == node.namespace)
    return list(session.exec(select(LineageEdgeRow).where(*where).order_by(col(LineageEdgeRow.id))).all())


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_SHAPES = {"snapshot": "box", "dataset": "cylinder", "run": "ellipse"}


def to_dot(graph: LineageGraph) -> str:
    """The graph in Graphviz DOT; the root is drawn bold."""
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [fontname=\"Helvetica\"];"]
    for node, _dist in graph.nodes.values():
        style = ", style=bold" if node == graph.root else ""
        lines.append(f"  {_quote(node.key)} [label={_quote(node.label())}, shape={_SHAPES.get(node.kind, 'box')}"
                     f"{style}];")
    for edge in graph.edges:
        lines.append(f"  {_quote(edge.src.key)} -> {_quote(edge.dst.key)} [label={_quote(edge.kind)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
