"""A loader for one-to-many lookups (shares of a dashboard, groups of a user …): the keys
of one tick are fetched concurrently, each result cached for the rest of the request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiodataloader import DataLoader

T = TypeVar("T")


class ListLoader(DataLoader[str, list[T]]):
    def __init__(self, fetch_one: Callable[[str], Awaitable[list[T]]]) -> None:
        super().__init__()
        self._fetch_one = fetch_one

    async def batch_load_fn(self, keys: list[str]) -> list[list[T]]:
        return list(await asyncio.gather(*(self._fetch_one(key) for key in keys)))
