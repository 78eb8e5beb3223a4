"""Card outputs beyond HTML, through the API: metrics and a table (first rows, downloads as
CSV, XLSX and Parquet through presigned links that need no token), kept with the cached
result, refused when malformed or too large, and only for whoever may read the run."""

from __future__ import annotations

import csv
import io
import secrets
import time
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import openpyxl
import pyarrow.parquet as pq
import pytest

from tests.conftest import Users
from tests.support.cards import create_card, render
from tests.support.client import Api
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess
from tests.support.stack import Stack

RESULT = """result { html cached metrics table { columns rowCount rows(limit: 2) downloadUrl } }
  error { code message }"""
FOLLOW = "subscription($id: ID!) { cardExecution(id: $id) { id status " + RESULT + " } }"
QUERY = "query($id: ID!) { execution(id: $id) { status ... on CardExecution { " + RESULT + " } } }"
EXECUTE = """mutation($i: ExecuteCardInput!) { executeCard(input: $i) { execution { id } } }"""
TABLE = """query($id: ID!, $limit: Int, $format: TableFormat) { execution(id: $id) {
  ... on CardExecution { result { table { rows(limit: $limit) downloadUrl(format: $format) } } }
} }"""

OUTPUTS = render("""
from datetime import date
table = pd.DataFrame({
    "region": ["north", "south", "east"],
    "amount": dataset["amount"].astype("int64"),
    "share": [0.25, 0.5, None],
    "ok": [True, False, True],
    "day": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)],
})
return HTMLResult(html="<p>sales</p>", metrics={"total": 42.5, "count": 3}, table=table)
""")
COLUMNS = ["region", "amount", "share", "ok", "day"]
ROWS = [
    ["north", 10, 0.25, True, "2024-01-01"],
    ["south", 20, 0.5, False, "2024-01-02"],
    ["east", 12, None, True, "2024-01-03"],
]


@pytest.fixture(scope="module")
async def owner(users: Users) -> dict[str, str]:
    return await users.create("card-outputs")


@pytest.fixture(scope="module")
async def sales(api: Api, owner: dict[str, str], worker: Any) -> str:
    rows = [["amount"], [10], [20], [12]]
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(rows), name="sales")
    assert final["status"] == "SUCCEEDED"
    return str(uploaded["dataset"]["id"])


async def follow(api: Api, token: str, execution_id: str) -> list[dict[str, Any]]:
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW, {"id": execution_id})
        return [p["data"]["cardExecution"] async for p in session.messages(op)]


async def run(api: Api, token: str, card_id: str, **options: Any) -> tuple[str, dict[str, Any]]:
    """Execute; the id and the final state over the subscription."""
    data = await api.ok(EXECUTE, {"i": {"id": card_id, **options}}, token=token)
    execution_id = data["executeCard"]["execution"]["id"]
    return execution_id, (await follow(api, token, execution_id))[-1]


async def download(url: str) -> httpx.Response:
    """As a browser following the link: no Authorization header, no cookie."""
    async with httpx.AsyncClient() as plain:
        response = await plain.get(url)
    assert response.status_code == 200, response.text
    assert "authorization" not in response.request.headers
    return response


async def table_of(api: Api, token: str, execution_id: str, **variables: Any) -> Any:
    response = await api.post(TABLE, {"id": execution_id, **variables}, token=token)
    return response


async def test_metrics_and_table_are_returned_and_download_without_a_token(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    token = owner["token"]
    card_id = await create_card(api, token, OUTPUTS, [sales], name="Outputs")
    execution_id, final = await run(api, token, card_id, useCache=False)
    assert final["status"] == "SUCCEEDED", final
    result = final["result"]
    assert result["html"] == "<p>sales</p>" and result["cached"] is False
    assert result["metrics"] == {"total": 42.5, "count": 3}
    table = result["table"]
    assert table["columns"] == COLUMNS and table["rowCount"] == 3
    assert table["rows"] == ROWS[:2]
    queried = (await api.ok(QUERY, {"id": execution_id}, token=token))["execution"]
    assert queried["result"]["metrics"] == result["metrics"]
    assert {k: v for k, v in queried["result"]["table"].items() if k != "downloadUrl"} == {
        k: v for k, v in table.items() if k != "downloadUrl"
    }

    # The default format is CSV; the link needs no token, saves as an attachment and
    # expires in 15 minutes.
    got = await download(table["downloadUrl"])
    link = parse_qs(urlsplit(table["downloadUrl"]).query)
    assert link["response-content-disposition"] == ['attachment; filename="card-table.csv"']
    expires = int(link["Expires"][0]) - time.time() if "Expires" in link else None
    assert link.get("X-Amz-Expires") == ["900"] or (expires and 840 < expires <= 900), link
    assert list(csv.reader(io.StringIO(got.text))) == [
        COLUMNS,
        ["north", "10", "0.25", "true", "2024-01-01"],
        ["south", "20", "0.5", "false", "2024-01-02"],
        ["east", "12", "", "true", "2024-01-03"],
    ]

    every = await api.ok(
        TABLE, {"id": execution_id, "limit": 1000, "format": "PARQUET"}, token=token
    )
    stored = every["execution"]["result"]["table"]
    assert stored["rows"] == ROWS
    parquet = pq.read_table(io.BytesIO((await download(stored["downloadUrl"])).content))
    assert parquet.column_names == COLUMNS
    assert [list(row.values()) for row in parquet.to_pylist()] == [
        [*row[:4], date.fromisoformat(row[4])] for row in ROWS
    ]

    xlsx = await api.ok(TABLE, {"id": execution_id, "format": "XLSX"}, token=token)
    workbook = openpyxl.load_workbook(
        io.BytesIO((await download(xlsx["execution"]["result"]["table"]["downloadUrl"])).content)
    )
    sheet_rows = [list(row) for row in workbook.active.iter_rows(values_only=True)]
    assert sheet_rows == [
        COLUMNS,
        *[[*row[:4], datetime.fromisoformat(row[4])] for row in ROWS],
    ]

    # A second run of the same card answers from the cache, with the same metrics and table.
    _, again = await run(api, token, card_id)
    assert again["status"] == "SUCCEEDED" and again["result"]["cached"] is True
    assert again["result"]["metrics"] == result["metrics"]
    assert again["result"]["table"]["columns"] == COLUMNS
    assert again["result"]["table"]["rows"] == ROWS[:2]
    cached_csv = await download(again["result"]["table"]["downloadUrl"])
    assert cached_csv.text == got.text


async def test_rows_limit_must_be_between_1_and_1000(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    token = owner["token"]
    card_id = await create_card(api, token, OUTPUTS, [sales], name="Limits")
    execution_id, final = await run(api, token, card_id)
    assert final["status"] == "SUCCEEDED", final
    for limit in (0, -1, 1001):
        response = await table_of(api, token, execution_id, limit=limit)
        assert response.code == "BAD_USER_INPUT", response.body
        assert response.error["extensions"]["field"] == "limit"
    one = await table_of(api, token, execution_id, limit=1)
    assert one.data["execution"]["result"]["table"]["rows"] == ROWS[:1]


async def test_a_result_without_outputs_has_no_metrics_and_no_table(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], render("return 'plain'"), [sales])
    _, final = await run(api, owner["token"], card_id)
    assert final["status"] == "SUCCEEDED", final
    assert final["result"]["metrics"] is None and final["result"]["table"] is None


async def test_an_empty_table_and_empty_metrics_are_kept_empty(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    code = render('return HTMLResult(html="none", metrics={}, table=dataset.head(0))')
    card_id = await create_card(api, owner["token"], code, [sales])
    _, final = await run(api, owner["token"], card_id)
    assert final["status"] == "SUCCEEDED", final
    assert final["result"]["metrics"] == {}
    table = final["result"]["table"]
    assert table["columns"] == ["amount"] and table["rowCount"] == 0 and table["rows"] == []
    assert (await download(table["downloadUrl"])).text.splitlines() == ['"amount"']


async def test_xlsx_refuses_more_rows_than_a_sheet_holds(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    code = render(
        'return HTMLResult(html="x", table=pd.DataFrame({"n": np.zeros(1_048_576, "int8")}))'
    )
    execution_id, final = await run(
        api, owner["token"], await create_card(api, owner["token"], code, [sales])
    )
    assert final["status"] == "SUCCEEDED" and final["result"]["table"]["rowCount"] == 1_048_576
    response = await table_of(api, owner["token"], execution_id, format="XLSX")
    assert response.code == "BAD_USER_INPUT" and response.error["extensions"]["field"] == "format"
    first = await table_of(api, owner["token"], execution_id, limit=1000, format="PARQUET")
    assert first.data["execution"]["result"]["table"]["rows"] == [[0]] * 1000
    assert "at most 1048575" in response.error["message"]


async def test_a_table_no_longer_stored_is_not_found(
    api: Api, owner: dict[str, str], sales: str, s3: Any, stack: Stack
) -> None:
    """Once the S3 copy has expired (here: deleted) the table says so instead of failing."""
    code = render('return HTMLResult(html="x", table=pd.DataFrame({"n": [1, 2]}))')
    card_id = await create_card(api, owner["token"], code, [sales])
    started = datetime.now(UTC).replace(microsecond=0)
    execution_id, final = await run(api, owner["token"], card_id)
    assert final["status"] == "SUCCEEDED", final
    bucket = stack.env["TILEGRAPH_BUCKET"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="card-results/")["Contents"]
    ours = [o["Key"] for o in listed if ".table." in o["Key"] and o["LastModified"] >= started]
    assert ours  # this run's table (other tests' tables are older and stay)
    for key in ours:
        s3.delete_object(Bucket=bucket, Key=key)
    for variables in ({"limit": 1}, {"format": "CSV"}, {"format": "PARQUET"}):
        response = await table_of(api, owner["token"], execution_id, **variables)
        assert response.code == "NOT_FOUND", response.body
        assert "no longer stored" in response.error["message"]


async def test_a_stranger_cannot_read_anothers_result_table(
    api: Api, users: Users, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], OUTPUTS, [sales], name="Private")
    execution_id, final = await run(api, owner["token"], card_id)
    assert final["status"] == "SUCCEEDED", final
    stranger = await users.create("outputs-stranger")
    for query, variables in [
        (QUERY, {"id": execution_id}),
        (TABLE, {"id": execution_id, "format": "PARQUET"}),
    ]:
        response = await api.post(query, variables, token=stranger["token"])
        assert response.code == "NOT_FOUND", response.body
        assert response.data is None or response.data["execution"] is None


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ('metrics={"x": "a"}', "Metric 'x' must be a number (int or float), not str"),
        ('metrics={"x": float("nan")}', "Metric 'x' must be a finite number, not nan"),
        ('metrics={"flag": True}', "Metric 'flag' must be a number (int or float), not bool"),
        (
            'table=pd.DataFrame({"fine": [1], "nested": [{"a": 1}]})',
            "Column 'nested' of HTMLResult.table has unsupported type struct<a: int64>",
        ),
    ],
)
async def test_bad_metrics_and_tables_fail_bad_result_naming_the_problem(
    api: Api, owner: dict[str, str], sales: str, returned: str, message: str
) -> None:
    code = render(f'return HTMLResult(html="x", {returned})')
    card_id = await create_card(api, owner["token"], code, [sales])
    _, final = await run(api, owner["token"], card_id)
    assert final["status"] == "FAILED", final
    assert final["error"]["code"] == "BAD_RESULT" and message in final["error"]["message"]


async def test_a_table_over_the_cap_fails_output_too_large(
    inprocess: InProcess, users: Users, api: Api, sales: str, owner: dict[str, str]
) -> None:
    """An API and worker of their own, whose cards may return at most 100 kB of table."""
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_CARD_TABLE_MAX_BYTES": "100000",
    }
    server = await inprocess.start_api(env)
    await inprocess.start_worker(env)
    small = Api(server.url, server.ws_url)
    try:
        token = owner["token"]
        big = render('return HTMLResult(html="x", table=pd.DataFrame({"n": np.arange(20_000)}))')
        card_id = await create_card(small, token, big, [sales])
        _, final = await run(small, token, card_id)
        assert final["status"] == "FAILED", final
        assert final["error"]["code"] == "OUTPUT_TOO_LARGE"
        assert "card's table (HTMLResult.table)" in final["error"]["message"]
        assert "the limit is 100000 bytes" in final["error"]["message"]
        fits = render('return HTMLResult(html="x", table=pd.DataFrame({"n": np.arange(1_000)}))')
        _, final = await run(small, token, await create_card(small, token, fits, [sales]))
        assert final["status"] == "SUCCEEDED" and final["result"]["table"]["rowCount"] == 1000
    finally:
        await small.close()
