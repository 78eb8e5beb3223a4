"""The execution lifecycle on imports: the live sequence, cancel, a killed worker, a Redis
restart, re-import planning and forcing, and the command-line importer."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from tests.conftest import Users
from tests.support.client import Api
from tests.support.datasets import (
    DATASET,
    FOLLOW,
    big_csv,
    csv_bytes,
    follow_import,
    import_s3_and_wait,
    upload,
)
from tests.support.inprocess import InProcess
from tests.support.stack import RedisServer, Stack, free_port, kill_hard

PREVIEW = "query($id: ID!) { dataset(id: $id) { version preview(limit: 5) { rows } } }"


def _own_queue(stack: Stack) -> dict[str, str]:
    return {"TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}"}


async def _collect_until(session: Any, op: str, predicate: Any) -> list[dict[str, Any]]:
    events = []
    async for payload in session.messages(op):
        state = payload["data"]["datasetImport"]
        events.append(state)
        if predicate(state):
            break
    return events


async def test_queued_running_with_progress_succeeded_over_websocket(
    stack: Stack, inprocess: InProcess, users: Users
) -> None:
    env = _own_queue(stack)
    server = await inprocess.start_api(env)
    api = Api(server.url, server.ws_url)
    try:
        owner = await users.create("sequence")
        uploaded = await upload(api, owner["token"], big_csv(24))
        async with api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(FOLLOW, {"id": uploaded["import"]["id"]})
            first = await _collect_until(session, op, lambda s: True)
            assert first[0]["status"] == "QUEUED"
            await inprocess.start_worker(env)  # nobody consumed the queue until now
            events = first + await _collect_until(
                session, op, lambda s: s["status"] != "RUNNING" and s["status"] != "QUEUED"
            )
        statuses = [e["status"] for e in events]
        assert statuses[0] == "QUEUED" and statuses[-1] == "SUCCEEDED"
        running = [e for e in events if e["status"] == "RUNNING"]
        assert running, statuses
        progress = [e["progress"] for e in running]
        assert progress == sorted(progress)
        assert any(0 < p < 1 for p in progress)
        assert any((e["rowsProcessed"] or 0) > 0 for e in running)
        assert statuses == sorted(statuses, key=["QUEUED", "RUNNING", "SUCCEEDED"].index)
        assert events[-1]["progress"] == 1.0 and events[-1]["dataset"]["version"] == 1
    finally:
        await api.close()


async def test_cancel_a_running_import(api: Api, users: Users, worker: Any) -> None:
    owner = await users.create("canceller")
    uploaded = await upload(api, owner["token"], big_csv(48))
    import_id = uploaded["import"]["id"]
    async with api.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW, {"id": import_id})
        await _collect_until(
            session, op, lambda s: s["status"] == "RUNNING" and (s["rowsProcessed"] or 0) > 0
        )
        cancelled = await api.ok(
            "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }",
            {"id": import_id},
            token=owner["token"],
        )
        assert cancelled["cancelExecution"]["ok"] is True
        rest = await _collect_until(session, op, lambda s: s["status"] != "RUNNING")
    assert rest[-1]["status"] == "CANCELLED" and rest[-1]["error"]["code"] == "CANCELLED"
    data = await api.ok(DATASET, {"id": uploaded["dataset"]["id"]}, token=owner["token"])
    assert data["dataset"]["version"] == 0
    again = await api.ok(
        "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }",
        {"id": import_id},
        token=owner["token"],
    )
    assert again["cancelExecution"]["ok"] is False  # already finished


async def test_cancel_a_queued_import(
    stack: Stack, inprocess: InProcess, api: Api, users: Users
) -> None:
    env = _own_queue(stack)
    server = await inprocess.start_api(env)
    own = Api(server.url, server.ws_url)
    try:
        owner = await users.create("queued-cancel")
        uploaded = await upload(own, owner["token"], csv_bytes([["a"], [1]]))
        await own.ok(
            "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }",
            {"id": uploaded["import"]["id"]},
            token=owner["token"],
        )
        await inprocess.start_worker(env)
        events = await follow_import(own, owner["token"], uploaded["import"]["id"])
        assert [e["status"] for e in events] == ["CANCELLED"]
    finally:
        await own.close()


async def _s3_dataset(
    api: Api, token: str, s3: Any, bucket: str, rows: list[list[Any]]
) -> tuple[str, str, dict[str, Any]]:
    payload, final = await import_s3_and_wait(api, token, s3, bucket, csv_bytes(rows))
    assert final["status"] == "SUCCEEDED", final
    return payload["dataset"]["id"], payload["dataset"]["sourceConfig"]["key"], final


async def test_a_killed_worker_ends_worker_lost_and_the_old_version_still_serves(
    stack: Stack,
    inprocess: InProcess,
    api: Api,
    users: Users,
    worker: Any,
    s3: Any,
    source_bucket: str,
) -> None:
    owner = await users.create("killed")
    dataset_id, key, _ = await _s3_dataset(
        api,
        owner["token"],
        s3,
        source_bucket,
        [["id", "region", "amount", "day", "flag"], [1, "north", 1.5, "2024-01-01", "true"]],
    )
    s3.put_object(Bucket=source_bucket, Key=key, Body=big_csv(48))
    env = _own_queue(stack)
    server = await inprocess.start_api(env)
    own = Api(server.url, server.ws_url)
    try:
        doomed = stack.start_worker("worker-doomed", env)
        data = await own.ok(
            "mutation($id: ID!) { reimportDataset(input: {id: $id, force: true}) "
            "{ import { id } } }",
            {"id": dataset_id},
            token=owner["token"],
        )
        import_id = data["reimportDataset"]["import"]["id"]
        async with own.websocket({"authorization": f"Bearer {owner['token']}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(FOLLOW, {"id": import_id})
            await _collect_until(
                session, op, lambda s: s["status"] == "RUNNING" and (s["rowsProcessed"] or 0) > 0
            )
            kill_hard(doomed)
            # The session worker's sweeper notices the stopped heartbeat.
            rest = await _collect_until(session, op, lambda s: s["status"] != "RUNNING")
        assert rest[-1]["status"] == "FAILED"
        assert rest[-1]["error"]["code"] == "WORKER_LOST"
        preview = await own.ok(PREVIEW, {"id": dataset_id}, token=owner["token"])
        assert preview["dataset"]["version"] == 1
        assert preview["dataset"]["preview"]["rows"] == [[1, "north", 1.5, "2024-01-01", True]]
    finally:
        await own.close()


async def test_reimport_plan_force_and_the_last_three_versions(
    api: Api, users: Users, worker: Any, s3: Any, source_bucket: str, stack: Stack
) -> None:
    owner = await users.create("reimport")
    token = owner["token"]
    dataset_id, key, _ = await _s3_dataset(
        api, token, s3, source_bucket, [["id", "name"], [1, "a"], [2, "b"]]
    )
    plan_query = """mutation($id: ID!) { planDatasetReimport(input: {id: $id}) {
        hasSchemaChanges newRowCount newColumnCount
        changes { columnName changeType oldValue newValue } } }"""
    same = await api.ok(plan_query, {"id": dataset_id}, token=token)
    assert same["planDatasetReimport"]["hasSchemaChanges"] is False

    s3.put_object(
        Bucket=source_bucket,
        Key=key,
        Body=csv_bytes([["id", "name", "score"], ["x1", "a", 1.5], ["x2", "", 2], ["x3", "c", 3]]),
    )
    plan = (await api.ok(plan_query, {"id": dataset_id}, token=token))["planDatasetReimport"]
    assert plan["hasSchemaChanges"] is True
    assert plan["newRowCount"] == 3 and plan["newColumnCount"] == 3
    changes = {(c["columnName"], c["changeType"]): c for c in plan["changes"]}
    assert changes[("score", "ADDED")]["newValue"] == "FLOAT64"
    assert changes[("id", "TYPE_CHANGED")]["oldValue"] == "INT64"
    assert changes[("id", "TYPE_CHANGED")]["newValue"] == "STRING"
    assert ("name", "NULLABLE_CHANGED") in changes
    version = (await api.ok(DATASET, {"id": dataset_id}, token=token))["dataset"]["version"]
    assert version == 1  # the dry run wrote nothing

    reimport = "mutation($id: ID!, $f: Boolean!) { reimportDataset(input: {id: $id, force: $f}) { import { id } } }"
    refused = await api.fail(reimport, {"id": dataset_id, "f": False}, token=token)
    assert refused.code == "BAD_USER_INPUT"
    assert "score" in refused.error["message"] and refused.error["extensions"]["changes"]
    forced = await api.ok(reimport, {"id": dataset_id, "f": True}, token=token)
    final = (await follow_import(api, token, forced["reimportDataset"]["import"]["id"]))[-1]
    assert final["status"] == "SUCCEEDED" and final["dataset"]["version"] == 2
    columns = (await api.ok(DATASET, {"id": dataset_id}, token=token))["dataset"]["columns"]
    assert [c["name"] for c in columns] == ["id", "name", "score"]

    for _ in range(3):  # unchanged schema: no force needed
        again = await api.ok(reimport, {"id": dataset_id, "f": False}, token=token)
        last = (await follow_import(api, token, again["reimportDataset"]["import"]["id"]))[-1]
        assert last["status"] == "SUCCEEDED"
    assert last["dataset"]["version"] == 5
    listing = s3.list_objects_v2(
        Bucket=stack.env["TILEGRAPH_BUCKET"], Prefix=f"datasets/{dataset_id}/"
    )
    prefixes = {o["Key"].split("/")[2] for o in listing["Contents"]}
    assert prefixes == {"v3", "v4", "v5"}

    uploaded = await upload(api, token, csv_bytes([["a"], [1]]))
    not_s3 = await api.fail(plan_query, {"id": uploaded["dataset"]["id"]}, token=token)
    assert not_s3.code == "BAD_USER_INPUT"


async def test_subscriptions_and_queued_work_survive_a_redis_restart(
    stack: Stack, inprocess: InProcess, tmp_path: Any
) -> None:
    # A deployment of its own (tables, Redis, queue): sweepers of other deployments must not
    # pick up its work.
    redis = RedisServer(free_port(), tmp_path / "redis")
    redis.start()
    env = {
        **_own_queue(stack),
        "TILEGRAPH_REDIS_URL": redis.url,
        "TILEGRAPH_TABLE_PREFIX": f"r{secrets.token_hex(3)}_",
    }
    server = await inprocess.start_api(env)
    await server.services.users.ensure_admin(
        "restart@tests.example", "Administrator", "Restart-passw0rd!"
    )
    api = Api(server.url, server.ws_url)
    try:
        token = await api.login("restart@tests.example", "Restart-passw0rd!")
        uploaded = await upload(api, token, csv_bytes([["a", "b"], [1, 2], [3, 4]]))
        async with api.websocket({"authorization": f"Bearer {token}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            op = await session.subscribe(FOLLOW, {"id": uploaded["import"]["id"]})
            first = await _collect_until(session, op, lambda s: True)
            assert first[0]["status"] == "QUEUED"
            redis.restart()  # no persistence: the queued job is gone
            await inprocess.start_worker(env)  # re-enqueues it, then runs it
            rest = await _collect_until(
                session, op, lambda s: s["status"] not in ("QUEUED", "RUNNING")
            )
        assert rest[-1]["status"] == "SUCCEEDED" and rest[-1]["rowsProcessed"] == 2
    finally:
        await api.close()
        await inprocess.stop()  # while their Redis still runs
        redis.stop()


async def test_command_line_import_follows_the_import(
    api: Api, users: Users, worker: Any, tmp_path: Any, stack: Stack
) -> None:
    owner = await users.create("cli")
    path = tmp_path / "cli.csv"
    path.write_bytes(csv_bytes([["x", "y"], [1, 2], [3, 4], [5, 6]]))
    token = {"TILEGRAPH_TOKEN": owner["token"]}
    result = await asyncio.to_thread(
        stack.run_cli,
        *("import", str(path), "--name", "From CLI", "--server", api.base_url),
        env=token,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "SUCCEEDED" in result.stdout and "3 rows" in result.stdout
    listing = await api.ok(
        "{ datasets { edges { node { name rowCount } } } }", token=owner["token"]
    )
    assert listing["datasets"]["edges"][0]["node"] == {"name": "From CLI", "rowCount": 3}
    failed = await asyncio.to_thread(
        stack.run_cli,
        *("import", str(tmp_path / "missing.csv"), "--name", "x", "--server", api.base_url),
        env=token,
    )
    assert failed.returncode != 0 and "missing.csv" in failed.stderr


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (b"id,name\n1,a\n2,b,extra\n", "line 3"),
        (b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8, "not a text"),
    ],
    ids=["ragged", "binary"],
)
async def test_a_bad_file_fails_the_reimport_and_the_old_version_still_serves(
    api: Api, users: Users, worker: Any, s3: Any, source_bucket: str, bad: bytes, expected: str
) -> None:
    owner = await users.create("bad-reimport")
    dataset_id, key, _ = await _s3_dataset(
        api, owner["token"], s3, source_bucket, [["id", "name"], [1, "a"], [2, "b"]]
    )
    s3.put_object(Bucket=source_bucket, Key=key, Body=bad)
    data = await api.ok(
        "mutation($id: ID!) { reimportDataset(input: {id: $id, force: true}) { import { id } } }",
        {"id": dataset_id},
        token=owner["token"],
    )
    final = (await follow_import(api, owner["token"], data["reimportDataset"]["import"]["id"]))[-1]
    assert final["status"] == "FAILED" and expected in final["error"]["message"], final
    preview = await api.ok(PREVIEW, {"id": dataset_id}, token=owner["token"])
    assert preview["dataset"]["version"] == 1
    assert preview["dataset"]["preview"]["rows"] == [[1, "a"], [2, "b"]]
