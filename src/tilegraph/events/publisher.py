"""Stores the latest state of an execution in Redis and publishes it on its channels.

A state is the execution's whole record (a snapshot), stamped with `seq`, so a subscriber
that misses an event loses nothing: the next one, or a re-read, carries everything."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson
from redis.asyncio import Redis

from tilegraph.events.channels import execution_channel, execution_state_key

STATE_TTL_SECONDS = 24 * 3600
# What subscribers never need: a card run's plan (its code included) is the worker's.
UNPUBLISHED = frozenset({"plan"})


class ExecutionEvents:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, item: dict[str, Any], extra_channels: Iterable[str] = ()) -> None:
        await self.publish_many([(item, extra_channels)])

    async def publish_many(self, states: Iterable[tuple[dict[str, Any], Iterable[str]]]) -> None:
        """Store and publish many executions' states in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for item, extra_channels in states:
                state = {k: v for k, v in item.items() if k not in UNPUBLISHED}
                payload = orjson.dumps({**state, "seq": time.time_ns()})
                execution_id = str(item["id"])
                pipe.set(execution_state_key(execution_id), payload, ex=STATE_TTL_SECONDS)
                pipe.publish(execution_channel(execution_id), payload)
                for channel in extra_channels:
                    pipe.publish(channel, payload)
            await pipe.execute()

    async def latest(self, execution_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(execution_state_key(execution_id))
        return orjson.loads(raw) if raw else None
