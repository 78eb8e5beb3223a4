"""Null tokens: CSVs written for pandas-based tools (``NA``, ``NULL``, ``#N/A`` … for a missing
value) import with their numeric columns numeric, and ``nullValues`` chooses the tokens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Users
from tests.support.client import Api
from tests.support.datasets import (
    DATASET,
    IMPORT_S3,
    csv_bytes,
    follow_import,
    import_and_wait,
    import_s3_and_wait,
    upload,
)
from tests.support.stack import Stack

# pandas' default null tokens, the empty cell first.
TOKENS = ["", "NA", "N/A", "NULL", "null", "None", "NaN", "nan", "#N/A", "n/a"]
PREVIEW = "query($id: ID!) { dataset(id: $id) { preview(limit: 100) { columns rows } } }"
PLAN = "mutation($id: ID!) { planDatasetReimport(input: {id: $id}) { hasSchemaChanges } }"
REIMPORT = "mutation($id: ID!) { reimportDataset(input: {id: $id}) { import { id } } }"


def _token_csv() -> bytes:
    """An integer column and a text column holding every token, one per row, between values."""
    rows: list[list[Any]] = [["id", "amount", "label"], [0, 1, "first"]]
    rows += [[i, token, token] for i, token in enumerate(TOKENS, start=1)]
    rows.append([len(TOKENS) + 1, 3, "last"])
    return csv_bytes(rows)


async def _columns_and_rows(
    api: Api, token: str, dataset_id: str
) -> tuple[dict[str, tuple[str, bool]], list[list[Any]]]:
    """Each column's (type, nullable), and the stored rows as the preview returns them."""
    dataset = (await api.ok(DATASET, {"id": dataset_id}, token=token))["dataset"]
    preview = (await api.ok(PREVIEW, {"id": dataset_id}, token=token))["dataset"]["preview"]
    columns = {c["name"]: (c["type"], c["nullable"]) for c in dataset["columns"]}
    return columns, preview["rows"]


async def _upload_ok(
    api: Api, token: str, content: bytes, **options: Any
) -> tuple[dict[str, tuple[str, bool]], list[list[Any]]]:
    uploaded, final = await import_and_wait(api, token, content, **options)
    assert final["status"] == "SUCCEEDED", final
    return await _columns_and_rows(api, token, uploaded["dataset"]["id"])


async def test_every_default_token_is_null_and_an_integer_column_stays_int64(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("nulls-default")
    columns, rows = await _upload_ok(api, owner["token"], _token_csv())
    assert columns == {
        "id": ("INT64", False),
        "amount": ("INT64", True),
        "label": ("STRING", True),
    }
    assert [row[1] for row in rows] == [1, *[None] * len(TOKENS), 3]
    assert [row[2] for row in rows] == ["first", *[None] * len(TOKENS), "last"]


async def test_an_empty_list_keeps_every_value_as_written(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("nulls-none")
    columns, rows = await _upload_ok(api, owner["token"], _token_csv(), nullValues=[])
    assert columns == {
        "id": ("INT64", False),
        "amount": ("STRING", False),
        "label": ("STRING", False),
    }
    assert [row[1] for row in rows] == ["1", *TOKENS, "3"]
    assert [row[2] for row in rows] == ["first", *TOKENS, "last"]


async def test_a_custom_list_replaces_the_defaults(api: Api, users: Users, worker: Any) -> None:
    owner = await users.create("nulls-custom")
    content = csv_bytes(
        [
            ["amount", "note"],
            [1, "NA"],
            ["-", "NULL"],
            ["欠損", ""],
            [4, "-"],
        ]
    )
    columns, rows = await _upload_ok(api, owner["token"], content, nullValues=["-", "欠損"])
    assert columns == {"amount": ("INT64", True), "note": ("STRING", True)}
    # The defaults, the empty cell among them, are text unless the list names them.
    assert rows == [[1, "NA"], [None, "NULL"], [None, ""], [4, None]]


async def test_a_reimport_reads_the_file_with_the_datasets_null_values(
    api: Api, users: Users, worker: Any, s3: Any, source_bucket: str
) -> None:
    owner = await users.create("nulls-reimport")
    token = owner["token"]
    payload, final = await import_s3_and_wait(
        api,
        token,
        s3,
        source_bucket,
        csv_bytes([["amount", "note"], [1, "NA"], ["-", "x"]]),
        nullValues=["-"],
    )
    assert final["status"] == "SUCCEEDED", final
    dataset = payload["dataset"]
    assert dataset["sourceConfig"]["nullValues"] == ["-"]
    s3.put_object(
        Bucket=source_bucket,
        Key=dataset["sourceConfig"]["key"],
        Body=csv_bytes([["amount", "note"], [5, "y"], ["-", "NA"], [7, "N/A"]]),
    )
    # With the default tokens instead, "-" would make amount STRING: a change to refuse.
    plan = await api.ok(PLAN, {"id": dataset["id"]}, token=token)
    assert plan["planDatasetReimport"]["hasSchemaChanges"] is False
    again = await api.ok(REIMPORT, {"id": dataset["id"]}, token=token)
    last = (await follow_import(api, token, again["reimportDataset"]["import"]["id"]))[-1]
    assert last["status"] == "SUCCEEDED" and last["dataset"]["version"] == 2, last
    columns, rows = await _columns_and_rows(api, token, dataset["id"])
    assert columns == {"amount": ("INT64", True), "note": ("STRING", False)}
    assert rows == [[5, "y"], [None, "NA"], [7, "N/A"]]


async def test_a_dataset_imported_before_null_tokens_keeps_its_types_on_reimport(
    api: Api, users: Users, worker: Any, s3: Any, source_bucket: str, stack: Stack
) -> None:
    """Such a dataset read only empty cells as null; re-importing the same file must not turn
    its "NA" text into nulls (a type change the owner never asked for)."""
    owner = await users.create("nulls-legacy")
    token = owner["token"]
    content = csv_bytes([["code", "amount"], ["NA", 1], ["1", ""]])
    payload, final = await import_s3_and_wait(
        api, token, s3, source_bucket, content, nullValues=[""]
    )
    assert final["status"] == "SUCCEEDED", final
    dataset_id = payload["dataset"]["id"]
    # What a dataset record written before nullValues existed looks like.
    stack.aws("dynamodb").update_item(
        TableName=f"{stack.env['TILEGRAPH_TABLE_PREFIX']}datasets",
        Key={"id": {"S": dataset_id}},
        UpdateExpression="REMOVE source_config.nullValues",
    )
    config = (await api.ok(DATASET, {"id": dataset_id}, token=token))["dataset"]["sourceConfig"]
    assert "nullValues" not in config
    plan = await api.ok(PLAN, {"id": dataset_id}, token=token)
    assert plan["planDatasetReimport"]["hasSchemaChanges"] is False
    again = await api.ok(REIMPORT, {"id": dataset_id}, token=token)
    last = (await follow_import(api, token, again["reimportDataset"]["import"]["id"]))[-1]
    assert last["status"] == "SUCCEEDED", last
    columns, rows = await _columns_and_rows(api, token, dataset_id)
    assert columns == {"code": ("STRING", False), "amount": ("INT64", True)}
    assert rows == [["NA", 1], ["1", None]]


@pytest.mark.parametrize(
    ("null_values", "expected"),
    [
        ([f"t{i}" for i in range(51)], "At most 50"),
        (["x" * 65], "at most 64 characters"),
    ],
    ids=["too many", "too long"],
)
async def test_bad_null_values_are_refused(
    api: Api,
    users: Users,
    s3: Any,
    source_bucket: str,
    null_values: list[str],
    expected: str,
) -> None:
    owner = await users.create("nulls-bad")
    token = owner["token"]
    uploaded = await upload(api, token, csv_bytes([["a"], [1]]), nullValues=null_values)
    refused = uploaded["errors"][0]
    s3_input = {"name": "x", "bucket": source_bucket, "key": "any.csv", "nullValues": null_values}
    from_s3 = await api.fail(IMPORT_S3, {"input": s3_input}, token=token)
    for error in (refused, from_s3.error):
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == "nullValues"
        assert expected in error["message"]
    count = await api.ok("{ datasets { totalCount } }", token=token)
    assert count["datasets"]["totalCount"] == 0
