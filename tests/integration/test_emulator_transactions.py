"""The AWS emulator's TransactWriteItems is all or nothing, as DynamoDB's is: a transaction
with a failing step leaves every item it named as it was (new items absent, changed and
deleted ones back), and costs the items it writes, not the size of the tables."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.client import Api
from tests.support.stack import Stack


def _table(stack: Stack) -> str:
    return f"{stack.env['TILEGRAPH_TABLE_PREFIX']}card_placements"


def _get(client: Any, table: str, card: str, dashboard: str) -> dict[str, Any] | None:
    found = client.get_item(
        TableName=table,
        Key={"card_id": {"S": card}, "dashboard_id": {"S": dashboard}},
        ConsistentRead=True,
    )
    return found.get("Item")


def test_a_failed_transaction_leaves_every_item_as_it_was(stack: Stack, api: Api) -> None:
    client, table = stack.aws("dynamodb"), _table(stack)
    card = f"card_{secrets.token_hex(6)}"
    client.put_item(
        TableName=table,
        Item={"card_id": {"S": card}, "dashboard_id": {"S": "kept"}, "n": {"N": "1"}},
    )
    client.put_item(TableName=table, Item={"card_id": {"S": card}, "dashboard_id": {"S": "gone"}})
    steps = [
        {
            "Put": {
                "TableName": table,
                "Item": {"card_id": {"S": card}, "dashboard_id": {"S": "new"}},
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": {"card_id": {"S": card}, "dashboard_id": {"S": "kept"}},
                "UpdateExpression": "SET n = :two",
                "ExpressionAttributeValues": {":two": {"N": "2"}},
            }
        },
        {
            "Delete": {
                "TableName": table,
                "Key": {"card_id": {"S": card}, "dashboard_id": {"S": "gone"}},
            }
        },
        {
            "ConditionCheck": {
                "TableName": table,
                "Key": {"card_id": {"S": card}, "dashboard_id": {"S": "absent"}},
                "ConditionExpression": "attribute_exists(card_id)",
            }
        },
    ]
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=steps)
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _get(client, table, card, "new") is None
    assert _get(client, table, card, "kept") == {
        "card_id": {"S": card},
        "dashboard_id": {"S": "kept"},
        "n": {"N": "1"},
    }
    assert _get(client, table, card, "gone") is not None

    client.transact_write_items(TransactItems=steps[:3])  # without the failing check: all
    assert _get(client, table, card, "new") is not None
    assert _get(client, table, card, "kept")["n"] == {"N": "2"}  # type: ignore[index]
    assert _get(client, table, card, "gone") is None


def test_a_transaction_costs_its_items_not_the_size_of_its_table(stack: Stack, api: Api) -> None:
    """moto alone copies each named table per transaction: with 2,000 more items in the
    table, a transaction of two items would take several times longer. (`api`: the API
    creates the tables.)"""
    client, table = stack.aws("dynamodb"), _table(stack)
    card = f"card_{secrets.token_hex(6)}"

    def median_transaction_seconds() -> float:
        times = []
        for i in range(15):
            started = time.perf_counter()
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"card_id": {"S": card}, "dashboard_id": {"S": f"t{i}-{j}"}},
                        }
                    }
                    for j in range(2)
                ]
            )
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    small = median_transaction_seconds()
    for start in range(0, 2000, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {
                                "card_id": {"S": f"filler_{secrets.token_hex(4)}"},
                                "dashboard_id": {"S": f"d{start + k}"},
                            }
                        }
                    }
                    for k in range(25)
                ]
            }
        )
    large = median_transaction_seconds()
    assert large < small * 3 + 0.01, (small, large)
