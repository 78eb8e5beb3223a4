"""A per-user cap on entries in a sliding window: unfinished card executions (so one user
cannot starve the others), chat questions a minute.

A sorted set per user of entry ids scored by time; entries older than the window are
forgotten, so a crash that never releases an entry cannot block a user for long."""

from __future__ import annotations

import time

from redis.asyncio import Redis

STALE_AFTER_SECONDS = 600


class QueueLimit:
    def __init__(
        self, redis: Redis, *, prefix: str, limit: int, window_seconds: float = STALE_AFTER_SECONDS
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window = window_seconds

    async def admit(self, user_id: str, execution_id: str) -> bool:
        key = f"{self.prefix}:{user_id}"
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, 0, now - self.window)
            pipe.zcard(key)
            _, count = await pipe.execute()
        if int(count) >= self.limit:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {execution_id: now})
            pipe.expire(key, int(self.window))
            await pipe.execute()
        return True

    async def add_many(self, user_id: str, execution_ids: list[str]) -> None:
        """Count runs that were admitted together as one batch."""
        key = f"{self.prefix}:{user_id}"
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, dict.fromkeys(execution_ids, now))
            pipe.expire(key, int(self.window))
            await pipe.execute()

    async def release(self, user_id: str, execution_id: str) -> None:
        await self.redis.zrem(f"{self.prefix}:{user_id}", execution_id)
