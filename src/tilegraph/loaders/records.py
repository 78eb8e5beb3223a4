"""A batch loader by id that returns results in key order with None for misses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiodataloader import DataLoader

T = TypeVar("T")


class RecordLoader(DataLoader[str, T | None]):
    """Collects the ids asked for in one tick and fetches them in one batched call."""

    def __init__(self, fetch_many: Callable[[list[str]], Awaitable[dict[str, T]]]) -> None:
        super().__init__()
        self._fetch_many = fetch_many

    async def batch_load_fn(self, keys: list[str]) -> list[T | None]:
        found = await self._fetch_many(list(dict.fromkeys(keys)))
        return [found.get(key) for key in keys]
