"""Cards through the API: code contract, errors, filters, the cache, limits and access."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import Users
from tests.support.cards import FOLLOW, create_card, follow_card, render, run_card
from tests.support.client import Api
from tests.support.datasets import IMPORT_S3, csv_bytes, follow_import, import_and_wait, upload
from tests.support.inprocess import InProcess
from tests.support.stack import RedisServer, Stack, free_port
from tests.support.transforms import create_transform

ROWS = [
    ["region", "product", "amount", "day"],
    ["north", "apple", 10, "2024-01-01"],
    ["south", "pear", 20, "2024-01-15"],
    ["north", "plum", 30, "2024-01-31"],
    ["east", "fig", "", "2024-02-01"],
    ["", "kiwi", 50, "2024-02-02"],
]
SUMMARY = render("""
import json
return json.dumps({"rows": len(dataset), "regions": sorted(str(r) for r in dataset["region"].dropna().unique()),
                   "total": float(dataset["amount"].fillna(0).sum()), "columns": list(dataset.columns)})
""")
SEED = (
    "def render(dataset, filters, params):\n    import plotly.express as px\n"
    "    fig = px.bar(dataset, x=dataset.columns[0], y=dataset.columns[1])\n"
    "    return HTMLResult(html=fig.to_html())"
)


@pytest.fixture(scope="module")
async def owner(users: Users) -> dict[str, str]:
    return await users.create("cards")


@pytest.fixture(scope="module")
async def sales(api: Api, owner: dict[str, str], worker: Any) -> str:
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(ROWS), name="sales")
    assert final["status"] == "SUCCEEDED"
    return str(uploaded["dataset"]["id"])


async def test_plotly_and_seed_cards_render(api: Api, owner: dict[str, str], sales: str) -> None:
    bar = render("""
fig = px.bar(dataset.dropna(), x="region", y="amount")
return HTMLResult(html=fig.to_html(include_plotlyjs=False), used_columns=["region", "amount"],
                  filter_applicable=["region"])
""")
    card_id = await create_card(api, owner["token"], bar, [sales], name="Bar")
    final = await run_card(api, owner["token"], card_id)
    assert final["status"] == "SUCCEEDED", final
    assert "plotly" in final["result"]["html"].lower()
    assert final["result"]["usedColumns"] == ["region", "amount"]
    assert final["result"]["filterApplicable"] == ["region"]
    assert final["result"]["cached"] is False and final["result"]["executionTimeMs"] > 0
    learned = await api.ok(
        "query($id: ID!) { card(id: $id) { usedColumns filterApplicable dataset { id } datasets { id } owner { id } } }",
        {"id": card_id},
        token=owner["token"],
    )
    assert learned["card"]["usedColumns"] == ["region", "amount"]
    assert (
        learned["card"]["dataset"]["id"] == sales and learned["card"]["owner"]["id"] == owner["id"]
    )

    seed = await create_card(api, owner["token"], SEED, [sales], name="Seed")
    seeded = await run_card(api, owner["token"], seed)
    assert seeded["status"] == "SUCCEEDED", seeded
    assert "<div" in seeded["result"]["html"]


async def test_text_cards_are_returned_as_is(api: Api, owner: dict[str, str]) -> None:
    text = "<h1>Quarterly notes</h1><script>never run</script>"
    card_id = await create_card(api, owner["token"], text, [], card_type="TEXT")
    final = await run_card(api, owner["token"], card_id)
    assert final["status"] == "SUCCEEDED" and final["result"]["html"] == text


ERROR_CARDS = {
    "SYNTAX_ERROR": ("def render(dataset, filters, params):\n    y = 1\n    return y +\n", 3),
    "MISSING_ENTRY_POINT": ("def draw(dataset):\n    return 'x'\n", None),
    "FORBIDDEN_OPERATION": (render("import ctypes\nreturn 'x'"), None),
    "RUNTIME_ERROR": (
        "def helper():\n    return 1 / 0\n\ndef render(dataset, filters, params):\n"
        "    return helper()\n",
        2,
    ),
    "BAD_RESULT": (render("return 42"), None),
    "TIMEOUT": (render("while True:\n    pass"), None),
    "MEMORY_LIMIT": (render("block = bytearray(20 * 1024 ** 3)\nreturn str(len(block))"), None),
    "OUTPUT_TOO_LARGE": (render("return 'x' * (6 * 1024 * 1024)"), None),
}


@pytest.mark.parametrize("code", list(ERROR_CARDS))
async def test_each_error_code_from_a_real_failing_card(
    api: Api, owner: dict[str, str], sales: str, code: str
) -> None:
    source, line = ERROR_CARDS[code]
    card_id = await create_card(api, owner["token"], source, [sales], name=code)
    final = await run_card(api, owner["token"], card_id)
    assert final["status"] == "FAILED", final
    assert final["error"]["code"] == code, final["error"]
    if line is not None:
        assert final["error"]["line"] == line
    if code == "RUNTIME_ERROR":
        message = final["error"]["message"]
        assert "ZeroDivisionError" in message and "helper" in message
        assert "runner" not in message and "tilegraph" not in message


async def test_cards_on_data_not_yet_imported_fail_as_input_unavailable(
    api: Api, owner: dict[str, str], inprocess: InProcess
) -> None:
    # Uploaded through an API whose queue no worker consumes: the dataset stays at version 0.
    idle = await inprocess.start_api({"TILEGRAPH_QUEUE_NAME": "tilegraph:test:idle"})
    idle_api = Api(idle.url, idle.ws_url)
    try:
        uploaded = await upload(idle_api, owner["token"], b"a\n1\n")
    finally:
        await idle_api.close()
    card_id = await create_card(
        api, owner["token"], render("return 'x'"), [uploaded["dataset"]["id"]]
    )
    final = await run_card(api, owner["token"], card_id)
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "INPUT_UNAVAILABLE"
    assert "no data yet" in final["error"]["message"]


async def test_cancel_a_running_card(api: Api, owner: dict[str, str], sales: str) -> None:
    card_id = await create_card(
        api, owner["token"], render("import time\ntime.sleep(60)\nreturn 'late'"), [sales]
    )
    data = await api.ok(
        "mutation($id: ID!) { executeCard(input: {id: $id}) { execution { id } } }",
        {"id": card_id},
        token=owner["token"],
    )
    execution_id = data["executeCard"]["execution"]["id"]
    async with api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW, {"id": execution_id})
        states = []
        async for payload in session.messages(op):
            state = payload["data"]["cardExecution"]
            states.append(state["status"])
            # Cancel once: a running execution may report RUNNING again (progress).
            if state["status"] == "RUNNING" and states.count("RUNNING") == 1:
                cancelled = await api.ok(
                    "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }",
                    {"id": execution_id},
                    token=owner["token"],
                )
                assert cancelled["cancelExecution"]["ok"] is True
            final = state
    assert final["status"] == "CANCELLED" and final["error"]["code"] == "CANCELLED"
    assert "RUNNING" in states


async def test_filters_are_applied_before_render(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    card_id = await create_card(api, owner["token"], SUMMARY, [sales])
    everything = json.loads((await run_card(api, owner["token"], card_id))["result"]["html"])
    assert everything["rows"] == 5

    def summary(final: dict[str, Any]) -> dict[str, Any]:
        assert final["status"] == "SUCCEEDED", final
        return json.loads(final["result"]["html"])

    north = summary(
        await run_card(
            api, owner["token"], card_id, filters=[{"column": "region", "values": ["north"]}]
        )
    )
    assert north["rows"] == 2 and north["regions"] == ["north"] and north["total"] == 40
    with_null = summary(
        await run_card(
            api,
            owner["token"],
            card_id,
            filters=[{"column": "region", "values": ["east"], "includeNull": True}],
        )
    )
    assert with_null["rows"] == 2
    january = summary(
        await run_card(
            api,
            owner["token"],
            card_id,
            filters=[{"column": "day", "start": "2024-01-15", "end": "2024-01-31"}],
        )
    )
    assert january["rows"] == 2
    amounts = summary(
        await run_card(api, owner["token"], card_id, filters=[{"column": "amount", "start": "15"}])
    )
    assert amounts["rows"] == 3  # 20, 30, 50; the null amount is dropped
    ignored = await run_card(
        api, owner["token"], card_id, filters=[{"column": "no_such_column", "values": ["x"]}]
    )
    assert summary(ignored)["rows"] == 5 and ignored["result"]["ignoredFilters"] == [
        "no_such_column"
    ]
    bad = await api.fail(
        'mutation($id: ID!) { executeCard(input: {id: $id, filters: [{column: "amount", start: "lots"}]}) { execution { id } } }',
        {"id": card_id},
        token=owner["token"],
    )
    assert bad.code == "BAD_USER_INPUT" and bad.error["extensions"]["field"] == "filters"


async def test_cache_hits_misses_and_invalidation_by_reimport(
    api: Api, owner: dict[str, str], worker: Any, s3: Any, source_bucket: str
) -> None:
    key = f"cards/{secrets.token_hex(4)}.csv"
    s3.put_object(Bucket=source_bucket, Key=key, Body=csv_bytes(ROWS))
    data = await api.ok(
        IMPORT_S3,
        {"input": {"name": "cached", "bucket": source_bucket, "key": key}},
        token=owner["token"],
    )
    dataset_id = data["importDatasetFromS3"]["dataset"]["id"]
    await follow_import(api, owner["token"], data["importDatasetFromS3"]["import"]["id"])
    card_id = await create_card(api, owner["token"], SUMMARY, [dataset_id])

    first = await run_card(api, owner["token"], card_id)
    second = await run_card(api, owner["token"], card_id)
    assert first["result"]["cached"] is False and second["result"]["cached"] is True
    assert first["result"]["html"] == second["result"]["html"]
    immediate = await api.ok(
        "mutation($id: ID!) { executeCard(input: {id: $id}) { execution { status result { cached } } } }",
        {"id": card_id},
        token=owner["token"],
    )
    assert immediate["executeCard"]["execution"] == {
        "status": "SUCCEEDED",
        "result": {"cached": True},
    }
    bypass = await run_card(api, owner["token"], card_id, useCache=False)
    assert bypass["result"]["cached"] is False
    filtered = await run_card(
        api, owner["token"], card_id, filters=[{"column": "region", "values": ["south"]}]
    )
    assert filtered["result"]["cached"] is False  # other filters, other entry

    s3.put_object(
        Bucket=source_bucket, Key=key, Body=csv_bytes([*ROWS, ["west", "lime", 5, "2024-03-01"]])
    )
    reimport = await api.ok(
        "mutation($id: ID!) { reimportDataset(input: {id: $id}) { import { id } } }",
        {"id": dataset_id},
        token=owner["token"],
    )
    await follow_import(api, owner["token"], reimport["reimportDataset"]["import"]["id"])
    after = await run_card(api, owner["token"], card_id)
    assert after["result"]["cached"] is False
    assert json.loads(after["result"]["html"])["rows"] == 6


async def test_preview_runs_draft_code_on_own_datasets(
    api: Api, owner: dict[str, str], sales: str, users: Users
) -> None:
    preview = "mutation($i: PreviewCardInput!) { previewCard(input: $i) { execution { id card { id } } } }"
    data = await api.ok(
        preview,
        {
            "i": {
                "code": SUMMARY,
                "datasetIds": [sales],
                "filters": [{"column": "region", "values": ["south"]}],
            }
        },
        token=owner["token"],
    )
    execution = data["previewCard"]["execution"]
    assert execution["card"] is None
    final = (await follow_card(api, owner["token"], execution["id"]))[-1]
    assert json.loads(final["result"]["html"])["rows"] == 1
    stranger = await users.create("not-the-owner")
    denied = await api.fail(
        preview, {"i": {"code": SUMMARY, "datasetIds": [sales]}}, token=stranger["token"]
    )
    assert denied.code == "NOT_FOUND"


async def test_card_crud_and_access(
    api: Api, owner: dict[str, str], sales: str, users: Users, admin_token: str
) -> None:
    card_id = await create_card(
        api, owner["token"], SUMMARY, [sales], name="Mine", params={"top": 3}
    )
    update = "mutation($i: UpdateCardInput!) { updateCard(input: $i) { card { name code params usedColumns } } }"
    updated = await api.ok(
        update,
        {"i": {"id": card_id, "name": "Renamed", "params": {"top": 5}}},
        token=owner["token"],
    )
    assert updated["updateCard"]["card"]["name"] == "Renamed"
    assert updated["updateCard"]["card"]["params"] == {"top": 5}
    listing = await api.ok("{ cards { totalCount edges { node { id } } } }", token=owner["token"])
    assert card_id in [e["node"]["id"] for e in listing["cards"]["edges"]]

    stranger = await users.create("card-stranger")
    for query, variables in [
        ("query($id: ID!) { card(id: $id) { id } }", {"id": card_id}),
        (update, {"i": {"id": card_id, "name": "x"}}),
        ("mutation($id: ID!) { deleteCard(input: {id: $id}) { deletedId } }", {"id": card_id}),
        (
            "mutation($id: ID!) { executeCard(input: {id: $id}) { execution { id } } }",
            {"id": card_id},
        ),
    ]:
        assert (await api.fail(query, variables, token=stranger["token"])).code == "NOT_FOUND"
    assert (
        await api.fail(
            "query($id: ID!) { card(id: $id) { id } }", {"id": card_id}, token=admin_token
        )
    ).code == "NOT_FOUND"
    other_dataset = await api.fail(
        "mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }",
        {"i": {"name": "x", "code": SUMMARY, "datasetIds": [sales]}},
        token=stranger["token"],
    )
    assert other_dataset.code == "NOT_FOUND"

    in_use = await api.fail(
        "mutation($id: ID!) { deleteDataset(input: {id: $id}) { deletedId } }",
        {"id": sales},
        token=owner["token"],
    )
    assert in_use.code == "CONFLICT" and card_id in in_use.error["message"]

    deleted = await api.ok(
        "mutation($id: ID!) { deleteCard(input: {id: $id}) { deletedId } }",
        {"id": card_id},
        token=owner["token"],
    )
    assert deleted["deleteCard"]["deletedId"] == card_id


async def test_failed_runs_are_audited(
    api: Api, owner: dict[str, str], sales: str, admin_token: str
) -> None:
    card_id = await create_card(api, owner["token"], render("return 42"), [sales])
    final = await run_card(api, owner["token"], card_id)
    assert final["error"]["code"] == "BAD_RESULT"
    logs = await api.ok(
        "query($t: String!) { auditLogs(filter: {targetId: $t, eventType: CARD_EXECUTION_FAILED}) { edges { node { details user { id } } } } }",
        {"t": card_id},
        token=admin_token,
    )
    node = logs["auditLogs"]["edges"][0]["node"]
    assert node["details"]["code"] == "BAD_RESULT" and node["user"]["id"] == owner["id"]


async def test_card_run_sequence_over_websocket_and_the_per_user_cap(
    inprocess: InProcess, owner: dict[str, str], sales: str
) -> None:
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": "2",
    }
    server = await inprocess.start_api(env)
    own = Api(server.url, server.ws_url)
    try:
        card_id = await create_card(own, owner["token"], SUMMARY, [sales])
        execute = "mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) { execution { id status } } }"
        first = (await own.ok(execute, {"id": card_id}, token=owner["token"]))["executeCard"]
        second = await own.ok(execute, {"id": card_id}, token=owner["token"])
        assert first["execution"]["status"] == "QUEUED" and second
        capped = await own.fail(execute, {"id": card_id}, token=owner["token"])
        assert capped.code == "RATE_LIMITED"
        async with own.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(FOLLOW, {"id": first["execution"]["id"]})
            states = []
            async for payload in session.messages(op):
                state = payload["data"]["cardExecution"]
                states.append(state["status"])
                if len(states) == 1:
                    assert state["status"] == "QUEUED"
                    await inprocess.start_worker(env)
                final = state
        assert states == ["QUEUED", "RUNNING", "SUCCEEDED"]
        assert final["card"]["id"] == card_id and json.loads(final["result"]["html"])["rows"] == 5
        # Finished runs free their places in the queue.
        await follow_card(own, owner["token"], second["executeCard"]["execution"]["id"])
        assert (await own.ok(execute, {"id": card_id}, token=owner["token"]))["executeCard"]
    finally:
        await own.close()


EXECUTE_NO_CACHE = """mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) {
  execution { id } } }"""
EXECUTE_TRANSFORM = "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }"


def _accepted(responses: list[Any]) -> int:
    refused = [r for r in responses if r.errors]
    assert all(r.code == "RATE_LIMITED" for r in refused), [r.body for r in refused][:3]
    return len(responses) - len(refused)


async def test_the_per_user_run_cap_holds_under_concurrent_requests(
    inprocess: InProcess, users: Users, api: Api, worker: Any
) -> None:
    """Admission checks and takes a place in one Redis step: 10 users sending 22 runs each
    at once, with a cap of 20, get exactly 20 each; 40 at once from one user, exactly 20;
    and card runs and manual transform runs share the cap (12 + 12 at once: exactly 20).
    No worker runs on this queue, so every admitted run still holds its place."""
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": "20",
    }
    server = await inprocess.start_api(env)
    own = Api(server.url, server.ws_url)
    try:
        people = await asyncio.gather(*(users.create(f"cap{i}") for i in range(12)))
        imported = await asyncio.gather(
            *(import_and_wait(api, p["token"], csv_bytes(ROWS)) for p in people)
        )
        datasets = [uploaded["dataset"]["id"] for uploaded, _ in imported]
        cards = await asyncio.gather(
            *(
                create_card(own, p["token"], SUMMARY, [d])
                for p, d in zip(people, datasets, strict=True)
            )
        )
        burst = [
            own.post(EXECUTE_NO_CACHE, {"id": card}, token=p["token"])
            for p, card in zip(people[:10], cards[:10], strict=True)
            for _ in range(22)
        ]
        responses = await asyncio.gather(*burst)
        for i in range(10):
            assert _accepted(list(responses[i * 22 : (i + 1) * 22])) == 20, i

        one = people[10]
        alone = await asyncio.gather(
            *(own.post(EXECUTE_NO_CACHE, {"id": cards[10]}, token=one["token"]) for _ in range(40))
        )
        assert _accepted(list(alone)) == 20

        mixed = people[11]
        transform = await create_transform(own, mixed["token"], "result = df_0", [datasets[11]])
        both = await asyncio.gather(
            *(
                own.post(EXECUTE_NO_CACHE, {"id": cards[11]}, token=mixed["token"])
                if i % 2
                else own.post(EXECUTE_TRANSFORM, {"id": transform["id"]}, token=mixed["token"])
                for i in range(24)
            )
        )
        assert _accepted(list(both)) == 20
    finally:
        await own.close()


async def test_results_are_cached_in_a_bounded_redis_of_their_own_and_expire_from_s3(
    inprocess: InProcess, owner: dict[str, str], sales: str, stack: Stack, tmp_path: Any, s3: Any
) -> None:
    """Eight results of ~700 KB through a cache Redis of 4 MB: the least recently used are
    evicted (and run again when asked for); the main Redis (queue, events, token denylist) holds none of them
    and its revoked tokens stay revoked; evicted HTML is still read from S3, whose copies
    expire by the bucket's lifecycle rule."""
    cache = RedisServer(
        free_port(),
        tmp_path / "cache",
        options=("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"),
    )
    cache.start()
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_CACHE_REDIS_URL": cache.url,
    }
    server = await inprocess.start_api(env)
    await inprocess.start_worker(env)
    own = Api(server.url, server.ws_url)
    main = Redis.from_url(stack.redis.url)
    cached = Redis.from_url(cache.url)
    try:
        user = owner
        revoked = await own.login(user["email"], user["password"])
        await own.ok("mutation { logout { ok } }", token=revoked)
        card = await create_card(
            own, user["token"], render("return str(params['n']) + 'x' * 700_000"), [sales]
        )
        finals = [
            await run_card(own, user["token"], card, params={"n": n}, useCache=False)
            for n in range(8)
        ]
        assert all(f["status"] == "SUCCEEDED" for f in finals), finals
        kept = [k async for k in cached.scan_iter("card:cache:*")]
        stats = await cached.info("stats")
        memory = await cached.info("memory")
        assert stats["evicted_keys"] > 0 and memory["used_memory"] <= 4 << 20, (stats, memory)
        assert 0 < len(kept) < 8, kept
        # Which went first is not fixed (Redis's LRU clock ticks by the second, and a read
        # near the limit evicts too); the hits of a bounded cache are test_cache_hits_...'s.
        keys = [
            (await server.services.repos.cards.executions.get(f["id"]) or {})["result"]["cache_key"]
            for f in finals
        ]
        held = [f"card:cache:{k}".encode() in kept for k in keys]
        again = """mutation($i: ExecuteCardInput!) { executeCard(input: $i) {
          execution { id status result { cached } } } }"""

        async def run_again(n: int) -> dict[str, Any]:
            data = await own.ok(again, {"i": {"id": card, "params": {"n": n}}}, token=user["token"])
            return data["executeCard"]["execution"]  # type: ignore[no-any-return]

        miss = await run_again(held.index(False))
        assert miss["status"] == "QUEUED"  # evicted: it runs again
        await follow_card(own, user["token"], miss["id"])
        assert [k async for k in main.scan_iter("card:cache:*")] == []
        assert (await own.fail("{ me { id } }", token=revoked)).code == "UNAUTHENTICATED"
        first_html = await own.ok(
            "query($id: ID!) { cardExecution(id: $id) { result { html } } }",
            {"id": finals[0]["id"]},
            token=user["token"],
        )
        assert first_html["cardExecution"]["result"]["html"].startswith("0xxx")  # from S3
        rules = s3.get_bucket_lifecycle_configuration(Bucket=stack.env["TILEGRAPH_BUCKET"])
        assert {
            "ID": "tilegraph-card-results-expire",
            "Filter": {"Prefix": "card-results/"},
            "Status": "Enabled",
            "Expiration": {"Days": 30},
        } in rules["Rules"]
    finally:
        await own.close()
        await main.aclose()
        await cached.aclose()
        await inprocess.stop()
        cache.stop()


async def test_oversize_params_and_descriptions_name_their_field(
    api: Api, owner: dict[str, str], sales: str
) -> None:
    huge = "p" * 900_000
    create = "mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }"
    base = {"name": "big", "type": "CODE", "code": SUMMARY, "datasetIds": [sales]}
    for field, value in (("params", {"blob": huge}), ("description", huge)):
        refused = await api.fail(create, {"i": {**base, field: value}}, token=owner["token"])
        assert refused.code == "BAD_USER_INPUT", refused.body
        assert refused.error["extensions"]["field"] == field
    card_id = await create_card(api, owner["token"], SUMMARY, [sales], name="small")
    update = "mutation($i: UpdateCardInput!) { updateCard(input: $i) { card { id } } }"
    refused = await api.fail(
        update, {"i": {"id": card_id, "params": {"blob": huge}}}, token=owner["token"]
    )
    assert refused.error["extensions"]["field"] == "params"
    execute = "mutation($i: ExecuteCardInput!) { executeCard(input: $i) { execution { id } } }"
    refused = await api.fail(
        execute, {"i": {"id": card_id, "params": {"blob": huge}}}, token=owner["token"]
    )
    assert refused.code == "BAD_USER_INPUT" and refused.error["extensions"]["field"] == "params"


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ("query($id: ID!) { cardExecution(id: $id) { id } }", {"id": ""}, "id"),
        ('{ cardExecution(id: "") { id } }', None, "id"),
        ("query($id: ID!) { card(id: $id) { id } }", {"id": "card_" + "x" * 3000}, "id"),
        ("query($id: ID!) { dataset(id: $id) { id } }", {"id": " "}, "id"),
        ("query($id: ID!) { dashboard(id: $id) { id } }", {"id": ""}, "id"),
        ("query($id: ID!) { transformExecution(id: $id) { id } }", {"id": ""}, "id"),
        (
            "mutation($i: ExecuteCardInput!) { executeCard(input: $i) { execution { id } } }",
            {"i": {"id": ""}},
            "id",
        ),
        (
            "mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }",
            {"i": {"name": "c", "type": "CODE", "code": "x", "datasetIds": [""]}},
            "datasetIds",
        ),
    ],
    ids=["variable", "literal", "too long", "blank", "dashboard", "transform run", "input", "list"],
)
async def test_malformed_ids_are_bad_input_naming_the_argument(
    api: Api, owner: dict[str, str], query: str, variables: Any, field: str
) -> None:
    refused = await api.fail(query, variables, token=owner["token"])
    assert refused.code == "BAD_USER_INPUT", refused.body
    assert refused.error["extensions"]["field"] == field
