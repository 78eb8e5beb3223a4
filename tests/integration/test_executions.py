"""One plan per run: the Execution interface, `nodes(ids:)`, `execution(id:)` and
`Subscription.execution`, `nodes` on connections, and re-checks shared by subscribers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import Users
from tests.support.cards import create_card, follow_card, render, run_card
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, new_group
from tests.support.datasets import csv_bytes, import_and_wait, upload
from tests.support.inprocess import InProcess
from tests.support.transforms import create_transform, run_transform

EXECUTION_FIELDS = "__typename id status progress error { code } queuedAt startedAt finishedAt"
FOLLOW_ANY = f"subscription($id: ID!) {{ execution(id: $id) {{ {EXECUTION_FIELDS} }} }}"
FIND = f"query($id: ID!) {{ execution(id: $id) {{ {EXECUTION_FIELDS} }} }}"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
CANCEL = "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }"
ORDER = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
# A well-formed id of each kind that names nothing.
MISSING = "ds_00000000000000000000000000"

World = dict[str, Any]


@pytest.fixture(scope="module")
async def world(api: Api, users: Users, admin_token: str, worker: Any) -> World:
    """One owner with one object of every kind (and a finished run of each execution kind),
    a stranger with a dataset of their own, and a group holding the owner."""
    owner = await users.create("exec-owner")
    stranger = await users.create("exec-stranger")
    token = owner["token"]
    uploaded, final = await import_and_wait(api, token, csv_bytes([["a"], [1], [2]]))
    assert final["status"] == "SUCCEEDED"
    dataset_id = uploaded["dataset"]["id"]
    card_id = await create_card(api, token, render("return str(len(dataset))"), [dataset_id])
    card_run = await run_card(api, token, card_id, useCache=False)
    transform = await create_transform(api, token, "result = df_0", [dataset_id])
    transform_run = await run_transform(api, token, transform["id"])
    dashboard = await create_dashboard(api, token, card_ids=[card_id])
    theirs, _ = await import_and_wait(api, stranger["token"], csv_bytes([["b"], [3]]))
    return {
        "owner": owner,
        "stranger": stranger,
        "admin_token": admin_token,
        "dataset": dataset_id,
        "card": card_id,
        "dashboard": dashboard["id"],
        "transform": transform["id"],
        "group": await new_group(api, admin_token, [owner["id"]]),
        "runs": {
            "CardExecution": card_run["id"],
            "TransformExecution": transform_run["id"],
            "DatasetImport": uploaded["import"]["id"],
        },
        "theirs": theirs["dataset"]["id"],
    }


async def test_nodes_keeps_the_order_and_hides_what_the_caller_may_not_see(
    api: Api, world: World
) -> None:
    owner = world["owner"]
    ids = [
        world["runs"]["CardExecution"],
        world["theirs"],  # the stranger's dataset
        world["dataset"],
        MISSING,
        "not-an-id",
        world["transform"],
        world["runs"]["DatasetImport"],
        world["dataset"],  # asked twice: given twice
        owner["id"],
        world["group"],  # groups are for admins
        world["runs"]["TransformExecution"],
    ]
    found = (await api.ok(NODES, {"ids": ids}, token=owner["token"]))["nodes"]
    assert found == [
        {"__typename": "CardExecution", "id": ids[0]},
        None,
        {"__typename": "Dataset", "id": world["dataset"]},
        None,
        None,
        {"__typename": "Transform", "id": world["transform"]},
        {"__typename": "DatasetImport", "id": ids[6]},
        {"__typename": "Dataset", "id": world["dataset"]},
        {"__typename": "User", "id": owner["id"]},
        None,
        {"__typename": "TransformExecution", "id": ids[10]},
    ]
    as_stranger = (await api.ok(NODES, {"ids": ids}, token=world["stranger"]["token"]))["nodes"]
    assert as_stranger[1] == {"__typename": "Dataset", "id": world["theirs"]}
    assert [n for i, n in enumerate(as_stranger) if i not in (1, 8)] == [None] * 9


async def test_nodes_takes_at_most_100_ids(api: Api, world: World) -> None:
    token = world["owner"]["token"]
    hundred = (await api.ok(NODES, {"ids": [world["dataset"]] * 100}, token=token))["nodes"]
    assert len(hundred) == 100
    refused = await api.fail(NODES, {"ids": [world["dataset"]] * 101}, token=token)
    assert refused.code == "BAD_USER_INPUT" and refused.error["extensions"]["field"] == "ids"


@pytest.mark.parametrize("typename", ["CardExecution", "TransformExecution", "DatasetImport"])
async def test_execution_finds_each_kind_for_its_owner_only(
    api: Api, world: World, typename: str
) -> None:
    run_id = world["runs"][typename]
    found = (await api.ok(FIND, {"id": run_id}, token=world["owner"]["token"]))["execution"]
    assert found["__typename"] == typename and found["id"] == run_id
    assert found["status"] == "SUCCEEDED" and found["finishedAt"] and found["error"] is None
    hidden = await api.fail(FIND, {"id": run_id}, token=world["stranger"]["token"])
    assert hidden.code == "NOT_FOUND" and hidden.data == {"execution": None}


@pytest.mark.parametrize(
    "object_id",
    [
        lambda world: world["dataset"],
        lambda world: world["card"],
        lambda world: "imp_00000000000000000000000000",
        lambda world: "not-an-id",
    ],
    ids=["dataset", "card", "missing import", "malformed"],
)
async def test_execution_is_not_found_for_other_ids(
    api: Api, world: World, object_id: Callable[[World], str]
) -> None:
    response = await api.fail(FIND, {"id": object_id(world)}, token=world["owner"]["token"])
    assert response.code == "NOT_FOUND"


async def _start_card_run(api: Api, world: World) -> str:
    data = await api.ok(
        "mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) { execution { id } } }",
        {"id": world["card"]},
        token=world["owner"]["token"],
    )
    return str(data["executeCard"]["execution"]["id"])


async def _start_transform_run(api: Api, world: World) -> str:
    data = await api.ok(
        "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }",
        {"id": world["transform"]},
        token=world["owner"]["token"],
    )
    return str(data["executeTransform"]["execution"]["id"])


async def _start_import(api: Api, world: World) -> str:
    uploaded = await upload(api, world["owner"]["token"], csv_bytes([["c"], [4], [5]]))
    return str(uploaded["import"]["id"])


Start = Callable[[Api, World], Awaitable[str]]


@pytest.mark.parametrize(
    ("typename", "typed_field", "start"),
    [
        ("CardExecution", "cardExecution", _start_card_run),
        ("TransformExecution", "transformExecution", _start_transform_run),
        ("DatasetImport", "datasetImport", _start_import),
    ],
)
async def test_subscription_execution_follows_each_kind_to_its_end(
    api: Api, world: World, typename: str, typed_field: str, start: Start
) -> None:
    """Followed at once both ways on one connection, the run ends in the same final state."""
    typed = f"subscription($id: ID!) {{ {typed_field}(id: $id) {{ {EXECUTION_FIELDS} }} }}"
    async with api.websocket({"authorization": f"Bearer {world['owner']['token']}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        execution_id = await start(api, world)
        generic_op = await session.subscribe(FOLLOW_ANY, {"id": execution_id})
        typed_op = await session.subscribe(typed, {"id": execution_id})
        streams: dict[str, list[dict[str, Any]]] = {generic_op: [], typed_op: []}
        open_ops = set(streams)
        while open_ops:
            message = await session.receive(timeout=60)
            op = message.get("id")
            if message["type"] == "next":
                streams[op].append(message["payload"])
            else:
                assert message["type"] == "complete", message
                open_ops.discard(op)
    generic = [p["data"]["execution"] for p in streams[generic_op]]
    following = [p["data"][typed_field] for p in streams[typed_op]]
    assert all(p["__typename"] == typename and p["id"] == execution_id for p in generic)
    statuses = [p["status"] for p in generic]
    assert statuses == sorted(statuses, key=ORDER.index)
    assert statuses[-1] == "SUCCEEDED" and statuses.count("SUCCEEDED") == 1
    assert generic[-1] == following[-1]


@pytest.mark.parametrize(
    ("connection", "query", "as_admin"),
    [
        ("UserConnection", "query($group: ID!) { c: group(id: $group) { members {S} } }", True),
        ("GroupConnection", "{ c: groups {S} }", True),
        ("DatasetConnection", "{ c: datasets {S} }", False),
        ("CardConnection", "{ c: cards {S} }", False),
        ("DashboardConnection", "{ c: dashboards {S} }", False),
        ("TransformConnection", "{ c: transforms {S} }", False),
        (
            "TransformExecutionConnection",
            "query($transform: ID!) { c: transform(id: $transform) { executions {S} } }",
            False,
        ),
        ("AuditLogConnection", "{ c: auditLogs(first: 5) {S} }", True),
    ],
)
async def test_every_connection_lists_its_edges_nodes(
    api: Api, world: World, connection: str, query: str, as_admin: bool
) -> None:
    selection = "{ __typename edges { node { __typename id } } nodes { __typename id } }"
    variables = {
        name: world[name] for name in ("group", "transform") if f"${name}" in query
    } or None
    token = world["admin_token"] if as_admin else world["owner"]["token"]
    data = (await api.ok(query.replace("{S}", selection), variables, token=token))["c"]
    page = data.get("members") or data.get("executions") or data
    assert page["__typename"] == connection
    assert page["nodes"] and page["nodes"] == [edge["node"] for edge in page["edges"]]


async def test_a_shared_recheck_still_ends_the_stream_of_a_revoked_token(
    inprocess: InProcess, users: Users
) -> None:
    """Two streams on one token: the first event warms the shared check of the token; after
    a logout the next event ends the other stream, though it falls within the check's ttl.
    No worker serves this API's queue, so both imports wait until cancelled."""
    server = await inprocess.start_api(
        {"TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}"}
    )
    api = Api(server.url, server.ws_url)
    try:
        owner = await users.create("shared-recheck")
        other_token = await api.login(owner["email"], owner["password"])
        first, second = [
            (await upload(api, owner["token"], csv_bytes([["a"], [n]])))["import"]["id"]
            for n in (1, 2)
        ]
        async with api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            ops = {
                await session.subscribe(FOLLOW_ANY, {"id": import_id}): import_id
                for import_id in (first, second)
            }
            by_import: dict[str, list[dict[str, Any]]] = {first: [], second: []}

            async def next_payload() -> tuple[str, dict[str, Any]]:
                while True:
                    message = await session.receive(timeout=60)
                    if message["type"] == "next":
                        import_id = ops[message["id"]]
                        by_import[import_id].append(message["payload"])
                        return import_id, message["payload"]
                    if message["type"] == "error":
                        import_id = ops[message["id"]]
                        by_import[import_id].append({"errors": message["payload"]})
                        return import_id, by_import[import_id][-1]

            while len(by_import[first]) + len(by_import[second]) < 2:
                await next_payload()  # each stream's current state: QUEUED
            await api.ok(CANCEL, {"id": first}, token=other_token)
            import_id, payload = await next_payload()
            assert import_id == first and payload["data"]["execution"]["status"] == "CANCELLED"
            await api.ok("mutation { logout { ok } }", token=owner["token"])
            await api.ok(CANCEL, {"id": second}, token=other_token)
            import_id, payload = await next_payload()
        assert import_id == second
        assert payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert [p["data"]["execution"]["status"] for p in by_import[second][:-1]] == ["QUEUED"]
    finally:
        await api.close()


EXECUTE_CARD = """mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) {
  execution { id status } } }"""
TIMES = """query($id: ID!) { execution(id: $id) { status startedAt finishedAt } }"""


def _sleeping(seconds: float, html: str) -> str:
    return render(f"import time\ntime.sleep({seconds})\nreturn {html!r}")


async def _own_deployment(
    inprocess: InProcess, overrides: dict[str, str]
) -> tuple[Api, dict[str, str]]:
    """An API and a worker with 2 sandbox slots on a queue of their own."""
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_SANDBOX_SLOTS": "2",
        **overrides,
    }
    server = await inprocess.start_api(env)
    await inprocess.start_worker(env)
    return Api(server.url, server.ws_url), env


async def _dataset(api: Api, token: str) -> str:
    uploaded, final = await import_and_wait(api, token, csv_bytes([["a"], [1]]))
    assert final["status"] == "SUCCEEDED"
    return str(uploaded["dataset"]["id"])


async def _queue(api: Api, token: str, card_id: str, times: int) -> list[str]:
    return [
        (await api.ok(EXECUTE_CARD, {"id": card_id}, token=token))["executeCard"]["execution"]["id"]
        for _ in range(times)
    ]


async def test_one_users_backlog_delays_another_users_run_by_one_run_per_slot_at_most(
    inprocess: InProcess, users: Users
) -> None:
    """X queues 18 cards of 3 s on a worker with 2 slots; Y's trivial card, queued behind
    them, still ends within 12 s (in arrival order it would wait ~27 s for all of X's)."""
    api, _ = await _own_deployment(inprocess, {"TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": "40"})
    x, y = await users.create("backlog"), await users.create("quick")
    try:
        slow = await create_card(
            api, x["token"], _sleeping(3, "slow"), [await _dataset(api, x["token"])]
        )
        quick = await create_card(
            api, y["token"], render("return 'quick'"), [await _dataset(api, y["token"])]
        )
        backlog = await _queue(api, x["token"], slow, 18)
        started = time.monotonic()
        (run,) = await _queue(api, y["token"], quick, 1)
        final = (await follow_card(api, y["token"], run))[-1]
        waited = time.monotonic() - started
        print(f"Y's card ended {waited:.1f} s after it was queued behind X's 18")
        assert final["status"] == "SUCCEEDED" and final["result"]["html"] == "quick"
        assert waited < 12, waited
        states = [(await api.ok(TIMES, {"id": r}, token=x["token"]))["execution"] for r in backlog]
        assert sum(s["status"] == "QUEUED" for s in states) >= 10, states  # X still waits
        for run_id in backlog:
            await api.ok(CANCEL, {"id": run_id}, token=x["token"])
    finally:
        await api.close()


async def test_a_users_runs_hold_no_more_output_than_their_budget_at_once(
    inprocess: InProcess, users: Users
) -> None:
    """Each run reserves its output cap (1 MiB) from its user's in-flight budget (1.5 MiB):
    X's two runs go one after the other though both slots are free, and Y's runs beside."""
    api, _ = await _own_deployment(
        inprocess,
        {
            "TILEGRAPH_CARD_OUTPUT_MAX_BYTES": str(1 << 20),
            "TILEGRAPH_MAX_INFLIGHT_OUTPUT_BYTES_PER_USER": str(3 << 19),
        },
    )
    x, y = await users.create("held-x"), await users.create("held-y")
    try:
        card_x = await create_card(
            api, x["token"], _sleeping(1.5, "x"), [await _dataset(api, x["token"])]
        )
        card_y = await create_card(
            api, y["token"], _sleeping(1.5, "y"), [await _dataset(api, y["token"])]
        )
        first, second = await _queue(api, x["token"], card_x, 2)
        (beside,) = await _queue(api, y["token"], card_y, 1)
        for run_id, owner in ((first, x), (second, x), (beside, y)):
            assert (await follow_card(api, owner["token"], run_id))[-1]["status"] == "SUCCEEDED"
        one, two = [
            (await api.ok(TIMES, {"id": r}, token=x["token"]))["execution"] for r in (first, second)
        ]
        other = (await api.ok(TIMES, {"id": beside}, token=y["token"]))["execution"]
        at = datetime.fromisoformat
        assert at(two["startedAt"]) >= at(one["finishedAt"]), (one, two)
        assert at(other["startedAt"]) < at(one["finishedAt"]), (one, other)
    finally:
        await api.close()


async def test_a_run_whose_queue_entry_was_lost_is_queued_again_in_its_users_turn(
    inprocess: InProcess, users: Users, api: Api, worker: Any
) -> None:
    """The fair queue's state and the job vanish (as with a Redis restarted without
    persistence); the sweeper queues the run again, in its user's queue, with its plan."""
    owner = await users.create("requeued")
    dataset = await _dataset(api, owner["token"])
    env = {"TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}"}
    server = await inprocess.start_api(env)
    own = Api(server.url, server.ws_url)
    try:
        card = await create_card(own, owner["token"], render("return 'again'"), [dataset])
        (run,) = await _queue(own, owner["token"], card, 1)
        redis = server.services.redis
        queue = env["TILEGRAPH_QUEUE_NAME"]
        assert await redis.lrange(f"{queue}:fair:user:{owner['id']}", 0, -1)
        lost = [k async for k in redis.scan_iter(f"{queue}*")]
        await redis.delete(*lost, f"arq:job:{run}")
        await inprocess.start_worker(env)  # its sweeper finds the QUEUED run without a job
        final = (await follow_card(own, owner["token"], run))[-1]
        assert final["status"] == "SUCCEEDED" and final["result"]["html"] == "again"
    finally:
        await own.close()
