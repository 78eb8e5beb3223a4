"""Card code and transforms written for the system Tilegraph replaces run unchanged: filters
keyed by column, cards returning a dict, transforms with params."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import Users
from tests.support.cards import create_card, render, run_card
from tests.support.client import Api
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.stack import Stack
from tests.support.transforms import (
    create_transform,
    follow_run,
    later,
    run_transform,
    tick_here,
)
from tilegraph.executor.plotly_asset import asset_path

SALES = [
    ["category", "amount", "day"],
    ["fruit", 10, "2024-01-01"],
    ["veg", 20, "2024-01-15"],
    ["fruit", 30, "2024-01-31"],
    ["dairy", 40, "2024-02-10"],
    ["veg", 5, "2024-02-20"],
]
# Written the way the original's users write cards: filters read by column name.
ORIGINAL_CARD = """
import json

def render(dataset, filters, params):
    categories = filters.get('category')
    amount = filters.get('amount', {})
    day = filters.get('day', {})
    low = float(amount["start"]) if "start" in amount else None
    rows = dataset.sort_values("amount")[["category", "amount"]].values.tolist()
    return json.dumps({
        "filters": filters,
        "columns": [column for column in filters],
        "printed": str(filters),
        "categories": categories,
        "low": low,
        "until": day.get("end"),
        "rows": [[str(c), int(a)] for c, a in rows],
    })
"""
DICT_CARD = render("""
totals = dataset.groupby("category")["amount"].sum().sort_index()
items = "".join(f"<li>{name}: {int(total)}</li>" for name, total in totals.items())
return {"html": f"<ul>{items}</ul>", "used_columns": ["category", "amount"],
        "filter_applicable": ["category"]}
""")
TODAYS_MESSAGE = (
    "render() must return an HTML string or HTMLResult(html=..., used_columns=[...], "
    "filter_applicable=[...], metrics={{...}}, table=<DataFrame>), not {}"
)
BAD_RESULTS = {
    "a number": ("return 42", TODAYS_MESSAGE.format("int")),
    "a dict without html": ('return {"title": "sales"}', TODAYS_MESSAGE.format("dict")),
    "html that is not text": ('return {"html": 42}', "render()['html'] must be a string, not int"),
    "used_columns as one string": (
        'return {"html": "<p>", "used_columns": "category"}',
        "render()['used_columns'] must be a list of column names",
    ),
}
MULTIPLY = {
    "function": """
def transform(inputs, params):
    (frame,) = inputs.values()
    return frame * params["multiplier"]
""",
    "inline": 'result = df_0 * params["multiplier"]\n',
}
PREVIEW = "query($id: ID!) { dataset(id: $id) { version preview(limit: 10) { rows } } }"
UPDATE = """mutation($i: UpdateTransformInput!) { updateTransform(input: $i) {
  transform { id params } } }"""
CREATE = """mutation($i: CreateTransformInput!) { createTransform(input: $i) {
  transform { id } } }"""


@pytest.fixture(scope="module")
async def owner(users: Users) -> dict[str, str]:
    return await users.create("compat-code")


@pytest.fixture(scope="module")
async def sales(api: Api, owner: dict[str, str], worker: Any) -> str:
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(SALES), name="sales")
    assert final["status"] == "SUCCEEDED"
    return str(uploaded["dataset"]["id"])


@pytest.fixture(scope="module")
async def amounts(api: Api, owner: dict[str, str], worker: Any) -> str:
    rows: list[list[Any]] = [["amount"], [1], [2], [3]]
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(rows), name="amounts")
    assert final["status"] == "SUCCEEDED"
    return str(uploaded["dataset"]["id"])


async def _rendered(api: Api, token: str, card_id: str, **options: Any) -> dict[str, Any]:
    final = await run_card(api, token, card_id, **options)
    assert final["status"] == "SUCCEEDED", final
    return json.loads(final["result"]["html"])  # type: ignore[no-any-return]


async def test_a_card_reads_filters_by_column_and_sees_them_applied(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], ORIGINAL_CARD, [sales])
    seen = await _rendered(
        api,
        owner["token"],
        card_id,
        filters=[
            {"column": "category", "values": ["fruit", "veg"]},
            {"column": "amount", "start": "10"},
            {"column": "day", "end": "2024-01-31"},
        ],
    )
    # The exact shape render() received: values for CATEGORY, {start, end} for ranges with
    # only the bounds that were set.
    assert seen["filters"] == {
        "category": ["fruit", "veg"],
        "amount": {"start": "10"},
        "day": {"end": "2024-01-31"},
    }
    assert seen["columns"] == ["category", "amount", "day"]
    assert seen["printed"] == (
        "{'category': ['fruit', 'veg'], 'amount': {'start': '10'}, 'day': {'end': '2024-01-31'}}"
    )
    assert seen["categories"] == ["fruit", "veg"] and seen["low"] == 10.0
    assert seen["until"] == "2024-01-31"
    # The platform applied them before render: dairy, the 5 and February are gone.
    assert seen["rows"] == [["fruit", 10], ["veg", 20], ["fruit", 30]]

    unfiltered = await _rendered(api, owner["token"], card_id)
    assert unfiltered["filters"] == {} and unfiltered["categories"] is None
    assert len(unfiltered["rows"]) == 5


async def test_several_filters_on_one_column_arrive_combined(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], ORIGINAL_CARD, [sales])
    seen = await _rendered(
        api,
        owner["token"],
        card_id,
        filters=[
            {"column": "category", "values": ["fruit", "veg"]},
            {"column": "category", "values": ["veg", "dairy"]},
            {"column": "amount", "start": "10", "end": "40"},
            {"column": "amount", "start": "15"},
        ],
    )
    assert seen["filters"] == {"category": ["veg"], "amount": {"start": "15", "end": "40"}}
    assert seen["rows"] == [["veg", 20]]


async def test_a_card_returning_a_dict_succeeds_with_its_columns(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], DICT_CARD, [sales])
    final = await run_card(
        api, owner["token"], card_id, filters=[{"column": "category", "values": ["veg"]}]
    )
    assert final["status"] == "SUCCEEDED", final
    assert final["result"]["html"] == "<ul><li>veg: 25</li></ul>"
    assert final["result"]["usedColumns"] == ["category", "amount"]
    assert final["result"]["filterApplicable"] == ["category"]
    learned = await api.ok(
        "query($id: ID!) { card(id: $id) { usedColumns filterApplicable } }",
        {"id": card_id},
        token=owner["token"],
    )
    assert learned["card"] == {
        "usedColumns": ["category", "amount"],
        "filterApplicable": ["category"],
    }

    html_only = await create_card(
        api, owner["token"], render('return {"html": "<p>hi</p>"}'), [sales]
    )
    plain = await run_card(api, owner["token"], html_only)
    assert plain["status"] == "SUCCEEDED", plain
    assert plain["result"]["html"] == "<p>hi</p>" and plain["result"]["usedColumns"] == []


@pytest.mark.parametrize("case", list(BAD_RESULTS))
async def test_other_return_values_are_still_bad_results(
    api: Api, owner: dict[str, str], sales: str, case: str
) -> None:
    body, message = BAD_RESULTS[case]
    card_id = await create_card(api, owner["token"], render(body), [sales])
    final = await run_card(api, owner["token"], card_id)
    assert final["status"] == "FAILED", final
    assert final["error"]["code"] == "BAD_RESULT" and final["error"]["message"] == message


async def _rows(api: Api, token: str, final: dict[str, Any]) -> list[list[Any]]:
    assert final["status"] == "SUCCEEDED", final
    data = await api.ok(PREVIEW, {"id": final["outputDataset"]["id"]}, token=token)
    return data["dataset"]["preview"]["rows"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("style", list(MULTIPLY))
async def test_a_transform_multiplies_by_its_params_in_both_styles(
    api: Api, owner: dict[str, str], amounts: str, style: str
) -> None:
    token = owner["token"]
    created = await create_transform(
        api, token, MULTIPLY[style], [amounts], name=f"times ({style})", params={"multiplier": 3}
    )
    assert created["params"] == {"multiplier": 3}
    assert await _rows(api, token, await run_transform(api, token, created["id"])) == [
        [3],
        [6],
        [9],
    ]

    updated = await api.ok(
        UPDATE, {"i": {"id": created["id"], "params": {"multiplier": 10}}}, token=token
    )
    assert updated["updateTransform"]["transform"]["params"] == {"multiplier": 10}
    again = await run_transform(api, token, created["id"])
    assert await _rows(api, token, again) == [[10], [20], [30]]

    renamed = await api.ok(UPDATE, {"i": {"id": created["id"], "name": "times"}}, token=token)
    assert renamed["updateTransform"]["transform"]["params"] == {"multiplier": 10}  # kept


async def test_scheduled_runs_use_the_stored_params(
    api: Api, owner: dict[str, str], amounts: str, stack: Stack
) -> None:
    token = owner["token"]
    transform = await create_transform(
        api,
        token,
        MULTIPLY["inline"],
        [amounts],
        name="scheduled times",
        cron="* * * * *",
        enabled=True,
        params={"multiplier": 7},
    )
    await tick_here(stack, later(10))
    runs = await api.ok(
        "query($id: ID!) { transform(id: $id) { executions(first: 5) { edges { node { id triggeredBy } } } } }",
        {"id": transform["id"]},
        token=token,
    )
    (run,) = [e["node"] for e in runs["transform"]["executions"]["edges"]]
    assert run["triggeredBy"] == "SCHEDULE"
    final = (await follow_run(api, token, run["id"]))[-1]
    assert await _rows(api, token, final) == [[7], [14], [21]]
    await api.ok(UPDATE, {"i": {"id": transform["id"], "scheduleEnabled": False}}, token=token)


@pytest.mark.parametrize("params", [[1, 2], "3", 4, {"big": "x" * (65 * 1024)}])
async def test_params_must_be_a_small_json_object(
    api: Api, owner: dict[str, str], amounts: str, params: Any
) -> None:
    token = owner["token"]
    base = {"name": "bad params", "inputDatasetIds": [amounts], "code": MULTIPLY["inline"]}
    refused = await api.fail(CREATE, {"i": {**base, "params": params}}, token=token)
    assert refused.code == "BAD_USER_INPUT" and refused.error["extensions"]["field"] == "params"

    created = await create_transform(api, token, MULTIPLY["inline"], [amounts], name="kept")
    again = await api.fail(UPDATE, {"i": {"id": created["id"], "params": params}}, token=token)
    assert again.code == "BAD_USER_INPUT" and again.error["extensions"]["field"] == "params"
    kept = await api.ok(
        "query($id: ID!) { transform(id: $id) { params } }", {"id": created["id"]}, token=token
    )
    assert kept["transform"]["params"] is None


# Lists only `category` in used_columns but reads `amount` too, as the original allowed.
UNDECLARED_CARD = render("""
import json
total = int(dataset["amount"].sum())
return HTMLResult(html=json.dumps({"total": total, "columns": sorted(dataset.columns)}),
                  used_columns=["category"])
""")
DECLARED_CARD = render("""
import json
return HTMLResult(html=json.dumps({"columns": sorted(dataset.columns)}),
                  used_columns=["category"])
""")


async def test_a_card_reading_an_undeclared_column_keeps_succeeding(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    """`used_columns` is a hint, not a contract: the second run is projected to it, fails on
    the column it did not list, is run again with every column, and from then on the card
    is read whole. Every run succeeds with the same answer."""
    card_id = await create_card(api, owner["token"], UNDECLARED_CARD, [sales])
    runs = [await _rendered(api, owner["token"], card_id, useCache=False) for _ in range(3)]
    assert [r["total"] for r in runs] == [105, 105, 105]
    assert all(r["columns"] == ["amount", "category", "day"] for r in runs)


async def test_projection_still_applies_to_a_card_that_lists_what_it_reads(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], DECLARED_CARD, [sales])
    first = await _rendered(api, owner["token"], card_id, useCache=False)
    later_runs = [await _rendered(api, owner["token"], card_id, useCache=False) for _ in range(2)]
    assert first["columns"] == ["amount", "category", "day"]
    assert [r["columns"] for r in later_runs] == [["category"], ["category"]]


# The original's default chart: `fig.to_html()` with every default (plotly.js inlined).
DEFAULT_SCATTER = render(
    """
fig = px.scatter(dataset, x="x", y="y")
return fig.to_html()
""",
    imports="import plotly.express as px",
)


async def test_a_default_plotly_chart_of_50000_rows_loads_plotly_from_our_server(
    api: Api, owner: dict[str, str]
) -> None:
    """Inlined, plotly.js alone is 4.8 MB (OUTPUT_TOO_LARGE before); the result loads it with
    one `<script src>` from the API instead, which serves it for good."""
    rows: list[list[Any]] = [["x", "y"], *([i, (i * 7919) % 1000] for i in range(50_000))]
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(rows), name="points")
    assert final["status"] == "SUCCEEDED"
    card_id = await create_card(api, owner["token"], DEFAULT_SCATTER, [uploaded["dataset"]["id"]])
    run = await run_card(api, owner["token"], card_id, useCache=False)
    assert run["status"] == "SUCCEEDED", run
    html = run["result"]["html"]
    assert len(html.encode()) < 3 << 20
    assert "plotly.js v" not in html
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert len(sources) == 1 and sources[0].endswith(asset_path()), sources
    bundle = await api.http.get(asset_path(), headers={"accept-encoding": "gzip"})
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert "immutable" in bundle.headers["cache-control"]
    assert bundle.text.lstrip().startswith("/**") and "plotly.js v" in bundle.text[:200]
    other = await api.http.get("/assets/plotly-0.0.1.min.js")
    assert other.status_code == 404
