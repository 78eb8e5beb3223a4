"""A per-user cap on entries in a sliding window: a user's unfinished runs (card runs, from
executeCard, executeDashboard or a preview, and manual transform runs: so one user cannot
queue without bound), chat questions a minute.

A sorted set per user of entry ids scored by time; entries older than the window are
forgotten, so a crash that never releases an entry cannot block a user for long."""

from __future__ import annotations

import time

from redis.asyncio import Redis

STALE_AFTER_SECONDS = 600


_TAKE = """
-- KEYS: the user's set; ARGV: now, window seconds, limit, ids...
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, 0, now - window)
local free = limit - redis.call('ZCARD', key)
local taken = 0
for i = 4, #ARGV do
  if taken >= free then break end
  redis.call('ZADD', key, now, ARGV[i])
  taken = taken + 1
end
if taken > 0 then redis.call('EXPIRE', key, math.ceil(window)) end
return taken
"""


class QueueLimit:
    def __init__(
        self, redis: Redis, *, prefix: str, limit: int, window_seconds: float = STALE_AFTER_SECONDS
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window = window_seconds
        self._take = redis.register_script(_TAKE)

    async def take(self, user_id: str, entry_ids: list[str]) -> int:
        """Admits the first of `entry_ids` that fit under the limit, in one atomic step (so
        requests racing each other never pass it together); returns how many."""
        if not entry_ids:
            return 0
        taken = await self._take(
            keys=[f"{self.prefix}:{user_id}"],
            args=[time.time(), self.window, self.limit, *entry_ids],
        )
        return int(taken)

    async def admit(self, user_id: str, entry_id: str) -> bool:
        return await self.take(user_id, [entry_id]) == 1

    async def release(self, user_id: str, *entry_ids: str) -> None:
        if entry_ids:
            await self.redis.zrem(f"{self.prefix}:{user_id}", *entry_ids)
