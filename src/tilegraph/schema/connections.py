"""Relay-style connections. `Connection[User]` prints as `UserConnection`, `totalCount`
costs a count query only when a client asks for it, and `nodes` lists the edges' nodes
(GitHub's shortcut)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from tilegraph.domain.paging import MAX_PAGE_SIZE
from tilegraph.schema.fields import field
from tilegraph.store.pagination import Page

NodeT = TypeVar("NodeT")

FIRST_DESCRIPTION = f"How many items the page holds at most: 1 to {MAX_PAGE_SIZE}."
AFTER_DESCRIPTION = (
    "The page starts after this cursor: pass pageInfo.endCursor of the previous page; omit it "
    "for the first page."
)
# Paging arguments of every connection field (the default page size differs, so it stays on
# each resolver's parameter).
First = Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)]
After = Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)]


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow: ask again with `after: endCursor`."
    )
    has_previous_page: bool = strawberry.field(
        description="Items come before this page (it was asked for with `after`)."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item, to pass as `after` for the next "
        "page; null when the page is empty."
    )


@strawberry.type(description="One item of a page, with the cursor that points at it.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(
        description="Opaque; pass it as `after` to continue the list after this item."
    )
    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(
    description="One page of a list; ask for the next with `after: pageInfo.endCursor`."
)
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(
        description="The page's items with their cursors, in list order."
    )
    page_info: PageInfo = strawberry.field(description="Whether more pages follow, and how to ask.")
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @field(description="How many items the whole list holds (not just this page); exact.")
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
