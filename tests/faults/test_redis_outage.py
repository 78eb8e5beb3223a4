"""Redis killed (-9) under a running API, then restarted empty: sign-in, authentication and
DynamoDB-only reads keep working, queueing refuses with a retryable SERVICE_UNAVAILABLE, a
signed-out token stays signed out, and the run accepted before the outage still runs once.

Each test runs its own redis-server (the session's stays up for everyone else) with an API
and, where needed, a worker in this event loop pointed at it."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD
from tests.support.cards import EXECUTE, FOLLOW, create_card, render, run_card
from tests.support.client import Api, Response, WebSocketSession
from tests.support.datasets import FOLLOW as FOLLOW_IMPORT
from tests.support.datasets import csv_bytes, follow_import, import_and_wait, upload
from tests.support.inprocess import InProcess, InProcessApi
from tests.support.stack import RedisServer, Stack, free_port, kill_hard

ME = "{ me { id email } }"
DASHBOARDS = "{ dashboards(first: 10) { totalCount nodes { id name } } }"
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { token } }"
LOGOUT = "mutation { logout { ok } }"
READS = """query($run: ID!, $ds: ID!) { cardExecution(id: $run) { status result { html } }
  dataset(id: $ds) { rowCount preview { rows } } }"""


@dataclass
class Outage:
    redis: RedisServer
    app: InProcessApi
    api: Api
    overrides: dict[str, str]

    def kill(self) -> None:
        assert self.redis.process is not None
        kill_hard(self.redis.process)
        self.redis.process = None

    def restart_empty(self) -> float:
        """Starts the same Redis with nothing in it; returns when it listens (monotonic)."""
        self.redis.start()
        return time.monotonic()


@pytest.fixture
async def outage_factory(
    stack: Stack, inprocess: InProcess, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Outage]]]:
    servers: list[RedisServer] = []
    clients: list[Api] = []

    async def start(**settings: str) -> Outage:
        redis = RedisServer(free_port(), tmp_path / f"redis-{len(servers)}")
        redis.start()
        servers.append(redis)
        overrides = {
            "TILEGRAPH_REDIS_URL": redis.url,
            "TILEGRAPH_CACHE_REDIS_URL": redis.url,
            "TILEGRAPH_QUEUE_NAME": f"tilegraph:faults:{secrets.token_hex(3)}",
            **settings,
        }
        app = await inprocess.start_api(overrides)
        await app.services.users.ensure_admin(ADMIN_EMAIL, "Administrator", ADMIN_PASSWORD)
        api = Api(app.url, app.ws_url, app.transport)
        clients.append(api)
        return Outage(redis, app, api, overrides)

    try:
        yield start
    finally:
        for client in clients:
            await client.close()
        # The API and worker close their connections before their Redis goes.
        for server in servers:
            if server.process is None:
                server.start()
        await inprocess.stop()
        for server in servers:
            server.stop()


async def new_user(api: Api, name: str) -> dict[str, str]:
    admin = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    email = f"{name}-{secrets.token_hex(4)}@tests.example"
    await api.ok(
        "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
        {"i": {"email": email, "name": name, "password": USER_PASSWORD, "role": "USER"}},
        token=admin,
    )
    return {"email": email, "token": await api.login(email, USER_PASSWORD)}


def no_internal_errors(response: Response) -> None:
    codes = [e.get("extensions", {}).get("code") for e in response.errors]
    assert "INTERNAL_SERVER_ERROR" not in codes, response.body


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Polls `check` until true; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


async def subscribed(session: WebSocketSession, execution_id: str) -> str:
    assert (await session.receive())["type"] == "connection_ack"
    return await session.subscribe(FOLLOW, {"id": execution_id})


async def test_redis_killed_then_restarted_empty(
    outage_factory: Callable[..., Awaitable[Outage]], inprocess: InProcess
) -> None:
    outage = await outage_factory(TILEGRAPH_SUBSCRIPTION_OUTAGE_SECONDS="120")
    api = outage.api
    worker = await inprocess.start_worker(outage.overrides)
    user = await new_user(api, "outage")
    token = user["token"]
    _, imported = await import_and_wait(api, token, csv_bytes([["x"], [1], [2]]))
    assert imported["status"] == "SUCCEEDED", imported
    dataset_id = imported["dataset"]["id"]
    card_id = await create_card(api, token, render("return str(len(dataset))"), [dataset_id])
    await api.ok(
        'mutation { createDashboard(input: {name: "Outage"}) { dashboard { id } } }', token=token
    )
    finished_before = await run_card(api, token, card_id, useCache=False)
    assert finished_before["status"] == "SUCCEEDED", finished_before
    signed_out = await api.login(user["email"], USER_PASSWORD)
    await api.ok(LOGOUT, token=signed_out)
    # Accepted before the outage, while no worker runs: its job lives only in Redis.
    await worker.stop()
    inprocess.started.remove(worker)
    data = await api.ok(EXECUTE, {"i": {"id": card_id, "useCache": False}}, token=token)
    accepted = data["executeCard"]["execution"]
    assert accepted["status"] == "QUEUED"

    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        op = await subscribed(session, accepted["id"])
        first = await anext(session.messages(op))
        assert first["data"]["cardExecution"]["status"] == "QUEUED"

        outage.kill()

        async with httpx.AsyncClient(transport=outage.app.transport, base_url=api.base_url) as c:
            assert (await c.get("/healthz")).status_code == 200
            ready = await c.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["redis"].startswith("unavailable"), checks
        assert checks["dynamodb"] == "ok" and checks["s3"] == "ok", checks

        # Authentication and DynamoDB-only reads keep working.
        assert (await api.ok(ME, token=token))["me"]["email"] == user["email"]
        assert (await api.ok(DASHBOARDS, token=token))["dashboards"]["totalCount"] == 1
        reads = await api.ok(READS, {"run": finished_before["id"], "ds": dataset_id}, token=token)
        assert reads["cardExecution"]["result"]["html"] == "2", reads  # from S3, not the cache
        assert reads["dataset"]["rowCount"] == 2 and len(reads["dataset"]["preview"]["rows"]) == 2
        # Signing in works (throttled in memory), and so does the new token.
        fresh = (await api.ok(LOGIN, {"i": {"email": user["email"], "password": USER_PASSWORD}}))[
            "login"
        ]["token"]
        assert (await api.ok(ME, token=fresh))["me"]["email"] == user["email"]
        wrong = await api.fail(LOGIN, {"i": {"email": user["email"], "password": "Wrong-1x!"}})
        assert wrong.code == "UNAUTHENTICATED"
        # Tokens signed out before and during the outage are refused.
        refused = await api.fail(ME, token=signed_out)
        assert refused.code == "UNAUTHENTICATED", refused.body
        during = await api.login(user["email"], USER_PASSWORD)
        await api.ok(LOGOUT, token=during)
        assert (await api.fail(ME, token=during)).code == "UNAUTHENTICATED"
        # Queueing needs Redis: refused, retryable, nothing started.
        run = await api.fail(EXECUTE, {"i": {"id": card_id, "useCache": False}}, token=token)
        no_internal_errors(run)
        assert run.code == "SERVICE_UNAVAILABLE", run.body
        assert isinstance(run.error["extensions"]["retryAfter"], int)
        assert run.error["extensions"]["retryAfter"] > 0
        # An upload is accepted: QUEUED in DynamoDB, enqueued by the sweeper later.
        late = await upload(api, token, csv_bytes([["y"], [1], [2], [3]]), name="late")
        assert "errors" not in late, late
        assert late["import"]["status"] == "QUEUED"
        # A new subscription cannot be served: it ends with the same error at once.
        async with api.websocket({"authorization": f"Bearer {token}"}) as other:
            other_op = await subscribed(other, accepted["id"])
            ended = [p async for p in other.messages(other_op, timeout=15)]
        assert ended and "errors" in ended[-1], ended
        assert ended[-1]["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", ended

        back = outage.restart_empty()
        await inprocess.start_worker(outage.overrides)  # its sweeper finds the lost job
        # The subscription open during the kill resumes and sees the run end.
        states = []
        async for payload in session.messages(op, timeout=60):
            assert "errors" not in payload, payload
            states.append(payload["data"]["cardExecution"])
        finished = time.monotonic() - back
    assert states[-1]["status"] == "SUCCEEDED", states
    assert states[-1]["result"]["html"] == "2"
    print(f"\nRedis back -> queued run re-enqueued and finished: {finished:.2f} s")
    imported_late = (await follow_import(api, token, late["import"]["id"]))[-1]
    assert imported_late["status"] == "SUCCEEDED", imported_late
    assert imported_late["dataset"]["rowCount"] == 3
    print(
        f"Redis back -> upload accepted during the outage imported: {time.monotonic() - back:.2f} s"
    )

    # The restart emptied Redis: the revocations come from DynamoDB.
    for revoked in (signed_out, during):
        assert (await api.fail(ME, token=revoked)).code == "UNAUTHENTICATED"
    assert (await api.ok(ME, token=token))["me"]["email"] == user["email"]
    # Exactly once: the record stays as the one run left it (no second run is queued).
    await asyncio.sleep(0)
    record = await outage.app.services.repos.cards.get_execution(accepted["id"])
    assert record is not None and record.status.value == "SUCCEEDED"
    ran_at = record.started_at
    refreshed: dict[str, Any] = {}

    async def unchanged_after_sweeps() -> bool:
        again = await outage.app.services.repos.cards.get_execution(accepted["id"])
        assert again is not None and again.started_at == ran_at, "the run ran again"
        refreshed["n"] = refreshed.get("n", 0) + 1
        return refreshed["n"] >= 30  # ~3 s: several sweeps (one a second in tests)

    await eventually(unchanged_after_sweeps, 10, "sweeps")


async def test_a_subscription_ends_retryably_when_redis_stays_away(
    outage_factory: Callable[..., Awaitable[Outage]],
) -> None:
    outage = await outage_factory(
        TILEGRAPH_SUBSCRIPTION_OUTAGE_SECONDS="2", TILEGRAPH_IDLE_RECHECK_SECONDS="0.5"
    )
    api = outage.api
    user = await new_user(api, "outage-sub")
    token = user["token"]
    # No worker: the import stays QUEUED, a stream that does not end by itself.
    uploaded = await upload(api, token, csv_bytes([["x"], [1]]))
    import_id = uploaded["import"]["id"]
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW_IMPORT, {"id": import_id})
        stream = session.messages(op, timeout=30)
        assert (await anext(stream))["data"]["datasetImport"]["status"] == "QUEUED"
        outage.kill()
        killed = time.monotonic()
        rest = [p async for p in stream]
    assert rest and "errors" in rest[-1], rest
    error = rest[-1]["errors"][0]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", error
    assert error["extensions"]["retryAfter"] > 0
    print(f"\nsubscription ended SERVICE_UNAVAILABLE {time.monotonic() - killed:.2f} s after kill")


async def test_a_signed_out_token_stays_out_when_redis_restarts_empty(
    outage_factory: Callable[..., Awaitable[Outage]], inprocess: InProcess
) -> None:
    outage = await outage_factory()
    api = outage.api
    # Another API process: it knows of the logout only through the stores.
    other_app = await inprocess.start_api(outage.overrides)
    other = Api(other_app.url, other_app.ws_url, other_app.transport)
    try:
        user = await new_user(api, "outage-logout")
        token = user["token"]
        # Checked first, so both caches hold "not revoked" when the logout comes.
        for client in (api, other):
            assert (await client.ok(ME, token=token))["me"]["email"] == user["email"]
        await api.ok(LOGOUT, token=token)
        for client in (api, other):
            assert (await client.fail(ME, token=token)).code == "UNAUTHENTICATED"
        outage.kill()  # while Redis is down, from DynamoDB
        assert (await other.fail(ME, token=token)).code == "UNAUTHENTICATED"
        outage.restart_empty()  # no persistence: every key is gone
        for _ in range(2):  # from DynamoDB, then from the cache it filled
            assert (await other.fail(ME, token=token)).code == "UNAUTHENTICATED"
            assert (await api.fail(ME, token=token)).code == "UNAUTHENTICATED"
    finally:
        await other.close()


async def test_login_failures_are_limited_in_memory_while_redis_is_down(
    outage_factory: Callable[..., Awaitable[Outage]],
) -> None:
    outage = await outage_factory(TILEGRAPH_LOGIN_MAX_FAILURES_PER_EMAIL="3")
    api = outage.api
    user = await new_user(api, "outage-throttle")
    outage.kill()
    wrong = {"i": {"email": user["email"], "password": "Wrong-Passw0rd!"}}
    for _ in range(3):
        assert (await api.fail(LOGIN, wrong)).code == "UNAUTHENTICATED"
    limited = await api.fail(LOGIN, {"i": {"email": user["email"], "password": USER_PASSWORD}})
    assert limited.code == "RATE_LIMITED", limited.body
    assert limited.error["extensions"]["retryAfter"] > 0
