"""Query in the emulator without listing and sorting the whole table each time.

moto answers every Query by listing all the table's items and sorting them (`all_items`),
then keeping those of the asked key. A query by partition key, which DynamoDB answers from
that one partition, then costs as much as the table, and a session slows down as its
tables grow: the sweepers and schedule ticks alone query several tables every second.

Here a query on the table reads only its partition, and a query on an index gets the items
unsorted (moto sorts what matches by the index's keys afterwards, so the order and the
pages are the same). The emulator serves one request at a time, so lending the table this
narrower `all_items` for the length of one call is safe."""

from __future__ import annotations

from collections.abc import Callable
from inspect import signature
from typing import Any


def _partition(table: Any, hash_key: Any) -> list[Any]:
    """The items of one partition (`items` is a defaultdict: `get` adds no empty one)."""
    found = table.items.get(hash_key)
    if found is None:
        return []
    return list(found.values()) if table.range_key_attr else [found]


def _unsorted(table: Any) -> list[Any]:
    if not table.range_key_attr:
        return list(table.items.values())
    return [item for partition in table.items.values() for item in partition.values()]


def patch_queries() -> None:
    """Narrow what moto's Table.query looks through (once)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_tilegraph_narrow_query", False):
        return
    original: Callable[..., Any] = Table.query
    # Where `index_name` comes among the arguments after `self` and `hash_key`, as moto's
    # backend passes them (positionally), read from the signature rather than assumed.
    index_at = list(signature(original).parameters).index("index_name") - 2

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[index_at] if len(args) > index_at else kwargs.get("index_name")
        if index_name:
            candidates = _unsorted(self)
        elif hash_key is not None:
            candidates = _partition(self, hash_key)
        else:
            return original(self, hash_key, *args, **kwargs)
        self.all_items = lambda: candidates
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]
    Table._tilegraph_narrow_query = True  # type: ignore[attr-defined]
