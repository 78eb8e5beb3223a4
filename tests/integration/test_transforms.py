"""Transforms: the code contract, failures, schedules that run exactly once and never
overlap, crash recovery, caches over outputs, live runs and access."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from tests.conftest import Users
from tests.support.cards import create_card, render, run_card
from tests.support.client import Api
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess
from tests.support.stack import Stack, kill_hard
from tests.support.transforms import (
    CREATE,
    RUNS,
    create_transform,
    follow_run,
    later,
    run_transform,
    tick,
    tick_here,
)
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.transforms import TriggerType

SALES = [
    ["region", "product_id", "amount"],
    ["north", 1, 10],
    ["south", 2, 5],
    ["north", 2, 7],
    ["east", 3, 1],
]
PRODUCTS = [["product_id", "name"], [1, "apple"], [2, "pear"]]
JOIN = """
def transform(inputs, params):
    sales, products = list(inputs.values())
    joined = sales.merge(products, on="product_id")
    return joined.groupby("name", as_index=False)["amount"].sum().sort_values("name")
"""
PLAIN = """
merged = df_0.merge(df_1, on="product_id")
result = merged[["region", "name", "amount"]].sort_values(["name", "region"])
"""
PREVIEW = "query($id: ID!) { dataset(id: $id) { version sourceType sourceConfig columns { name type } preview(limit: 10) { rows } } }"


@pytest.fixture(scope="module")
async def owner(users: Users) -> dict[str, str]:
    return await users.create("tf-owner")


@pytest.fixture(scope="module")
async def inputs(api: Api, owner: dict[str, str], worker: Any) -> list[str]:
    ids = []
    for rows, name in ((SALES, "sales"), (PRODUCTS, "products")):
        uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(rows), name=name)
        assert final["status"] == "SUCCEEDED"
        ids.append(str(uploaded["dataset"]["id"]))
    return ids


async def test_a_join_in_both_code_styles(
    api: Api, owner: dict[str, str], inputs: list[str]
) -> None:
    joined = await create_transform(api, owner["token"], JOIN, inputs, name="by product")
    final = await run_transform(api, owner["token"], joined["id"])
    assert final["status"] == "SUCCEEDED", final
    assert final["outputRowCount"] == 2 and final["triggeredBy"] == "MANUAL"
    output = final["outputDataset"]
    data = (await api.ok(PREVIEW, {"id": output["id"]}, token=owner["token"]))["dataset"]
    assert data["preview"]["rows"] == [["apple", 10], ["pear", 12]]
    assert data["sourceType"] == "TRANSFORM" and data["sourceConfig"] == {
        "transformId": joined["id"]
    }
    assert data["columns"] == [
        {"name": "name", "type": "STRING"},
        {"name": "amount", "type": "INT64"},
    ]

    plain = await create_transform(api, owner["token"], PLAIN, inputs, name="plain")
    done = await run_transform(api, owner["token"], plain["id"])
    rows = await api.ok(PREVIEW, {"id": done["outputDataset"]["id"]}, token=owner["token"])
    assert rows["dataset"]["preview"]["rows"] == [
        ["north", "apple", 10],
        ["north", "pear", 7],
        ["south", "pear", 5],
    ]
    again = await run_transform(api, owner["token"], joined["id"])
    assert again["outputDataset"]["id"] == output["id"] and again["outputDataset"]["version"] == 2
    listing = await api.ok(
        "query($id: ID!) { transform(id: $id) { outputDataset { id } inputDatasets { id } executions(first: 10) { totalCount edges { node { id status } } } } }",
        {"id": joined["id"]},
        token=owner["token"],
    )
    t = listing["transform"]
    assert (
        t["outputDataset"]["id"] == output["id"] and [d["id"] for d in t["inputDatasets"]] == inputs
    )
    assert t["executions"]["totalCount"] == 2
    assert t["executions"]["edges"][0]["node"]["id"] == again["id"]  # newest first


FAILURES = {
    "SYNTAX_ERROR": "def transform(inputs, params):\n    return (\n",
    "MISSING_ENTRY_POINT": "x = 1\n",
    "FORBIDDEN_OPERATION": "import subprocess\nresult = df_0\n",
    "RUNTIME_ERROR": "result = df_0['no_such_column']\n",
    "BAD_RESULT": "result = 42\n",
    "TIMEOUT": "while True:\n    pass\n",
    "MEMORY_LIMIT": "block = bytearray(30 * 1024 ** 3)\nresult = df_0\n",
    "OUTPUT_TOO_LARGE": "import pandas as pd\nresult = pd.DataFrame({'x': ['y' * 1000] * 20000})\n",
}


@pytest.mark.parametrize("code", list(FAILURES))
async def test_each_failure_code(
    api: Api, owner: dict[str, str], inputs: list[str], code: str, admin_token: str
) -> None:
    transform = await create_transform(api, owner["token"], FAILURES[code], inputs, name=code)
    final = await run_transform(api, owner["token"], transform["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == code, final
    if code == "BAD_RESULT":
        assert "DataFrame" in final["error"]["message"]
    logs = await api.ok(
        "query($t: String!) { auditLogs(filter: {targetId: $t}) { edges { node { eventType details user { id } } } } }",
        {"t": transform["id"]},
        token=admin_token,
    )
    node = logs["auditLogs"]["edges"][0]["node"]
    assert node["eventType"] == "TRANSFORM_FAILED" and node["details"]["code"] == code
    assert node["user"]["id"] == owner["id"]


async def test_unsupported_columns_and_missing_inputs(
    api: Api, owner: dict[str, str], inputs: list[str]
) -> None:
    nested = await create_transform(
        api, owner["token"], "result = df_0.assign(bad=[[1]] * len(df_0))\n", inputs
    )
    final = await run_transform(api, owner["token"], nested["id"])
    assert final["error"]["code"] == "BAD_RESULT" and "bad" in final["error"]["message"]
    uploaded, _ = await import_and_wait(api, owner["token"], csv_bytes([["a"], [1]]))
    doomed = uploaded["dataset"]["id"]
    uses = await create_transform(api, owner["token"], "result = df_0\n", [doomed])
    refused = await api.fail(
        "mutation($id: ID!) { deleteDataset(input: {id: $id}) { deletedId } }",
        {"id": doomed},
        token=owner["token"],
    )
    assert refused.code == "CONFLICT" and uses["id"] in refused.error["message"]
    await api.ok(
        "mutation($id: ID!) { deleteDataset(input: {id: $id, force: true}) { deletedId } }",
        {"id": doomed},
        token=owner["token"],
    )
    lost = await run_transform(api, owner["token"], uses["id"])
    assert lost["error"]["code"] == "INPUT_UNAVAILABLE"


async def test_cron_validation(api: Api, owner: dict[str, str], inputs: list[str]) -> None:
    cases = {
        "61 * * * *": "out of range",
        "* * *": "columns",
        "not a cron": "Invalid cron expression",
        "* * * * * */5": "minimum interval",
    }
    for cron, reason in cases.items():
        response = await api.fail(
            CREATE,
            {
                "i": {
                    "name": "x",
                    "inputDatasetIds": inputs,
                    "code": "result = df_0",
                    "scheduleCron": cron,
                    "scheduleEnabled": True,
                }
            },
            token=owner["token"],
        )
        assert response.code == "BAD_USER_INPUT", cron
        assert response.error["extensions"]["field"] == "scheduleCron"
        assert reason in response.error["message"], (cron, response.error["message"])
    no_cron = await api.fail(
        CREATE,
        {
            "i": {
                "name": "x",
                "inputDatasetIds": inputs,
                "code": "result = df_0",
                "scheduleEnabled": True,
            }
        },
        token=owner["token"],
    )
    assert no_cron.error["extensions"]["field"] == "scheduleEnabled"
    scheduled = await create_transform(
        api, owner["token"], "result = df_0", inputs, cron="*/15 * * * *", enabled=True
    )
    assert scheduled["scheduleEnabled"] and scheduled["nextRunAt"].endswith("+00:00")
    paused = await api.ok(
        "mutation($id: ID!) { updateTransform(input: {id: $id, scheduleEnabled: false}) { transform { nextRunAt scheduleEnabled scheduleCron } } }",
        {"id": scheduled["id"]},
        token=owner["token"],
    )
    assert paused["updateTransform"]["transform"] == {
        "nextRunAt": None,
        "scheduleEnabled": False,
        "scheduleCron": "*/15 * * * *",
    }
    stranger_input = await api.fail(
        CREATE,
        {"i": {"name": "x", "inputDatasetIds": ["ds_nope"], "code": "result = df_0"}},
        token=owner["token"],
    )
    assert stranger_input.code == "NOT_FOUND"


async def _runs(api: Api, token: str, transform_id: str) -> list[dict[str, Any]]:
    data = await api.ok(
        "query($id: ID!) { transform(id: $id) { executions(first: 50) { edges { node { id status triggeredBy error { message } } } } } }",
        {"id": transform_id},
        token=token,
    )
    return [e["node"] for e in data["transform"]["executions"]["edges"]]


async def test_two_schedulers_queue_each_due_run_once_and_catch_up_once(
    api: Api, owner: dict[str, str], inputs: list[str], stack: Stack, admin_token: str
) -> None:
    transform = await create_transform(
        api, owner["token"], "result = df_1", inputs, cron="* * * * *", enabled=True
    )
    at = later(10)  # ten runs were missed while "nothing ticked"
    ticks = await asyncio.gather(tick_here(stack, at), tick_here(stack, at))
    # Other tests' schedules may be due too: count this transform's runs only.
    assert sorted(t.count(transform["id"]) for t in ticks) == [0, 1]
    assert transform["id"] not in await tick_here(stack, at)
    runs = await _runs(api, owner["token"], transform["id"])
    assert [r["triggeredBy"] for r in runs] == ["SCHEDULE"]
    final = (await follow_run(api, owner["token"], runs[0]["id"]))[-1]
    assert final["status"] == "SUCCEEDED"
    state = await api.ok(
        "query($id: ID!) { transform(id: $id) { nextRunAt } }",
        {"id": transform["id"]},
        token=owner["token"],
    )
    assert state["transform"]["nextRunAt"] > at.isoformat()[:16]
    await api.ok(
        "mutation($id: ID!) { updateTransform(input: {id: $id, scheduleEnabled: false}) { transform { id } } }",
        {"id": transform["id"]},
        token=owner["token"],
    )
    logs = await api.ok(
        "query($t: String!) { auditLogs(filter: {targetId: $t, eventType: TRANSFORM_EXECUTED}) { edges { node { user { id } details } } } }",
        {"t": transform["id"]},
        token=admin_token,
    )
    node = logs["auditLogs"]["edges"][0]["node"]
    assert node["user"] is None and node["details"]["triggeredBy"] == "SCHEDULE"
    assert node["details"]["rows"] == 2 and node["details"]["version"] == 1


async def test_an_overlapping_due_run_is_recorded_as_skipped(
    api: Api, owner: dict[str, str], inputs: list[str], stack: Stack
) -> None:
    slow = "import time\ntime.sleep(8)\nresult = df_0\n"  # outlasts starting a tick process
    transform = await create_transform(
        api, owner["token"], slow, inputs, cron="0 0 1 1 *", enabled=True
    )
    async with api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(RUNS, {"id": transform["id"]})
        manual = await api.ok(
            "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }",
            {"id": transform["id"]},
            token=owner["token"],
        )
        manual_id = manual["executeTransform"]["execution"]["id"]
        seen: dict[str, list[str]] = {}
        ticked = False
        async for payload in session.messages(op):
            run = payload["data"]["transformExecutions"]
            seen.setdefault(run["id"], []).append(run["status"])
            if run["id"] == manual_id and run["status"] == "RUNNING" and not ticked:
                ticked = True
                busy = await api.fail(
                    "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }",
                    {"id": transform["id"]},
                    token=owner["token"],
                )
                assert busy.code == "CONFLICT"
                assert transform["id"] in await tick_here(stack, later(60 * 24 * 400))
            if run["id"] != manual_id and run["status"] == "CANCELLED":
                skipped = run
            finished = {
                i
                for i, states in seen.items()
                if states[-1] in ("SUCCEEDED", "FAILED", "CANCELLED")
            }
            if len(finished) == 2:
                break
    assert list(dict.fromkeys(seen[manual_id])) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert skipped["triggeredBy"] == "SCHEDULE"
    assert skipped["error"]["code"] == "CANCELLED" and "Skipped" in skipped["error"]["message"]
    assert manual_id in skipped["error"]["message"]


async def test_a_killed_worker_ends_worker_lost_and_the_schedule_goes_on(
    api: Api,
    owner: dict[str, str],
    inputs: list[str],
    stack: Stack,
    inprocess: InProcess,
    worker: Any,
) -> None:
    transform = await create_transform(
        api, owner["token"], "result = df_0", inputs, cron="0 0 1 1 *", enabled=True
    )
    first = await run_transform(api, owner["token"], transform["id"])
    output_id = first["outputDataset"]["id"]
    await api.ok(
        'mutation($id: ID!) { updateTransform(input: {id: $id, code: "import time\\ntime.sleep(30)\\nresult = df_1"}) { transform { id } } }',
        {"id": transform["id"]},
        token=owner["token"],
    )
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_TRANSFORM_TIMEOUT_SECONDS": "60",
    }
    server = await inprocess.start_api(env)
    own = Api(server.url, server.ws_url)
    try:
        doomed = stack.start_worker("worker-tf-doomed", env)
        started = await own.ok(
            "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }",
            {"id": transform["id"]},
            token=owner["token"],
        )
        run_id = started["executeTransform"]["execution"]["id"]
        async with own.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(
                "subscription($id: ID!) { transformExecution(id: $id) { status error { code } } }",
                {"id": run_id},
            )
            states = []
            async for payload in session.messages(op):
                state = payload["data"]["transformExecution"]
                states.append(state["status"])
                if state["status"] == "RUNNING":
                    kill_hard(doomed)
                final = state
        assert final == {"status": "FAILED", "error": {"code": "WORKER_LOST"}}
    finally:
        await own.close()
    preview = await api.ok(PREVIEW, {"id": output_id}, token=owner["token"])
    assert preview["dataset"]["version"] == 1 and len(preview["dataset"]["preview"]["rows"]) == 4
    await api.ok(
        'mutation($id: ID!) { updateTransform(input: {id: $id, code: "result = df_1"}) { transform { id } } }',
        {"id": transform["id"]},
        token=owner["token"],
    )
    await tick(stack, later(60 * 24 * 400))
    runs = await _runs(api, owner["token"], transform["id"])
    assert runs[0]["triggeredBy"] == "SCHEDULE"  # the lock was released: it was not skipped
    scheduled = (await follow_run(api, owner["token"], runs[0]["id"]))[-1]
    assert scheduled["status"] == "SUCCEEDED" and scheduled["outputDataset"]["version"] == 2


async def test_cards_over_the_output_rerender_after_the_next_run(
    api: Api, owner: dict[str, str], inputs: list[str]
) -> None:
    transform = await create_transform(api, owner["token"], JOIN, inputs)
    first = await run_transform(api, owner["token"], transform["id"])
    card = await create_card(
        api,
        owner["token"],
        render("import json\nreturn json.dumps(dataset.to_dict('records'))"),
        [first["outputDataset"]["id"]],
    )
    before = await run_card(api, owner["token"], card)
    assert (await run_card(api, owner["token"], card))["result"]["cached"] is True
    await api.ok(
        'mutation($id: ID!) { updateTransform(input: {id: $id, code: "result = df_1.assign(amount=1)[[\\"name\\", \\"amount\\"]]"}) { transform { id } } }',
        {"id": transform["id"]},
        token=owner["token"],
    )
    await run_transform(api, owner["token"], transform["id"])
    after = await run_card(api, owner["token"], card)
    assert after["result"]["cached"] is False
    assert json.loads(before["result"]["html"]) == [
        {"name": "apple", "amount": 10},
        {"name": "pear", "amount": 12},
    ]
    assert json.loads(after["result"]["html"]) == [
        {"name": "apple", "amount": 1},
        {"name": "pear", "amount": 1},
    ]


async def test_run_sequence_over_websocket_and_strangers(
    api: Api, owner: dict[str, str], inputs: list[str], users: Users
) -> None:
    transform = await create_transform(api, owner["token"], JOIN, inputs)
    final_states = await follow_run(
        api,
        owner["token"],
        (
            await api.ok(
                "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }",
                {"id": transform["id"]},
                token=owner["token"],
            )
        )["executeTransform"]["execution"]["id"],
    )
    statuses = [s["status"] for s in final_states]
    assert statuses[-1] == "SUCCEEDED" and statuses == sorted(
        statuses, key=["QUEUED", "RUNNING", "SUCCEEDED"].index
    )
    stranger = await users.create("tf-stranger")
    run_id = final_states[-1]["id"]
    for query, variables in [
        ("query($id: ID!) { transform(id: $id) { id } }", {"id": transform["id"]}),
        ("query($id: ID!) { transformExecution(id: $id) { id } }", {"id": run_id}),
        (
            "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }",
            {"id": transform["id"]},
        ),
        (
            'mutation($id: ID!) { updateTransform(input: {id: $id, name: "x"}) { transform { id } } }',
            {"id": transform["id"]},
        ),
        (
            "mutation($id: ID!) { deleteTransform(input: {id: $id}) { deletedId } }",
            {"id": transform["id"]},
        ),
    ]:
        assert (await api.fail(query, variables, token=stranger["token"])).code == "NOT_FOUND", (
            query
        )
    denied = await follow_run(api, stranger["token"], run_id)
    assert denied[0]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    output = final_states[-1]["outputDataset"]["id"]
    await api.ok(
        "mutation($id: ID!) { deleteTransform(input: {id: $id}) { deletedId } }",
        {"id": transform["id"]},
        token=owner["token"],
    )
    kept = await api.ok(PREVIEW, {"id": output}, token=owner["token"])
    assert kept["dataset"]["version"] == 1  # the output dataset stays


async def test_manual_runs_count_against_the_run_allowance_and_scheduled_ones_do_not(
    api: Api, inprocess: InProcess, users: Users, worker: Any
) -> None:
    """One place: a manual transform run takes it, so a second transform's run and a card
    run are RATE_LIMITED; a due scheduled run is still queued; cancelling the manual run
    gives the place back. No worker serves this API's queue, so its runs stay QUEUED."""
    owner = await users.create("tf-allowance")
    token = owner["token"]
    uploaded, final = await import_and_wait(api, token, csv_bytes(SALES))
    assert final["status"] == "SUCCEEDED"
    mine = [uploaded["dataset"]["id"]]
    server = await inprocess.start_api(
        {
            "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
            "TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": "1",
        }
    )
    idle = Api(server.url, server.ws_url)
    try:
        first = await create_transform(idle, token, "result = df_0", mine)
        second = await create_transform(idle, token, "result = df_0", mine)
        execute = """mutation($id: ID!) { executeTransform(input: {id: $id}) {
          execution { id status } } }"""
        run = (await idle.ok(execute, {"id": first["id"]}, token=token))["executeTransform"]
        assert run["execution"]["status"] == "QUEUED"
        refused = await idle.fail(execute, {"id": second["id"]}, token=token)
        assert refused.code == "RATE_LIMITED"
        card = await create_card(idle, token, render("return 'x'"), mine)
        card_run = "mutation($id: ID!) { executeCard(input: {id: $id}) { execution { id } } }"
        assert (await idle.fail(card_run, {"id": card}, token=token)).code == "RATE_LIMITED"
        record = await server.services.repos.transforms.get(second["id"])
        assert record is not None
        scheduled = await server.services.transforms.queue_run(
            record, TriggerType.SCHEDULE, user_id=None
        )
        assert scheduled.status is ExecutionStatus.QUEUED
        cancel = "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }"
        await idle.ok(cancel, {"id": run["execution"]["id"]}, token=token)
        again = (await idle.ok(execute, {"id": first["id"]}, token=token))["executeTransform"]
        assert again["execution"]["status"] == "QUEUED"
        for run_id in (again["execution"]["id"], scheduled.id):
            await idle.ok(cancel, {"id": run_id}, token=token)
    finally:
        await idle.close()
