"""Opaque cursors (an encoded LastEvaluatedKey) and the page a query returns."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from tilegraph.domain.errors import BadUserInput

T = TypeVar("T")


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "after") -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise BadUserInput("The cursor is not valid", field=field) from exc
    if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
        raise BadUserInput("The cursor is not valid", field=field)
    return key


@dataclass
class Page(Generic[T]):
    """One page of results; `count` gives the exact total only when asked for."""

    items: list[T]
    cursors: list[str]
    has_next: bool
    has_previous: bool
    count: Callable[[], Awaitable[int]]

    def map(self, fn: Callable[[T], Any]) -> Page[Any]:
        return Page(
            [fn(i) for i in self.items], self.cursors, self.has_next, self.has_previous, self.count
        )
