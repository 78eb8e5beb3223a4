"""The AWS emulator answers a Query as DynamoDB does, in key order and in pages, whether it
reads the table's partition or an index, and a query by partition key costs that partition,
not the size of the table."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stack import Stack


@pytest.fixture
def table(stack: Stack) -> Iterator[tuple[Any, str]]:
    """A table of its own: partition `p`, sort `s`, and an index on (`g`, `s`)."""
    client = stack.aws("dynamodb")
    name = f"{stack.env['TILEGRAPH_TABLE_PREFIX']}query_check_{secrets.token_hex(4)}"
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "p", "KeyType": "HASH"},
            {"AttributeName": "s", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "S"} for attribute in ("p", "s", "g")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "s", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield client, name
    finally:
        client.delete_table(TableName=name)


def _fill(client: Any, name: str, items: list[dict[str, str]]) -> None:
    for start in range(0, len(items), 25):
        client.batch_write_item(
            RequestItems={
                name: [
                    {"PutRequest": {"Item": {k: {"S": v} for k, v in item.items()}}}
                    for item in items[start : start + 25]
                ]
            }
        )


def _pages(client: Any, **query: Any) -> tuple[list[str], int]:
    """Every `s` the query returns, following LastEvaluatedKey, and the number of pages."""
    found: list[str] = []
    pages = 0
    start: dict[str, Any] | None = None
    while True:
        answer = client.query(**query, **({"ExclusiveStartKey": start} if start else {}))
        pages += 1
        found += [item["s"]["S"] for item in answer["Items"]]
        start = answer.get("LastEvaluatedKey")
        if start is None:
            return found, pages


def test_a_partition_query_returns_that_partition_in_order_and_in_pages(
    table: tuple[Any, str],
) -> None:
    client, name = table
    # Written out of order, across three partitions.
    rows = [{"p": f"p{i % 3}", "s": f"s{(i * 7) % 30:02d}"} for i in range(30)]
    _fill(client, name, rows)
    mine = sorted(row["s"] for row in rows if row["p"] == "p1")
    assert len(mine) == 10

    by_key = {"TableName": name, "KeyConditionExpression": "p = :p"}
    values = {":p": {"S": "p1"}}
    assert _pages(client, **by_key, ExpressionAttributeValues=values) == (mine, 1)
    assert _pages(client, **by_key, ExpressionAttributeValues=values, Limit=3) == (mine, 4)
    assert _pages(
        client, **by_key, ExpressionAttributeValues=values, Limit=4, ScanIndexForward=False
    ) == (mine[::-1], 3)
    ranged = {
        "TableName": name,
        "KeyConditionExpression": "p = :p AND s BETWEEN :a AND :b",
        "ExpressionAttributeValues": {**values, ":a": {"S": "s05"}, ":b": {"S": "s20"}},
    }
    assert _pages(client, **ranged, Limit=2)[0] == [s for s in mine if "s05" <= s <= "s20"]

    # A partition that does not exist: no items, and none made by asking.
    absent = _pages(client, **by_key, ExpressionAttributeValues={":p": {"S": "nope"}})
    assert absent == ([], 1)
    assert client.scan(TableName=name, Select="COUNT")["Count"] == 30


def test_an_index_query_returns_the_indexed_items_in_index_order(table: tuple[Any, str]) -> None:
    client, name = table
    # Only some items carry `g`: the index holds those alone.
    rows = [
        {"p": f"p{i % 4}", "s": f"s{i:02d}", **({"g": f"g{i % 2}"} if i % 3 else {})}
        for i in range(24)
    ]
    _fill(client, name, rows)
    indexed = sorted(row["s"] for row in rows if row.get("g") == "g1")
    query = {
        "TableName": name,
        "IndexName": "by_g",
        "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "g1"}},
    }
    assert _pages(client, **query) == (indexed, 1)
    assert _pages(client, **query, Limit=3)[0] == indexed
    assert _pages(client, **query, Limit=5, ScanIndexForward=False)[0] == indexed[::-1]


def test_a_partition_query_costs_its_partition_not_the_table(table: tuple[Any, str]) -> None:
    """moto alone lists and sorts the whole table for every query: with 3,000 more items in
    other partitions, a query of five would take many times longer."""
    client, name = table
    _fill(client, name, [{"p": "small", "s": f"s{i}"} for i in range(5)])

    def median_query_seconds() -> float:
        times = []
        for _ in range(15):
            started = time.perf_counter()
            client.query(
                TableName=name,
                KeyConditionExpression="p = :p",
                ExpressionAttributeValues={":p": {"S": "small"}},
            )
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    small = median_query_seconds()
    _fill(client, name, [{"p": f"other{i % 50}", "s": f"s{i}"} for i in range(3000)])
    large = median_query_seconds()
    assert large < small * 3 + 0.01, (small, large)
