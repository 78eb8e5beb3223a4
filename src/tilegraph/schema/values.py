"""Arguments the contract declares without a default arrive as UNSET when omitted."""

from __future__ import annotations

from typing import Any, TypeVar

from strawberry.types.unset import UnsetType

T = TypeVar("T")


def given(value: T | Any | None) -> T | None:
    """The value, or None when it was omitted (UNSET) or null."""
    if value is None or isinstance(value, UnsetType):
        return None
    return value


def page_size(first: int | None, default: int) -> int:
    """`first: Int = 50` is nullable in the contract; null means the default."""
    size = given(first)
    return default if size is None else int(size)
