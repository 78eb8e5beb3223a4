"""A small typed layer over the DynamoDB client: gets, batch gets in chunks of 100 with
retries, conditional writes, and paginated queries with exact counts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tilegraph.domain.errors import BadUserInput
from tilegraph.settings import Settings
from tilegraph.store.marshal import from_item, item_size, to_attr, to_item
from tilegraph.store.pagination import Page, decode_cursor, encode_cursor
from tilegraph.store.tables import TABLES, TableSpec

BATCH_GET_CHUNK = 100
BATCH_WRITE_CHUNK = 25
MAX_RETRIES = 8
MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's limit for one item
TOO_LARGE = (
    "The change would make the record larger than the 400 KB a stored record may hold; "
    "shorten its longest text or values"
)


def _fits(item: dict[str, Any]) -> dict[str, Any]:
    """The low-level item, when DynamoDB can store it: a clear BAD_USER_INPUT, not a
    ValidationException masked as an internal error, when it cannot."""
    if item_size(item) > MAX_ITEM_BYTES:
        raise BadUserInput(TOO_LARGE)
    return item


def _raise_too_large(exc: ClientError) -> None:
    error = exc.response.get("Error", {})
    if error.get("Code") == "ValidationException" and "size" in str(error.get("Message", "")):
        raise BadUserInput(TOO_LARGE) from exc


class ConditionFailed(Exception):
    """A conditional write lost: the record changed or already exists."""


class Stale(Exception):
    """An optimistic-locking write lost: the record changed (or exists) since it was read.
    Repositories raise it in place of `ConditionFailed` where the caller holds a version;
    services answer it with `Conflict`."""

    def __init__(self, record_id: str) -> None:
        super().__init__(record_id)
        self.record_id = record_id


class StoreUnavailable(Exception):
    """DynamoDB kept refusing part of a batch after every retry."""


@dataclass(frozen=True)
class KeyCondition:
    """`hash_attr = hash_value` and optionally a range condition on the sort key."""

    hash_attr: str
    hash_value: str
    range_attr: str | None = None
    range_op: str | None = None  # "=", "<", "<=", ">", ">=", "begins_with", "between"
    range_values: tuple[str, ...] = ()

    def expression(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        names = {"#h": self.hash_attr}
        values: dict[str, Any] = {":h": to_attr(self.hash_value)}
        expr = "#h = :h"
        if self.range_attr and self.range_op:
            names["#r"] = self.range_attr
            if self.range_op == "between":
                values[":r0"] = to_attr(self.range_values[0])
                values[":r1"] = to_attr(self.range_values[1])
                expr += " AND #r BETWEEN :r0 AND :r1"
            elif self.range_op == "begins_with":
                values[":r0"] = to_attr(self.range_values[0])
                expr += " AND begins_with(#r, :r0)"
            else:
                values[":r0"] = to_attr(self.range_values[0])
                expr += f" AND #r {self.range_op} :r0"
        return expr, names, values


@dataclass(frozen=True)
class Filter:
    """A FilterExpression with its own placeholders (prefixed to avoid clashes)."""

    expression: str
    names: dict[str, str]
    values: dict[str, Any]


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(min(2.0, 0.02 * (2**attempt)) * (0.5 + random.random() / 2))


class Dynamo:
    """Table-name-aware helpers around one shared aiobotocore DynamoDB client."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def name(self, table: str) -> str:
        return self.settings.table_name(table)

    @staticmethod
    def spec(table: str) -> TableSpec:
        return TABLES[table]

    async def get(
        self, table: str, key: dict[str, str], *, consistent: bool = True
    ) -> dict[str, Any] | None:
        response = await self.client.get_item(
            TableName=self.name(table), Key=to_item(key), ConsistentRead=consistent
        )
        item = response.get("Item")
        return from_item(item) if item else None

    async def batch_get(self, table: str, keys: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
        """Fetch many items: keys deduplicated, chunks of 100, UnprocessedKeys retried."""
        unique: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for key in keys:
            unique.setdefault(tuple(sorted(key.items())), key)
        chunks = [
            list(unique.values())[i : i + BATCH_GET_CHUNK]
            for i in range(0, len(unique), BATCH_GET_CHUNK)
        ]
        results = await asyncio.gather(*(self._batch_get_chunk(table, c) for c in chunks))
        return [item for chunk in results for item in chunk]

    async def _batch_get_chunk(
        self, table: str, keys: list[dict[str, str]]
    ) -> list[dict[str, Any]]:
        name = self.name(table)
        request: dict[str, Any] = {
            name: {"Keys": [to_item(k) for k in keys], "ConsistentRead": True}
        }
        found: list[dict[str, Any]] = []
        for attempt in range(MAX_RETRIES):
            response = await self.client.batch_get_item(RequestItems=request)
            found.extend(from_item(i) for i in response.get("Responses", {}).get(name, []))
            unprocessed = response.get("UnprocessedKeys") or {}
            if not unprocessed.get(name, {}).get("Keys"):
                return found
            request = unprocessed
            await _backoff(attempt)
        raise StoreUnavailable(f"batch get on {table} left keys unprocessed")

    async def put(
        self,
        table: str,
        item: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        request: dict[str, Any] = {"TableName": self.name(table), "Item": _fits(to_item(item))}
        _add_condition(request, condition, names, values)
        try:
            await self.client.put_item(**request)
        except ClientError as exc:
            _raise_too_large(exc)
            _raise_condition(exc)

    async def put_new(
        self, table: str, item: dict[str, Any], *, also: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Insert; ConditionFailed when an item with the same key exists. `also`: more
        transact_write steps that succeed or fail with this one."""
        condition = "attribute_not_exists(#k)"
        names = {"#k": self.spec(table).hash_key}
        if also:
            step = {"put": table, "item": item, "condition": condition, "names": names}
            await self.transact_write([step, *also])
            return
        await self.put(table, item, condition=condition, names=names)

    async def update(
        self,
        table: str,
        key: dict[str, str],
        *,
        set_values: dict[str, Any] | None = None,
        remove: Sequence[str] = (),
        expected_version: int | None = None,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        bump_version: bool = True,
        append: dict[str, list[Any]] | None = None,
        also: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """SET/REMOVE attributes and append to lists (`append`, in the same write); with
        `expected_version`, only if `version` still matches. `also`: more transact_write
        steps that succeed or fail with this one (the item is then read back).

        The item must exist. Returns the item as stored after the update.
        """
        names = dict(names or {})
        attr_values: dict[str, Any] = {k: to_attr(v) for k, v in (values or {}).items()}
        clauses: list[str] = []
        for i, (attr, value) in enumerate((set_values or {}).items()):
            if value is None:
                remove = [*remove, attr]
                continue
            names[f"#s{i}"] = attr
            attr_values[f":s{i}"] = to_attr(value)
            clauses.append(f"#s{i} = :s{i}")
        for k, (attr, items) in enumerate((append or {}).items()):
            names[f"#a{k}"] = attr
            attr_values[f":a{k}"] = to_attr(list(items))
            attr_values[":empty_list"] = to_attr([])
            clauses.append(f"#a{k} = list_append(if_not_exists(#a{k}, :empty_list), :a{k})")
        if bump_version:
            names["#ver"] = "version"
            attr_values[":one"] = to_attr(1)
            attr_values[":zero"] = to_attr(0)
            clauses.append("#ver = if_not_exists(#ver, :zero) + :one")
        expression = ("SET " + ", ".join(clauses)) if clauses else ""
        if remove:
            remove_names = []
            for j, attr in enumerate(remove):
                names[f"#d{j}"] = attr
                remove_names.append(f"#d{j}")
            expression += " REMOVE " + ", ".join(remove_names)
        conditions = ["attribute_exists(#key)"]
        names["#key"] = self.spec(table).hash_key
        if expected_version is not None:
            names["#ver"] = "version"
            attr_values[":expected"] = to_attr(expected_version)
            conditions.append("#ver = :expected")
        if condition:
            conditions.append(f"({condition})")
        request: dict[str, Any] = {
            "TableName": self.name(table),
            "Key": to_item(key),
            "UpdateExpression": expression.strip(),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if attr_values:
            request["ExpressionAttributeValues"] = attr_values
            _fits(attr_values)  # what is set alone must fit; the rest DynamoDB judges
        if also:
            del request["ReturnValues"]
            await self.transact_write([{"raw": {"Update": request}}, *also])
            stored = await self.get(table, key)
            if stored is None:  # deleted between the write and the read
                raise ConditionFailed(f"{table} item is gone")
            return stored
        try:
            response = await self.client.update_item(**request)
        except ClientError as exc:
            _raise_too_large(exc)
            _raise_condition(exc)
        return from_item(response["Attributes"])

    async def delete(
        self,
        table: str,
        key: dict[str, str],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        also: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any] | None:
        """The item as it was, None when there was none. With `also` (more transact_write
        steps that succeed or fail with this one) the item must exist (ConditionFailed
        otherwise) and None is returned."""
        if also:
            names = {**(names or {}), "#dk": self.spec(table).hash_key}
            exists = "attribute_exists(#dk)"
            step = {
                "delete": table,
                "key": key,
                "condition": f"{exists} AND ({condition})" if condition else exists,
                "names": names,
                "values": values,
            }
            await self.transact_write([step, *also])
            return None
        request: dict[str, Any] = {
            "TableName": self.name(table),
            "Key": to_item(key),
            "ReturnValues": "ALL_OLD",
        }
        _add_condition(request, condition, names, values)
        try:
            response = await self.client.delete_item(**request)
        except ClientError as exc:
            _raise_condition(exc)
        old = response.get("Attributes")
        return from_item(old) if old else None

    async def batch_delete(self, table: str, keys: Sequence[dict[str, str]]) -> None:
        await self.batch_write(table, deletes=keys)

    async def batch_write(
        self,
        table: str,
        *,
        puts: Sequence[dict[str, Any]] = (),
        deletes: Sequence[dict[str, str]] = (),
    ) -> None:
        """BatchWriteItem in chunks of 25 (DynamoDB's limit), all chunks in flight at once:
        one round trip of latency whatever the number of items."""
        name = self.name(table)
        requests = [{"PutRequest": {"Item": _fits(to_item(i))}} for i in puts] + [
            {"DeleteRequest": {"Key": to_item(k)}} for k in deletes
        ]
        await asyncio.gather(
            *(
                self._batch_write_chunk(table, name, requests[start : start + BATCH_WRITE_CHUNK])
                for start in range(0, len(requests), BATCH_WRITE_CHUNK)
            )
        )

    async def _batch_write_chunk(
        self, table: str, name: str, requests: list[dict[str, Any]]
    ) -> None:
        pending: dict[str, Any] = {name: requests}
        for attempt in range(MAX_RETRIES):
            response = await self.client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending.get(name):
                return
            await _backoff(attempt)
        raise StoreUnavailable(f"batch write on {table} left items unprocessed")

    async def transact_write(self, operations: list[dict[str, Any]]) -> None:
        """Operations in the low-level TransactItems shape, with plain Python values:
        {"put": table, "item": {...}, "condition"?: ...} | {"delete": table, "key": {...}} |
        {"check": table, "key": {...}, "condition": ...} | {"update": table, "key": {...},
        "expression": ...} | {"raw": a TransactItem already in the low-level shape}.
        ConditionFailed when any check loses."""
        items: list[dict[str, Any]] = []
        for op in operations:
            if "raw" in op:
                items.append(op["raw"])
            elif "put" in op:
                entry: dict[str, Any] = {
                    "TableName": self.name(op["put"]),
                    "Item": _fits(to_item(op["item"])),
                }
                _add_condition(entry, op.get("condition"), op.get("names"), op.get("values"))
                items.append({"Put": entry})
            elif "delete" in op:
                entry = {"TableName": self.name(op["delete"]), "Key": to_item(op["key"])}
                _add_condition(entry, op.get("condition"), op.get("names"), op.get("values"))
                items.append({"Delete": entry})
            elif "check" in op:
                entry = {"TableName": self.name(op["check"]), "Key": to_item(op["key"])}
                _add_condition(entry, op["condition"], op.get("names"), op.get("values"))
                items.append({"ConditionCheck": entry})
            elif "update" in op:
                entry = {
                    "TableName": self.name(op["update"]),
                    "Key": to_item(op["key"]),
                    "UpdateExpression": op["expression"],
                }
                _add_condition(entry, op.get("condition"), op.get("names"), op.get("values"))
                items.append({"Update": entry})
        try:
            await self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            _raise_too_large(exc)
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConditionFailed(str(exc)) from exc
            raise

    def _query_request(
        self,
        table: str,
        index: str | None,
        key: KeyCondition,
        flt: Filter | None,
        forward: bool,
    ) -> dict[str, Any]:
        expression, names, values = key.expression()
        request: dict[str, Any] = {
            "TableName": self.name(table),
            "KeyConditionExpression": expression,
            "ScanIndexForward": forward,
        }
        if index:
            request["IndexName"] = index
        if flt is not None:
            request["FilterExpression"] = flt.expression
            names = {**names, **flt.names}
            values = {**values, **{k: to_attr(v) for k, v in flt.values.items()}}
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = values
        return request

    async def query_page(
        self,
        table: str,
        key: KeyCondition,
        *,
        index: str | None = None,
        first: int,
        after: str | None = None,
        forward: bool = True,
        flt: Filter | None = None,
    ) -> Page[dict[str, Any]]:
        """Up to `first` items after the cursor; hasNext is exact (we read one item more)."""
        request = self._query_request(table, index, key, flt, forward)
        if after:
            start = decode_cursor(after)
            if start.get(key.hash_attr) != to_attr(key.hash_value):
                raise BadUserInput("The cursor does not belong to this list", field="after")
            request["ExclusiveStartKey"] = start
        wanted = first + 1
        raw_items: list[dict[str, Any]] = []
        while len(raw_items) < wanted:
            request["Limit"] = max(wanted - len(raw_items), 25 if flt else 1)
            response = await self.client.query(**request)
            raw_items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        key_attrs = self.spec(table).key_attributes(index)
        page_items = raw_items[:first]
        cursors = [
            encode_cursor({a: item[a] for a in key_attrs if a in item}) for item in page_items
        ]

        async def count() -> int:
            return await self.count(table, key, index=index, flt=flt)

        return Page(
            items=[from_item(i) for i in page_items],
            cursors=cursors,
            has_next=len(raw_items) > first,
            has_previous=after is not None,
            count=count,
        )

    async def query_all(
        self,
        table: str,
        key: KeyCondition,
        *,
        index: str | None = None,
        forward: bool = True,
        flt: Filter | None = None,
        limit: int | None = None,
        consistent: bool = False,
    ) -> list[dict[str, Any]]:
        """Every matching item; `consistent` (tables only, not indexes) sees every write
        acknowledged before the read."""
        request = self._query_request(table, index, key, flt, forward)
        if consistent:
            request["ConsistentRead"] = True
        items: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                request["Limit"] = max(limit - len(items), 1)
            response = await self.client.query(**request)
            items.extend(from_item(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items
            request["ExclusiveStartKey"] = last

    async def count(
        self, table: str, key: KeyCondition, *, index: str | None = None, flt: Filter | None = None
    ) -> int:
        request = self._query_request(table, index, key, flt, True)
        request["Select"] = "COUNT"
        total = 0
        while True:
            response = await self.client.query(**request)
            total += int(response.get("Count", 0))
            last = response.get("LastEvaluatedKey")
            if not last:
                return total
            request["ExclusiveStartKey"] = last


def _add_condition(
    request: dict[str, Any],
    condition: str | None,
    names: dict[str, str] | None,
    values: dict[str, Any] | None,
) -> None:
    if condition:
        request["ConditionExpression"] = condition
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = {k: to_attr(v) for k, v in values.items()}


def _raise_condition(exc: ClientError) -> None:
    if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
        raise ConditionFailed(str(exc)) from exc
    raise exc
