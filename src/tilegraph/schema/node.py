"""The Node interface every object with an opaque id implements."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description="An object with an opaque global id, which node(id:) and nodes(ids:) resolve."
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="Opaque global id; pass it to node(id:) or nodes(ids:)."
    )
