"""Records that belong to one user: anyone else is told they do not exist (NOT_FOUND),
so their existence is not revealed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from tilegraph.domain.errors import BadUserInput, Forbidden, NotFound
from tilegraph.domain.users import Principal


class Owned(Protocol):
    @property
    def owner_id(self) -> str: ...


T = TypeVar("T", bound=Owned)


def mine(record: T | None, principal: Principal) -> T | None:
    """The record, when it exists and the caller owns it; None otherwise."""
    return record if record is not None and record.owner_id == principal.user_id else None


def owned(record: T | None, principal: Principal, what: str, *, field: str = "id") -> T:
    """The record, when it exists and the caller owns it; NOT_FOUND otherwise."""
    found = mine(record, principal)
    if found is None:
        raise NotFound(f"No such {what}", field=field)
    return found


def all_owned(
    found: Mapping[str, T], ids: Sequence[str], principal: Principal, what: str, *, field: str
) -> list[T]:
    """The records for `ids`, in order, each listed once and owned by the caller."""
    if len(ids) != len(set(ids)):
        raise BadUserInput(f"A {what} is listed twice", field=field)
    return [owned(found.get(i), principal, f"{what}: {i}", field=field) for i in ids]


def only_owner(record: Owned, principal: Principal, what: str) -> None:
    """Raw material (a card's code, a dataset's rows and source) stays with its owner:
    anyone a dashboard lends the object to gets FORBIDDEN, however they reached it."""
    if record.owner_id != principal.user_id:
        raise Forbidden(f"Only its owner may read {what}")
