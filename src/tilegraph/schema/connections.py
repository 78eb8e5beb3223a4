"""Relay-style connections. `Connection[User]` prints as `UserConnection`, `totalCount`
costs a count query only when a client asks for it, and `nodes` lists the edges' nodes
(GitHub's shortcut)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry

from tilegraph.schema.fields import field
from tilegraph.store.pagination import Page

NodeT = TypeVar("NodeT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @field(description="Exact.")
    async def total_count(self) -> int:
        return await self._count()

    @field(description="The edges' nodes, in the same order, for a client that needs no cursors.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]


def connection_from_page(
    page: Page[Any], to_node: Callable[[Any], NodeT | None]
) -> Connection[NodeT]:
    """Edges in page order; items that map to None (e.g. since deleted) are dropped."""
    edges: list[Edge[NodeT]] = []
    for item, cursor in zip(page.items, page.cursors, strict=True):
        node = to_node(item)
        if node is not None:
            edges.append(Edge(cursor=cursor, node=node))
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        _count=page.count,
    )
