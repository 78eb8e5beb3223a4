"""The workspace key of a card, transform or dashboard: what `tilegraph apply` matches the
object's files with, so it is unique among the objects of one kind and one owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from tilegraph.domain.errors import Conflict
from tilegraph.domain.validation import check_workspace_key


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


async def unique_workspace_key(
    key: str | None,
    holders: Callable[[str], Awaitable[Sequence[_Identified]]],
    *,
    this_id: str | None,
    what: str,
) -> str | None:
    """The key when it is well formed and no other object of the owner has it. `holders`
    lists the owner's objects with a key (a filtered Query on the owner index: workspaces
    are small). Two writers setting one key at the same instant can both pass; the next
    `tilegraph apply` then names the key as ambiguous rather than guessing."""
    key = check_workspace_key(key)
    if key is None:
        return None
    if any(other.id != this_id for other in await holders(key)):
        raise Conflict(
            f"Another {what} of this owner has the workspace key {key!r}", field="workspaceKey"
        )
    return key
