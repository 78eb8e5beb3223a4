"""TransactWriteItems in the emulator at the cost of the items it writes, not of its tables.

moto backs up every table a transaction names with `copy.deepcopy` before it runs, so that
it can put them back if a step fails. Each transaction then costs as much as all the items
of those tables, and a session that writes each card, dashboard and transform with its
revision in one transaction slows down as the tables grow (quadratically overall). Here the
backup holds only the items the transaction names, as they were, and a failed transaction
puts exactly those back: the same all-or-nothing outcome, as DynamoDB gives it. The
emulator serves one request at a time, so swapping moto's `copy` for the call is safe."""

from __future__ import annotations

import copy
import types
from collections.abc import Callable
from typing import Any

_Backup = list[tuple[Any, dict[str, Any], Any]]


def _key_of(table: Any, operation: dict[str, Any]) -> dict[str, Any] | None:
    if "Key" in operation:
        return dict(operation["Key"])
    item = operation.get("Item") or {}
    if table.hash_key_attr not in item:
        return None
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None and table.range_key_attr in item:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _backup(backend: Any, transact_items: list[dict[str, Any]]) -> _Backup:
    """Each named item as it is now (None: absent); what moto cannot find it reports."""
    saved: _Backup = []
    for step in transact_items:
        operation = next(iter(step.values()), None)
        if not isinstance(operation, dict):
            continue
        table = backend.tables.get(operation.get("TableName"))
        key = _key_of(table, operation) if table is not None else None
        if table is None or key is None:
            continue
        try:
            hash_value, range_value = backend.get_keys_value(table, key)
            current = table.get_item(hash_value, range_value)
        except Exception:  # a malformed key: moto's own checks will refuse the transaction
            continue
        saved.append((table, key, copy.deepcopy(current)))
    return saved


def _restore(backend: Any, saved: _Backup) -> None:
    for table, key, original in reversed(saved):
        hash_value, range_value = backend.get_keys_value(table, key)
        if original is None:
            if table.get_item(hash_value, range_value) is not None:
                table.delete_item(hash_value, range_value)
        else:
            table.put_item(original.to_json()["Attributes"])


def patch_transactions() -> None:
    """Replace moto's TransactWriteItems backup with an item-level one (once)."""
    from moto.dynamodb import models

    backend_class = models.DynamoDBBackend
    if getattr(backend_class, "_tilegraph_item_backup", False):
        return
    original: Callable[..., None] = backend_class.transact_write_items
    without_table_copies = types.SimpleNamespace(deepcopy=lambda value, *args: value)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _backup(self, transact_items)
        setattr(models, "copy", without_table_copies)  # noqa: B010 (moto's own module)
        try:
            original(self, transact_items)
        except BaseException:
            _restore(self, saved)
            raise
        finally:
            setattr(models, "copy", copy)  # noqa: B010

    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend_class._tilegraph_item_backup = True  # type: ignore[attr-defined]
