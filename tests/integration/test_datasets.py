"""Datasets through the API: upload, S3 import, typed Parquet, previews, filters' values,
metadata, deletion, ownership, audit and the upload size cap."""

from __future__ import annotations

import io
import json
import secrets
import time
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from tests.conftest import Users
from tests.support.cards import create_card
from tests.support.client import Api
from tests.support.datasets import (
    DATASET,
    IMPORT_S3,
    UPLOAD,
    big_csv,
    csv_bytes,
    follow_import,
    import_and_wait,
    upload,
)
from tests.support.inprocess import InProcess
from tests.support.stack import Stack

SALES = [
    ["region", "product", "amount", "day", "active", "flag"],
    ["東京", "apple", 10, "2024/01/31", "yes", 1],
    ["大阪", "pear", 2.5, "2024/02/01", "no", 0],
    ["東京", "plum", "", "2024/02/02", "yes", 1],
]


async def test_upload_types_preview_and_column_values(api: Api, users: Users, worker: Any) -> None:
    owner = await users.create("ds-owner")
    content = csv_bytes(SALES, delimiter="\t", encoding="cp932")
    uploaded, final = await import_and_wait(api, owner["token"], content, name="Sales")
    assert uploaded["import"]["status"] == "QUEUED" and uploaded["dataset"]["version"] == 0
    assert final["status"] == "SUCCEEDED", final
    assert final["rowsProcessed"] == 3 and final["dataset"]["version"] == 1

    data = await api.ok(DATASET, {"id": uploaded["dataset"]["id"]}, token=owner["token"])
    dataset = data["dataset"]
    assert dataset["rowCount"] == 3 and dataset["columnCount"] == 6
    types = {c["name"]: (c["type"], c["nullable"]) for c in dataset["columns"]}
    assert types == {
        "region": ("STRING", False),
        "product": ("STRING", False),
        "amount": ("FLOAT64", True),
        "day": ("DATE", False),
        "active": ("BOOL", False),
        "flag": ("INT64", False),
    }
    assert dataset["lastImportBy"]["id"] == owner["id"] and dataset["lastImportAt"]
    assert dataset["latestImport"] == {"id": uploaded["import"]["id"], "status": "SUCCEEDED"}
    assert dataset["sourceType"] == "CSV"

    preview = await api.ok(
        "query($id: ID!) { dataset(id: $id) { preview(limit: 2) { columns rows totalRows previewRows } } }",
        {"id": dataset["id"]},
        token=owner["token"],
    )
    p = preview["dataset"]["preview"]
    assert p["columns"] == SALES[0] and p["totalRows"] == 3 and p["previewRows"] == 2
    assert p["rows"][0] == ["東京", "apple", 10.0, "2024-01-31", True, 1]
    assert p["rows"][1][2] == 2.5

    values = "query($id: ID!, $c: String!, $s: String, $l: Int) { dataset(id: $id) { columnValues(column: $c, search: $s, limit: $l) } }"
    regions = await api.ok(values, {"id": dataset["id"], "c": "region"}, token=owner["token"])
    assert regions["dataset"]["columnValues"] == ["大阪", "東京"]
    products = await api.ok(
        values, {"id": dataset["id"], "c": "product", "s": "P"}, token=owner["token"]
    )
    assert products["dataset"]["columnValues"] == ["apple", "pear", "plum"]
    limited = await api.ok(
        values, {"id": dataset["id"], "c": "product", "l": 1}, token=owner["token"]
    )
    assert limited["dataset"]["columnValues"] == ["apple"]
    amounts = await api.ok(values, {"id": dataset["id"], "c": "amount"}, token=owner["token"])
    assert amounts["dataset"]["columnValues"] == ["10", "2.5"]

    for query, variables in [
        ("query($id: ID!) { dataset(id: $id) { preview(limit: 1001) { previewRows } } }", {}),
        ("query($id: ID!) { dataset(id: $id) { preview(limit: 0) { previewRows } } }", {}),
        (values, {"c": "region", "l": 501}),
        (values, {"c": "no_such_column"}),
    ]:
        bad = await api.fail(query, {"id": dataset["id"], **variables}, token=owner["token"])
        assert bad.code == "BAD_USER_INPUT", query


async def test_late_subscriber_gets_the_final_state_once(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("late")
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes([["a"], [1], [2]]))
    assert final["status"] == "SUCCEEDED"
    events = await follow_import(api, owner["token"], uploaded["import"]["id"])
    assert [e["status"] for e in events] == ["SUCCEEDED"]
    assert events[0]["rowsProcessed"] == 2 and events[0]["progress"] == 1.0


@pytest.mark.parametrize(
    ("content", "expected", "line"),
    [
        (b"a,b\n1,2\n3,4,5\n6,7\n", "line 3", 3),
        (b"a,b,c\n", "no data rows", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20, "not a text", None),
    ],
    ids=["ragged", "header only", "binary"],
)
async def test_bad_files_fail_cleanly(
    api: Api, users: Users, worker: Any, content: bytes, expected: str, line: int | None
) -> None:
    owner = await users.create("badfiles")
    uploaded, final = await import_and_wait(api, owner["token"], content, name="bad")
    assert final["status"] == "FAILED"
    assert expected in final["error"]["message"], final["error"]
    assert final["error"]["code"] == "RUNTIME_ERROR"
    if line is not None:
        assert final["error"]["line"] == line
    data = await api.ok(DATASET, {"id": uploaded["dataset"]["id"]}, token=owner["token"])
    assert data["dataset"]["version"] == 0 and data["dataset"]["rowCount"] == 0


DELETE = "mutation($id: ID!) { deleteDataset(input: {id: $id}) { deletedId } }"
CARD_CODE = """def render(dataset, filters, params):
    return HTMLResult(html=str(len(dataset)))
"""


async def test_a_dataset_whose_first_import_failed_says_so_and_deletes_without_force(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("firstfail")
    token = owner["token"]
    uploaded, final = await import_and_wait(api, token, b"a,b\n1,2\n3,4,5\n", name="broken")
    assert final["status"] == "FAILED"
    failed_id = uploaded["dataset"]["id"]
    data = await api.ok(
        "query($id: ID!) { dataset(id: $id) { version latestImport { id status "
        "error { message line } } } }",
        {"id": failed_id},
        token=token,
    )
    latest = data["dataset"]["latestImport"]
    assert data["dataset"]["version"] == 0
    assert latest["id"] == uploaded["import"]["id"] and latest["status"] == "FAILED"
    assert latest["error"]["line"] == 3
    # A card was pointed at it, but it never had rows to read: no force needed.
    await create_card(api, token, CARD_CODE, [failed_id])
    deleted = await api.ok(DELETE, {"id": failed_id}, token=token)
    assert deleted["deleteDataset"]["deletedId"] == failed_id
    assert (await api.fail(DATASET, {"id": failed_id}, token=token)).code == "NOT_FOUND"

    # A published dataset a card reads still needs force.
    published, _ = await import_and_wait(api, token, csv_bytes([["a"], [1]]), name="good")
    await create_card(api, token, CARD_CODE, [published["dataset"]["id"]], name="reader")
    refused = await api.fail(DELETE, {"id": published["dataset"]["id"]}, token=token)
    assert refused.code == "CONFLICT" and "card 'reader'" in refused.error["message"]


async def test_an_empty_upload_is_refused(api: Api, users: Users) -> None:
    owner = await users.create("empty")
    empty = await upload(api, owner["token"], b"", name="empty")
    assert empty["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_s3_import_and_a_missing_object(
    api: Api, users: Users, worker: Any, s3: Any, source_bucket: str, stack: Stack
) -> None:
    owner = await users.create("s3import")
    key = f"exports/{secrets.token_hex(4)}.csv"
    s3.put_object(
        Bucket=source_bucket,
        Key=key,
        Body=csv_bytes([["id", "score"], [1, 0.5], [2, 1.5]], delimiter=";"),
    )
    data = await api.ok(
        IMPORT_S3,
        {"input": {"name": "From S3", "bucket": source_bucket, "key": key}},
        token=owner["token"],
    )
    payload = data["importDatasetFromS3"]
    assert payload["dataset"]["sourceType"] == "S3_CSV"
    assert payload["dataset"]["sourceConfig"] == {
        "bucket": source_bucket,
        "key": key,
        "nullValues": ["", "NA", "N/A", "NULL", "null", "None", "NaN", "nan", "#N/A", "n/a"],
    }
    final = (await follow_import(api, owner["token"], payload["import"]["id"]))[-1]
    assert final["status"] == "SUCCEEDED" and final["rowsProcessed"] == 2

    missing = await api.fail(
        IMPORT_S3,
        {"input": {"name": "x", "bucket": source_bucket, "key": "nope.csv"}},
        token=owner["token"],
    )
    assert missing.code == "BAD_USER_INPUT" and missing.error["extensions"]["field"] == "key"
    assert "does not exist" in missing.error["message"]
    own_bucket = await api.fail(
        IMPORT_S3,
        {"input": {"name": "x", "bucket": stack.env["TILEGRAPH_BUCKET"], "key": "anything"}},
        token=owner["token"],
    )
    assert own_bucket.code == "BAD_USER_INPUT"


async def test_a_file_put_by_multipart_upload_imports_and_reimports(
    api: Api, users: Users, worker: Any, s3: Any, source_bucket: str
) -> None:
    """What `aws s3 cp` of a large file does: parts with CRC32 checksums. The object's
    checksum is then a checksum of checksums, which the emulator must mark as such, or
    every read of the object fails its checksum check."""
    owner = await users.create("s3-multipart")
    key = f"exports/{secrets.token_hex(4)}.csv"
    content = big_csv(11)
    s3.upload_fileobj(
        io.BytesIO(content),
        source_bucket,
        key,
        Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20),
    )
    assert s3.head_object(Bucket=source_bucket, Key=key)["ETag"].endswith('-3"')
    rows = content.count(b"\n") - 1
    data = await api.ok(
        IMPORT_S3,
        {"input": {"name": "multipart", "bucket": source_bucket, "key": key}},
        token=owner["token"],
    )
    dataset_id = data["importDatasetFromS3"]["dataset"]["id"]
    final = await follow_import(api, owner["token"], data["importDatasetFromS3"]["import"]["id"])
    assert final[-1]["status"] == "SUCCEEDED", final[-1]
    assert final[-1]["rowsProcessed"] == rows

    again = await api.ok(
        "mutation($id: ID!) { reimportDataset(input: {id: $id}) { import { id } } }",
        {"id": dataset_id},
        token=owner["token"],
    )
    final = await follow_import(api, owner["token"], again["reimportDataset"]["import"]["id"])
    assert final[-1]["status"] == "SUCCEEDED", final[-1]
    assert final[-1]["dataset"]["version"] == 2 and final[-1]["dataset"]["rowCount"] == rows


async def test_s3_imports_come_only_from_allow_listed_buckets(
    api: Api,
    users: Users,
    worker: Any,
    s3: Any,
    source_bucket: str,
    stack: Stack,
    inprocess: InProcess,
) -> None:
    owner = await users.create("s3-allow")
    # A bucket the server's credentials can read, but the operator did not list.
    readable = f"elsewhere-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=readable)
    s3.put_object(Bucket=readable, Key="secret.csv", Body=csv_bytes([["a"], [1]]))
    own = stack.env["TILEGRAPH_BUCKET"]
    attempts = [
        (readable, "secret.csv"),  # exists, readable
        (readable, "missing.csv"),  # bucket exists, key does not
        (f"no-such-{secrets.token_hex(4)}", "secret.csv"),  # no such bucket
        (own, "anything.csv"),  # Tilegraph's own data
    ]
    refusals = []
    for bucket, key in attempts:
        response = await api.fail(
            IMPORT_S3, {"input": {"name": "x", "bucket": bucket, "key": key}}, token=owner["token"]
        )
        refusals.append(
            (response.code, response.error["extensions"].get("field"), response.error["message"])
        )
    assert refusals[0][:2] == ("BAD_USER_INPUT", "bucket")
    assert len(set(refusals)) == 1, refusals
    assert (await api.ok("{ datasets { totalCount } }", token=owner["token"]))["datasets"][
        "totalCount"
    ] == 0

    # A dataset imported while its bucket was listed: an API whose operator set no list
    # (the default) refuses new imports from it and re-imports of it alike.
    key = f"exports/{secrets.token_hex(4)}.csv"
    s3.put_object(Bucket=source_bucket, Key=key, Body=csv_bytes([["id"], [1]]))
    data = await api.ok(
        IMPORT_S3,
        {"input": {"name": "listed", "bucket": source_bucket, "key": key}},
        token=owner["token"],
    )
    dataset_id = data["importDatasetFromS3"]["dataset"]["id"]
    await follow_import(api, owner["token"], data["importDatasetFromS3"]["import"]["id"])
    closed = await inprocess.start_api({"TILEGRAPH_S3_IMPORT_BUCKETS": ""})
    closed_api = Api(closed.url, closed.ws_url, closed.transport)
    try:
        fresh = await closed_api.fail(
            IMPORT_S3,
            {"input": {"name": "y", "bucket": source_bucket, "key": key}},
            token=owner["token"],
        )
        assert (fresh.code, fresh.error["message"]) == ("BAD_USER_INPUT", refusals[0][2])
        again = await closed_api.fail(
            "mutation($id: ID!) { reimportDataset(input: {id: $id, force: true}) "
            "{ import { id } } }",
            {"id": dataset_id},
            token=owner["token"],
        )
        assert again.code == "BAD_USER_INPUT" and again.error["extensions"]["field"] == "id"
    finally:
        await closed_api.close()


async def test_datasets_belong_to_their_owner(api: Api, users: Users, worker: Any) -> None:
    owner = await users.create("mine")
    stranger = await users.create("stranger")
    uploaded, _ = await import_and_wait(api, owner["token"], csv_bytes([["a"], [1]]))
    dataset_id, import_id = uploaded["dataset"]["id"], uploaded["import"]["id"]
    for query, variables in [
        (DATASET, {"id": dataset_id}),
        ("query($id: ID!) { datasetImport(id: $id) { id } }", {"id": import_id}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": dataset_id}),
        (
            'mutation($id: ID!) { updateDataset(input: {id: $id, name: "x"}) { dataset { id } } }',
            {"id": dataset_id},
        ),
        (
            "mutation($id: ID!) { deleteDataset(input: {id: $id}) { deletedId } }",
            {"id": dataset_id},
        ),
        ("mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }", {"id": import_id}),
    ]:
        response = await api.fail(query, variables, token=stranger["token"])
        assert response.code == "NOT_FOUND", query
    events = await follow_import(api, stranger["token"], import_id)
    assert events[0]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    mine = await api.ok("{ datasets { totalCount edges { node { id } } } }", token=owner["token"])
    assert [e["node"]["id"] for e in mine["datasets"]["edges"]] == [dataset_id]
    theirs = await api.ok("{ datasets { totalCount } }", token=stranger["token"])
    assert theirs["datasets"]["totalCount"] == 0


async def test_update_delete_and_audit(
    api: Api, users: Users, worker: Any, admin_token: str, s3: Any, stack: Stack
) -> None:
    owner = await users.create("lifecycle")
    uploaded, _ = await import_and_wait(api, owner["token"], csv_bytes([["a", "b"], [1, 2]]))
    dataset_id = uploaded["dataset"]["id"]
    updated = await api.ok(
        """mutation($id: ID!) { updateDataset(input: {id: $id, name: "Renamed", description: "d",
           columns: [{name: "a", description: "the a"}]}) {
           dataset { name description columns { name description } } } }""",
        {"id": dataset_id},
        token=owner["token"],
    )
    d = updated["updateDataset"]["dataset"]
    assert d["name"] == "Renamed" and d["description"] == "d"
    assert d["columns"] == [
        {"name": "a", "description": "the a"},
        {"name": "b", "description": None},
    ]
    unknown = await api.fail(
        'mutation($id: ID!) { updateDataset(input: {id: $id, columns: [{name: "zz"}]}) { dataset { id } } }',
        {"id": dataset_id},
        token=owner["token"],
    )
    assert unknown.code == "BAD_USER_INPUT"

    bucket = stack.env["TILEGRAPH_BUCKET"]
    stored = s3.list_objects_v2(Bucket=bucket, Prefix=f"datasets/{dataset_id}/")
    assert stored.get("KeyCount", 0) >= 1
    deleted = await api.ok(
        "mutation($id: ID!) { deleteDataset(input: {id: $id}) { deletedId } }",
        {"id": dataset_id},
        token=owner["token"],
    )
    assert deleted["deleteDataset"]["deletedId"] == dataset_id
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"datasets/{dataset_id}/").get("KeyCount") == 0
    gone = await api.fail(DATASET, {"id": dataset_id}, token=owner["token"])
    assert gone.code == "NOT_FOUND"

    logs = await api.ok(
        "query($t: String!) { auditLogs(filter: {targetId: $t}) { edges { node { eventType details user { id } } } } }",
        {"t": dataset_id},
        token=admin_token,
    )
    events = {e["node"]["eventType"]: e["node"] for e in logs["auditLogs"]["edges"]}
    assert set(events) == {"DATASET_CREATED", "DATASET_IMPORTED", "DATASET_DELETED"}
    imported = events["DATASET_IMPORTED"]["details"]
    assert imported["rows"] == 1 and imported["version"] == 1 and imported["bytes"] > 0
    assert all(e["user"]["id"] == owner["id"] for e in events.values())


async def test_the_upload_size_cap(
    stack: Stack, inprocess: InProcess, users: Users, s3: Any
) -> None:
    capped = await inprocess.start_api({"TILEGRAPH_UPLOAD_MAX_BYTES": str(1 << 20)})
    api = Api(capped.url, capped.ws_url)
    try:
        owner = await users.create("capped")
        bucket = stack.env["TILEGRAPH_BUCKET"]

        def staged() -> set[str]:
            listing = s3.list_objects_v2(Bucket=bucket, Prefix="staging/")
            return {o["Key"] for o in listing.get("Contents", [])}

        before = staged()
        row = b"0123456789," * 9 + b"x\n"
        just_over = await upload(api, owner["token"], row * ((1 << 20) // len(row) + 10))
        assert just_over["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert just_over["errors"][0]["extensions"]["field"] == "file"
        far_over = await upload(api, owner["token"], row * ((3 << 20) // len(row)))
        assert far_over["status"] == 413
        assert far_over["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert staged() == before  # nothing of the refused uploads was kept
        under = await upload(api, owner["token"], row * 1000)
        assert under["import"]["status"] == "QUEUED"
    finally:
        await api.close()


async def _multipart(api: Api, token: str, operations: Any, files_map: Any) -> Any:
    response = await api.http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps(files_map)},
        files={"0": ("data.csv", b"a,b\n1,2\n", "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response


@pytest.mark.parametrize(
    ("variables", "files_map"),
    [
        ({"input": {"name": "n", "file": None}}, {"0": ["variables.input.name.x"]}),
        ({"input": {"name": "n", "file": None}}, {"0": ["variables.input.name"]}),
        ({"input": None}, {"0": ["variables.input.file"]}),
        ({"input": {"name": "n", "file": None}}, {"0": ["variables.input.file.0"]}),
        ({"input": {"name": "n", "file": None}}, {"0": "variables.input.file"}),
        ({"input": {"name": "n", "file": None}}, ["variables.input.file"]),
    ],
    ids=["into a string", "onto a string", "into null", "below the file", "not a list", "a list"],
)
async def test_multipart_map_paths_that_lead_nowhere_are_bad_input(
    api: Api, users: Users, variables: Any, files_map: Any
) -> None:
    owner = await users.create("badmap")
    response = await _multipart(
        api, owner["token"], {"query": UPLOAD, "variables": variables}, files_map
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "map"}, error


async def test_an_upload_sent_as_a_plain_value_is_bad_input(api: Api, users: Users) -> None:
    owner = await users.create("plainfile")
    response = await api.post(
        UPLOAD, {"input": {"name": "n", "file": "a,b\n1,2\n"}}, token=owner["token"]
    )
    assert response.code == "BAD_USER_INPUT", response.body
    assert response.error["extensions"]["field"] == "file"
    assert "multipart" in response.error["message"]


@pytest.mark.parametrize(
    "bucket", ["arn:aws:s3:::x", "s3://x", "x/", "ab", "Has_Upper", "a..b", "192.168.1.1", " "]
)
async def test_s3_bucket_names_follow_s3s_rules(api: Api, users: Users, bucket: str) -> None:
    owner = await users.create("bucketname")
    response = await api.fail(
        IMPORT_S3, {"input": {"name": "x", "bucket": bucket, "key": "a.csv"}}, token=owner["token"]
    )
    assert response.code == "BAD_USER_INPUT", response.body
    assert response.error["extensions"]["field"] == "bucket"


async def test_oversize_descriptions_are_refused_with_their_field(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("longtext")
    huge = "d" * 900_000
    uploaded = await upload(api, owner["token"], csv_bytes(SALES), name="t", description=huge)
    assert uploaded["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "description",
        "requestId": uploaded["errors"][0]["extensions"]["requestId"],
    }
    dataset_id = (await upload(api, owner["token"], csv_bytes(SALES), name="t"))["dataset"]["id"]
    update = "mutation($i: UpdateDatasetInput!) { updateDataset(input: $i) { dataset { id } } }"
    long_description = await api.fail(
        update, {"i": {"id": dataset_id, "description": huge}}, token=owner["token"]
    )
    assert long_description.code == "BAD_USER_INPUT"
    assert long_description.error["extensions"]["field"] == "description"


async def test_a_csv_wider_than_the_column_cap_fails_while_its_header_is_read(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("wide")
    columns = 100_000
    content = ",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join("1" * columns) + "\n"
    started = time.monotonic()
    _, final = await import_and_wait(api, owner["token"], content.encode(), name="wide")
    elapsed = time.monotonic() - started
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "RUNTIME_ERROR" and final["error"]["line"] == 1
    assert "100000 fields" in final["error"]["message"] and "1000" in final["error"]["message"]
    assert elapsed < 30, f"took {elapsed:.1f} s"
