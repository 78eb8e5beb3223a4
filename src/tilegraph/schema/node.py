"""The Node interface every object with an opaque id implements."""

from __future__ import annotations

import strawberry


@strawberry.interface
class Node:
    id: strawberry.ID
