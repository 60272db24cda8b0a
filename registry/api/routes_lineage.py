"""The lineage graph around a snapshot."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from registry_client.models import LineageGraphPublic

from registry.api.deps import Access, require
from registry.api.wire import JSONBody, wire
from registry.auth.roles import Principal
from registry.lineage.graph import Direction, walk

__all__ = ["router"]

router = APIRouter(tags=["lineage"])


@router.get("/lineage/graph", response_model=LineageGraphPublic)
def lineage_graph(ref: str, access: Annotated[Access, Depends(require("read"))], direction: Direction = "both",
                  depth: Annotated[int, Query(ge=1)] = 3) -> JSONBody:
    """Nodes and edges within ``depth`` steps of the snapshot ``ref``, as `registry lineage --json` prints
    them. A dataset-scoped token does not see snapshots of other datasets (nor the edges to them)."""
    access.principal.require_ref(ref)
    graph = walk(access.ctx, ref, direction, depth).to_dict()
    return wire(LineageGraphPublic, _in_scope(graph, access.principal) if access.principal.datasets else graph)


def _in_scope(graph: dict[str, Any], principal: Principal) -> dict[str, Any]:
    hidden = {node["key"] for node in graph["nodes"] if node["kind"] == "snapshot" and not principal.sees(node["name"])}
    return {**graph, "nodes": [n for n in graph["nodes"] if n["key"] not in hidden],
            "edges": [e for e in graph["edges"] if e["src"] not in hidden and e["dst"] not in hidden]}
