"""`lineage(id:, direction:, depth:)`: the graph around a dataset, transform, card or
dashboard (services.lineage walks it)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.domain.lineage import DEFAULT_DEPTH, LineageDirection
from tilegraph.schema.types.lineage import LineageEdge, LineageGraph, lineage_node


async def lineage(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(description="A dataset, transform, card or dashboard id."),
    ],
    direction: Annotated[
        LineageDirection | None,
        strawberry.argument(description="Which way to walk from the object; null is BOTH."),
    ] = LineageDirection.BOTH,
    depth: Annotated[
        int | None,
        strawberry.argument(description="How many hops to walk each way, 1 to 10; null is 5."),
    ] = DEFAULT_DEPTH,
) -> LineageGraph:
    ctx = info.context
    found = await ctx.services.lineage.graph(
        ctx.principal,
        ctx.access,
        ctx.loaders,
        str(id),
        direction or LineageDirection.BOTH,
        DEFAULT_DEPTH if depth is None else depth,
    )
    return LineageGraph(
        root=lineage_node(found.root),
        nodes=[lineage_node(r) for r in found.nodes],
        edges=[LineageEdge.from_record(e) for e in found.edges],
        hidden_count=found.hidden_count,
    )
