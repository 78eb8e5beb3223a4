"""Page-size rules shared by every connection."""

from __future__ import annotations

from tilegraph.domain.errors import BadUserInput

MAX_PAGE_SIZE = 100


def check_first(first: int, *, field: str = "first", maximum: int = MAX_PAGE_SIZE) -> int:
    if not 1 <= first <= maximum:
        raise BadUserInput(f"`{field}` must be between 1 and {maximum}", field=field)
    return first
