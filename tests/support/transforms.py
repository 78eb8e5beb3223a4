"""Transforms through the API: create, run, and follow runs over WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.client import Api
from tests.support.stack import Stack

CREATE = """mutation($i: CreateTransformInput!) { createTransform(input: $i) { transform {
  id nextRunAt scheduleEnabled scheduleCron params } } }"""
EXECUTE = """mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id status triggeredBy } } }"""
FOLLOW = """subscription($id: ID!) { transformExecution(id: $id) { id status triggeredBy progress
  durationMs outputRowCount outputDataset { id version rowCount } error { code message line } } }"""
RUNS = """subscription($id: ID!) { transformExecutions(transformId: $id) { id status triggeredBy
  error { code message } } }"""


async def create_transform(
    api: Api,
    token: str,
    code: str,
    inputs: list[str],
    *,
    name: str = "transform",
    cron: str | None = None,
    enabled: bool = False,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data = await api.ok(
        CREATE,
        {
            "i": {
                "name": name,
                "inputDatasetIds": inputs,
                "code": code,
                "scheduleCron": cron,
                "scheduleEnabled": enabled,
                "params": params,
            }
        },
        token=token,
    )
    return data["createTransform"]["transform"]  # type: ignore[no-any-return]


async def follow_run(api: Api, token: str, run_id: str) -> list[dict[str, Any]]:
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW, {"id": run_id})
        return [
            p["data"]["transformExecution"] if p.get("data") else p
            async for p in session.messages(op)
        ]


async def run_transform(api: Api, token: str, transform_id: str) -> dict[str, Any]:
    data = await api.ok(EXECUTE, {"id": transform_id}, token=token)
    final = (await follow_run(api, token, data["executeTransform"]["execution"]["id"]))[-1]
    assert "errors" not in final, final
    return final


async def tick(stack: Stack, at: datetime, env: dict[str, str] | None = None) -> int:
    """One scheduler tick as of `at`, in its own process like a worker's."""
    result = await asyncio.to_thread(
        stack.run_cli, "schedule-tick", "--at", at.isoformat(), env=env
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1])


async def tick_here(stack: Stack, at: datetime, env: dict[str, str] | None = None) -> list[str]:
    """One scheduler tick as of `at`, in this process (no process start-up in the way): the
    transforms it queued a run of, other tests' included."""
    from tilegraph.jobs.schedules import schedule_tick
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    services = await Services.open(Settings.from_env({**stack.env, **(env or {})}))
    try:
        return await schedule_tick(services, at)
    finally:
        await services.close()


@contextlib.asynccontextmanager
async def schedulers(
    stack: Stack, env: dict[str, str] | None = None, count: int = 2
) -> AsyncIterator[list[Any]]:
    """`count` schedulers, each with services of its own, open before the test makes what
    they tick: a tick right after a create then comes before any worker's tick on the real
    clock could. Tick with `tilegraph.jobs.schedules.schedule_tick(services, at)`."""
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    settings = Settings.from_env({**stack.env, **(env or {})})
    opened = list(await asyncio.gather(*(Services.open(settings) for _ in range(count))))
    try:
        yield opened
    finally:
        await asyncio.gather(*(services.close() for services in opened))


def later(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)
