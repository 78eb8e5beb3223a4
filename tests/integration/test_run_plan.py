"""The run plan: made once by the API, carried by the job, executed as given by the worker;
events carry what subscribers need; cached dashboards cost constant round trips."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.jobs import Job

from tests.conftest import Users
from tests.support.cards import EXECUTE, create_card, follow_card, render, run_card
from tests.support.client import Api
from tests.support.dashboards import create_dashboard
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess, InProcessApi
from tests.support.stack import Stack
from tilegraph.domain.runs import CardRunPlan
from tilegraph.jobs.cards import CardRunner
from tilegraph.jobs.worker import open_sandbox
from tilegraph.jobs.worker import run_card as run_card_job
from tilegraph.services.registry import Services
from tilegraph.settings import Settings
from tilegraph.store.counting import RequestCounter

ROWS = [["region", "amount", "note"], ["north", 1, "a"], ["south", 2, "b"], ["north", 3, "c"]]
SHOW = render('return ",".join(f"{r}:{a}" for r, a in zip(dataset["region"], dataset["amount"]))')
READS = {"GetItem", "BatchGetItem", "Query", "Scan"}


@pytest.fixture(scope="module")
async def owner(users: Users) -> dict[str, str]:
    return await users.create("plans")


@pytest.fixture(scope="module")
async def sales(api: Api, owner: dict[str, str], worker: Any) -> str:
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(ROWS), name="plan")
    assert final["status"] == "SUCCEEDED"
    return str(uploaded["dataset"]["id"])


@pytest.fixture(scope="module")
async def held(stack: Stack) -> AsyncIterator[tuple[Api, Services]]:
    """An API whose queue no worker consumes (runs stay QUEUED), and this process's own
    services on that queue, to run its jobs by hand."""
    queue = f"tilegraph:test:plan-{secrets.token_hex(3)}"
    server = await InProcessApi.start(stack.settings({"TILEGRAPH_QUEUE_NAME": queue}))
    client = Api(server.url, server.ws_url, server.transport)
    services = await Services.open(Settings.from_env({**stack.env, "TILEGRAPH_QUEUE_NAME": queue}))
    try:
        yield client, services
    finally:
        await client.close()
        await services.close()
        await server.stop()


async def test_the_worker_executes_the_plan_it_was_given_without_reading_card_or_data(
    held: tuple[Api, Services], owner: dict[str, str], sales: str
) -> None:
    held_api, services = held
    card_id = await create_card(held_api, owner["token"], SHOW, [sales])
    data = await held_api.ok(
        EXECUTE,
        {"i": {"id": card_id, "filters": [{"column": "region", "values": ["north"]}]}},
        token=owner["token"],
    )
    execution_id = data["executeCard"]["execution"]["id"]
    # QUEUED is published as the job is enqueued: a subscriber's first read hits Redis.
    latest = await services.events.latest(execution_id)
    assert latest is not None and latest["status"] == "QUEUED"
    assert "plan" not in latest  # the code stays with the job and the record
    # The job carries the plan; the card changes after admission, the run does not.
    job = await Job(execution_id, services.redis, _queue_name=services.settings.queue_name).info()
    assert job is not None
    plan = CardRunPlan.from_item(job.args[1])
    assert plan.card_id == card_id and plan.inputs[0].dataset_id == sales
    await held_api.ok(
        "mutation($id: ID!) { updateCard(input: {id: $id, code: \"def render(dataset, filters, params):\\n    return 'changed'\"}) { card { id } } }",
        {"id": card_id},
        token=owner["token"],
    )
    sandbox = open_sandbox(services.settings)
    await sandbox.start()
    counter = RequestCounter()
    token = counter.bind()
    try:
        ctx = {"services": services, "cards": CardRunner(services, sandbox)}
        await run_card_job(ctx, execution_id, job.args[1])
    finally:
        RequestCounter.unbind(token)
        await sandbox.close()
    assert not READS & set(counter.dynamodb_operations), counter.dynamodb_operations
    final = (await follow_card(held_api, owner["token"], execution_id))[-1]
    assert final["status"] == "SUCCEEDED", final
    assert final["result"]["html"] == "north:1,north:3"


async def test_the_final_event_carries_the_html(
    api: Api, owner: dict[str, str], sales: str, stack: Stack
) -> None:
    card_id = await create_card(api, owner["token"], render("return 'inline ' * 3"), [sales])
    final = await run_card(api, owner["token"], card_id)
    assert final["status"] == "SUCCEEDED"
    # With the cache and the durable copy gone, a late subscriber still gets the HTML: it
    # travels in the stored final state, not through a cache read.
    services = await Services.open(Settings.from_env(stack.env))
    try:
        cache_key = (await services.repos.cards.executions.get(final["id"]) or {})["result"][
            "cache_key"
        ]
        await services.cache_redis.delete(f"card:cache:{cache_key}")
        await services.objects.s3.delete_object(
            Bucket=services.settings.bucket, Key=f"card-results/{cache_key}.html"
        )
    finally:
        await services.close()
    late = (await follow_card(api, owner["token"], final["id"]))[-1]
    assert late["result"]["html"] == "inline inline inline "


async def test_stored_states_carry_html_only_within_the_users_inline_budget(
    inprocess: InProcess, users: Users, stack: Stack
) -> None:
    """A budget of 100 KB of inline HTML in stored states: the first 60 KB result rides in
    its state, the next (and a cache hit of the first) carry only the key; subscribers get
    the HTML either way, the later ones from the cache."""
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_MAX_EVENT_HTML_BYTES_PER_USER": "100000",
    }
    server = await inprocess.start_api(env)
    await inprocess.start_worker(env)
    own = Api(server.url, server.ws_url)
    try:
        user = await users.create("inline-budget")
        uploaded, final = await import_and_wait(own, user["token"], csv_bytes(ROWS))
        assert final["status"] == "SUCCEEDED"
        big = render("return str(params['n']) * 60_000")
        card = await create_card(own, user["token"], big, [uploaded["dataset"]["id"]])
        runs = [await run_card(own, user["token"], card, params={"n": n}) for n in (1, 2, 1)]
        assert [r["result"]["html"] for r in runs] == ["1" * 60_000, "2" * 60_000, "1" * 60_000]
        assert [r["result"]["cached"] for r in runs] == [False, False, True]
        states = [await server.services.events.latest(r["id"]) for r in runs]
        assert [("html" in (s or {}).get("result", {})) for s in states] == [True, False, False]
    finally:
        await own.close()


EXECUTE_DASHBOARD = """mutation($id: ID!) { executeDashboard(input: {id: $id}) {
  executions { id status result { cached html } } } }"""


async def test_a_cached_dashboard_costs_constant_round_trips(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    code = render("return 'same for all'")
    cards = [
        await create_card(api, owner["token"], code, [sales], name=f"c{i}") for i in range(100)
    ]
    warm = await run_card(api, owner["token"], cards[0])  # same code and data: one cache key
    assert warm["status"] == "SUCCEEDED"
    trips: dict[int, tuple[int, int]] = {}
    requests: dict[int, int] = {}
    for size in (1, 20, 100):
        dash = await create_dashboard(api, owner["token"], card_ids=cards[:size])
        response = await api.post(EXECUTE_DASHBOARD, {"id": dash["id"]}, token=owner["token"])
        assert not response.errors, response.errors
        executions = response.data["executeDashboard"]["executions"]
        assert len(executions) == size
        assert all(
            e["status"] == "SUCCEEDED" and e["result"] == {"cached": True, "html": "same for all"}
            for e in executions
        )
        extensions = response.body["extensions"]
        trips[size] = (extensions["dynamodbRoundTrips"], extensions["redisRequests"])
        requests[size] = extensions["dynamodbRequests"]
    assert trips[1] == trips[20] == trips[100], trips
    # The records go out 25 to a BatchWriteItem (DynamoDB's limit), all in one round trip;
    # everything else is the same whatever the size.
    assert requests[1] == requests[20] == requests[100] - 3, requests
    # Every cached run is a durable record, readable and followable afterwards.
    last = executions[-1]["id"]
    followed = await follow_card(api, owner["token"], last)
    assert followed[-1]["status"] == "SUCCEEDED" and followed[-1]["result"]["cached"] is True


async def test_a_plan_resolves_filters_once_for_each_dataset(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], SHOW, [sales])
    bad = await api.fail(
        EXECUTE,
        {"i": {"id": card_id, "filters": [{"column": "amount", "start": "lots"}]}},
        token=owner["token"],
    )
    assert bad.code == "BAD_USER_INPUT" and bad.error["extensions"]["field"] == "filters"
    final = await run_card(
        api, owner["token"], card_id, filters=[{"column": "amount", "start": "2", "end": "3"}]
    )
    assert final["result"]["html"] == "south:2,north:3"
