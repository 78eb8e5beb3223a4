"""The API killed under an open subscription, and two clients racing to change one
dashboard: what clients see afterwards is the whole truth, and no update is lost."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from tests.conftest import Users
from tests.support.cards import create_card, render
from tests.support.client import Api
from tests.support.dashboards import create_dashboard
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcessApi
from tests.support.stack import Stack, kill_hard

FOLLOW = "subscription($id: ID!) { cardExecution(id: $id) { status result { html } } }"
EXECUTE = """mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) {
  execution { id } } }"""
UPDATE = """mutation($i: UpdateDashboardInput!) { updateDashboard(input: $i) {
  dashboard { version description } } }"""
VERSION = "query($id: ID!) { dashboard(id: $id) { version description } }"


async def test_a_client_resubscribes_after_the_api_is_killed_and_sees_the_end(
    stack: Stack, users: Users
) -> None:
    tag = secrets.token_hex(3)
    env = {"TILEGRAPH_QUEUE_NAME": f"tilegraph:fault:{tag}"}
    first = stack.start_api(f"api-a-{tag}", env)
    worker = stack.start_worker(f"worker-{tag}", env)
    api = Api(first.url, first.ws_url)
    second_api: Api | None = None
    try:
        owner = await users.create(f"api-kill-{tag}")
        uploaded, final = await import_and_wait(api, owner["token"], csv_bytes([["a"], [1]]))
        assert final["status"] == "SUCCEEDED", final
        card = await create_card(
            api,
            owner["token"],
            render("import time\ntime.sleep(3)\nreturn 'slow'"),
            [uploaded["dataset"]["id"]],
        )
        run = (await api.ok(EXECUTE, {"id": card}, token=owner["token"]))["executeCard"]
        run_id = run["execution"]["id"]
        async with api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(FOLLOW, {"id": run_id})
            seen = [await anext(session.messages(op))]
            assert seen[0]["data"]["cardExecution"]["status"] in ("QUEUED", "RUNNING")
            kill_hard(first.process)
            killed = time.monotonic()
        second = stack.start_api(f"api-b-{tag}", env)
        second_api = Api(second.url, second.ws_url)
        async with second_api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(FOLLOW, {"id": run_id})
            states = [p["data"]["cardExecution"] async for p in session.messages(op)]
        print(f"API kill -9 → resubscribed and saw the end in {time.monotonic() - killed:.2f} s")
        assert states[-1] == {"status": "SUCCEEDED", "result": {"html": "slow"}}, states
    finally:
        await api.close()
        if second_api is not None:
            await second_api.close()
        worker.terminate()
        worker.wait(30)


async def test_two_clients_racing_fifty_updates_lose_none(
    api: Api, api_app: InProcessApi, users: Users
) -> None:
    """Each round both clients write against the version they read: exactly one wins, the
    other gets CONFLICT, and every win is in the final version count."""
    owner = await users.create("racer")
    dashboard = await create_dashboard(api, owner["token"], name="Raced")
    second = Api(api_app.url, api_app.ws_url, api_app.transport)
    try:
        start = (await api.ok(VERSION, {"id": dashboard["id"]}, token=owner["token"]))["dashboard"][
            "version"
        ]
        wins: list[str] = []
        for round_ in range(50):
            version = start + len(wins)

            async def write(
                client: Api, who: str, version: int = version, round_: int = round_
            ) -> Any:
                text = f"{who} round {round_}"
                variables = {
                    "i": {"id": dashboard["id"], "description": text, "expectedVersion": version}
                }
                return text, await client.post(UPDATE, variables, token=owner["token"])

            results = await asyncio.gather(write(api, "a"), write(second, "b"))
            won = [text for text, answer in results if not answer.errors]
            lost = [answer.code for _, answer in results if answer.errors]
            assert len(won) == 1 and lost == ["CONFLICT"], (round_, results)
            wins.append(won[0])
        final = (await api.ok(VERSION, {"id": dashboard["id"]}, token=owner["token"]))["dashboard"]
        assert final == {"version": start + 50, "description": wins[-1]}
    finally:
        await second.close()
