"""Dashboard permission levels and how they combine (DESIGN.md "GraphQL conventions")."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class PermissionLevel(StrEnum):
    """VIEWER < EDITOR < OWNER."""

    VIEWER = "VIEWER"
    EDITOR = "EDITOR"
    OWNER = "OWNER"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: PermissionLevel) -> bool:
        return self.rank >= required.rank


_RANK = {PermissionLevel.VIEWER: 1, PermissionLevel.EDITOR: 2, PermissionLevel.OWNER: 3}


def highest(levels: Iterable[PermissionLevel | None]) -> PermissionLevel | None:
    best: PermissionLevel | None = None
    for level in levels:
        if level is not None and (best is None or level.rank > best.rank):
            best = level
    return best
