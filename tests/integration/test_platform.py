"""Platform guarantees: batched reads, CORS, audit failures, re-checked subscriptions and
the worker's refusal to run user code without its sandbox."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx

from tests.conftest import Users
from tests.support.client import Api
from tests.support.datasets import FOLLOW, csv_bytes, upload
from tests.support.inprocess import InProcess
from tests.support.stack import Stack
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.events.bus import EventBus
from tilegraph.services.registry import Services
from tilegraph.settings import Settings
from tilegraph.store.counting import RequestCounter


async def test_batch_gets_are_deduplicated_and_chunked_by_100(stack: Stack) -> None:
    services = await Services.open(Settings.from_env(stack.env))
    try:
        ids = [f"usr_batch{secrets.token_hex(4)}{i}" for i in range(250)]
        await services.db.batch_write(
            "users", puts=[{"id": i, "name": i, "email": f"{i}@x.example"} for i in ids]
        )
        counter = RequestCounter()
        token = counter.bind()
        try:
            found = await services.db.batch_get("users", [{"id": i} for i in ids + ids[:50]])
        finally:
            RequestCounter.unbind(token)
        assert sorted(item["id"] for item in found) == sorted(ids)
        assert counter.dynamodb == 3  # 250 distinct keys: 100 + 100 + 50
    finally:
        await services.close()


async def test_cors_follows_the_allow_list(inprocess: InProcess) -> None:
    server = await inprocess.start_api({"TILEGRAPH_CORS_ORIGINS": "https://bi.example"})
    async with httpx.AsyncClient(base_url=server.url) as client:
        allowed = await client.options(
            "/graphql",
            headers={
                "Origin": "https://bi.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        other = await client.options(
            "/graphql",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://bi.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers


def test_create_admin_refuses_a_common_password(stack: Stack) -> None:
    refused = stack.run_cli(
        "create-admin",
        "--email",
        f"weak-{secrets.token_hex(3)}@tests.example",
        "--password",
        "P@ssw0rd2024!",
    )
    assert refused.returncode == 1
    assert "most common passwords" in refused.stderr and "Created" not in refused.stdout


async def test_a_failing_audit_write_never_fails_the_request(stack: Stack) -> None:
    prefix = f"a{secrets.token_hex(3)}_"
    env = {"TILEGRAPH_TABLE_PREFIX": prefix}
    created = stack.run_cli(
        "create-admin", "--email", "audit@tests.example", "--password", "Audit-passw0rd!", env=env
    )
    assert created.returncode == 0, created.stderr
    server = stack.start_api("api-no-audit", env)
    stack.aws("dynamodb").delete_table(TableName=f"{prefix}audit_logs")
    api = Api(server.url, server.ws_url)
    try:
        token = await api.login("audit@tests.example", "Audit-passw0rd!")  # audits USER_LOGIN
        assert (await api.ok("{ me { email } }", token=token))["me"]["email"]
    finally:
        await api.close()
    assert "audit_write_failed" in server.log.read_text()


async def test_subscriptions_check_access_again_on_every_event(
    inprocess: InProcess, users: Users
) -> None:
    env = {"TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}"}
    server = await inprocess.start_api(env)
    api = Api(server.url, server.ws_url)
    try:
        owner = await users.create("recheck")
        uploaded = await upload(api, owner["token"], csv_bytes([["a"], [1]]))
        async with api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(FOLLOW, {"id": uploaded["import"]["id"]})
            messages = session.messages(op)
            first = await anext(messages)
            assert first["data"]["datasetImport"]["status"] == "QUEUED"
            await api.ok("mutation { logout { ok } }", token=owner["token"])  # revoke it
            await inprocess.start_worker(env)
            after = [payload async for payload in messages]
        assert after[-1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert not any(p.get("data") for p in after)
    finally:
        await api.close()


async def test_the_worker_refuses_to_run_user_code_without_its_sandbox(
    stack: Stack, tmp_path: Any
) -> None:
    # A PATH without bubblewrap: the worker must not quietly run user code unsandboxed.
    env = {"PATH": str(tmp_path)}
    refused = await asyncio.to_thread(stack.run_cli, "worker", "--burst", env=env, timeout=120)
    assert refused.returncode != 0
    assert (
        "refuses to run user code" in refused.stderr
        and "TILEGRAPH_SANDBOX=process" in refused.stderr
    )
    allowed = await asyncio.to_thread(
        stack.run_cli,
        "worker",
        "--burst",
        env={
            **env,
            "TILEGRAPH_SANDBOX": "process",
            "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        },
        timeout=120,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "sandbox_weakened" in allowed.stderr


async def test_the_event_bus_keeps_nothing_for_channels_no_one_follows(stack: Stack) -> None:
    """One channel per execution: an API process that forgot finished channels would grow
    for as long as it runs."""
    bus = EventBus(stack.env["TILEGRAPH_REDIS_URL"])
    await bus.start()
    try:
        for n in range(20):
            async with bus.subscribe(f"exec:bus-test-{n}"):
                pass
        assert bus._subscribers == {}
        assert bus._confirmations == {}
    finally:
        await bus.close()


async def test_a_transform_run_is_located_once_then_written_directly(stack: Stack) -> None:
    """Runs are keyed by transform + time, not id: the by_id lookup is paid once per run and
    process, not at every heartbeat and transition of its life."""
    services = await Services.open(Settings.from_env(stack.env))
    try:
        runs = services.repos.transforms.runs
        run_id = f"tex_keys{secrets.token_hex(4)}"
        # Fresh times, so the session worker's sweeper takes it for neither a lost run nor a
        # queued one whose job vanished while this test holds it.
        now = to_iso(utcnow())
        item = {
            "transform_id": f"tf_keys{secrets.token_hex(4)}",
            "started": f"{now}#{run_id}",
            "id": run_id,
            "owner_id": "usr_keys",
            "status": "QUEUED",
            "triggered_by": "MANUAL",
            "queued_at": now,
        }
        await runs.create(item)
        counter = RequestCounter()
        token = counter.bind()
        try:
            running = await runs.transition(
                run_id,
                allowed_from=[ExecutionStatus.QUEUED],
                to=ExecutionStatus.RUNNING,
                values={"started_at": now, "heartbeat_at": now},
            )
            assert running is not None and running["status"] == "RUNNING"
            assert await runs.heartbeat(run_id)
            assert (await runs.get(run_id) or {}).get("status") == "RUNNING"
        finally:
            RequestCounter.unbind(token)
        assert counter.dynamodb == 3  # one write, one write, one read: no index lookups
        # Another process (a fresh table object) finds the run through the index, once.
        other = await Services.open(Settings.from_env(stack.env))
        try:
            counter = RequestCounter()
            token = counter.bind()
            try:
                assert await other.repos.transforms.runs.heartbeat(run_id)
                assert await other.repos.transforms.runs.heartbeat(run_id)
            finally:
                RequestCounter.unbind(token)
            assert counter.dynamodb == 3  # the lookup, then two writes
        finally:
            await other.close()
        await runs.transition(  # out of the sweeper's way for good
            run_id, allowed_from=[ExecutionStatus.RUNNING], to=ExecutionStatus.CANCELLED
        )
    finally:
        await services.close()
