"""The demo workspace: created once through the API, and every card of its dashboard runs."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.cards import follow_card
from tests.support.client import Api
from tests.support.stack import Stack


async def _demo(stack: Stack, api: Api) -> Any:
    return await asyncio.to_thread(
        stack.run_cli,
        "demo",
        "--server",
        api.base_url,
        "--admin-email",
        ADMIN_EMAIL,
        env={"TILEGRAPH_ADMIN_PASSWORD": ADMIN_PASSWORD},
        timeout=180,
    )


async def test_the_demo_workspace_is_created_once_and_all_its_cards_run(
    stack: Stack, api: Api, worker: Any, admin_token: str
) -> None:
    first = await _demo(stack, api)
    assert first.returncode == 0, first.stderr
    signed_in = re.search(r"Demo workspace created\. Sign in as \S+ / (\S+)", first.stdout)
    assert signed_in, first.stdout
    password = signed_in.group(1)
    second = await _demo(stack, api)
    assert second.returncode == 0 and "already exists" in second.stdout

    token = await api.login("demo@tilegraph.local", password)
    dashboards = await api.ok(
        "{ dashboards { totalCount edges { node { id name cardCount filters { type column } filterViews { name isShared } } } } }",
        token=token,
    )
    assert dashboards["dashboards"]["totalCount"] == 1
    board = dashboards["dashboards"]["edges"][0]["node"]
    assert board["cardCount"] == 3
    assert {(f["type"], f["column"]) for f in board["filters"]} == {
        ("CATEGORY", "region"),
        ("DATE_RANGE", "date"),
    }
    assert board["filterViews"][0]["isShared"] is True
    # The admin who created it finds it among their own dashboards, and is told where it is.
    seen_by_admin = await api.ok(
        "{ dashboards(first: 100) { edges { node { id name myPermission owner { email } } } } }",
        token=admin_token,
    )
    assert {
        "id": board["id"],
        "name": "Sales overview",
        "myPermission": "EDITOR",
        "owner": {"email": "demo@tilegraph.local"},
    } in [e["node"] for e in seen_by_admin["dashboards"]["edges"]]
    assert f'"Sales overview" (id {board["id"]}), shared with {ADMIN_EMAIL}' in first.stdout
    datasets = await api.ok(
        "{ datasets { edges { node { rowCount columns { name type } } } } }", token=token
    )
    sales = datasets["datasets"]["edges"][0]["node"]
    assert sales["rowCount"] >= 2000
    assert {c["name"]: c["type"] for c in sales["columns"]} == {
        "region": "STRING",
        "product": "STRING",
        "date": "DATE",
        "quantity": "INT64",
        "amount": "FLOAT64",
    }
    transforms = await api.ok(
        "{ transforms { edges { node { scheduleEnabled scheduleCron nextRunAt } } } }", token=token
    )
    schedule = transforms["transforms"]["edges"][0]["node"]
    assert schedule["scheduleEnabled"] and schedule["scheduleCron"] == "0 3 * * *"

    run = await api.ok(
        'mutation($id: ID!) { executeDashboard(input: {id: $id, filters: [{column: "region", values: ["North"]}]}) { executions { id } } }',
        {"id": board["id"]},
        token=token,
    )
    executions = run["executeDashboard"]["executions"]
    assert len(executions) == 3
    finals = await asyncio.gather(*(follow_card(api, token, e["id"]) for e in executions))
    assert [f[-1]["status"] for f in finals] == ["SUCCEEDED"] * 3, finals
    assert all("plotly" in f[-1]["result"]["html"].lower() for f in finals)
