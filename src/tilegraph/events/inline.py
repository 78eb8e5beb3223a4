"""A per-user budget of card HTML carried inline by stored execution states.

A run's final state carries its HTML, so a subscriber needs no cache read, and that state
stays in the main Redis (beside the queue and the token denylist) for its whole TTL. Without
a bound, re-running a dashboard of cached cards would copy its HTML into that Redis again on
every call. Each user may have `budget` bytes of inline HTML in states at once; past it a
state carries only the result's key, and `html` is read from the cache (or S3) instead.

Per user: a sorted set of execution ids by expiry, a hash of their sizes and a running
total, kept in one Lua script so concurrent publishers never overshoot the budget."""

from __future__ import annotations

import time

from redis.asyncio import Redis

_ALLOW = """
-- KEYS: expiries, sizes, total; ARGV: now, ttl, budget, then id, bytes pairs
local expiries, sizes, total_key = KEYS[1], KEYS[2], KEYS[3]
local now, ttl, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local total = tonumber(redis.call('GET', total_key) or '0')
for _, id in ipairs(redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, 1000)) do
  total = total - tonumber(redis.call('HGET', sizes, id) or '0')
  redis.call('HDEL', sizes, id)
  redis.call('ZREM', expiries, id)
end
if total < 0 then total = 0 end
local allowed = {}
for i = 4, #ARGV, 2 do
  local id, bytes = ARGV[i], tonumber(ARGV[i + 1])
  if total + bytes <= budget then
    total = total + bytes
    redis.call('ZADD', expiries, now + ttl, id)
    redis.call('HSET', sizes, id, bytes)
    table.insert(allowed, id)
  end
end
redis.call('SET', total_key, total, 'EX', ttl)
redis.call('EXPIRE', expiries, ttl)
redis.call('EXPIRE', sizes, ttl)
return allowed
"""


class InlineBudget:
    def __init__(self, redis: Redis, *, budget_bytes: int, ttl_seconds: int) -> None:
        self.redis = redis
        self.budget = budget_bytes
        self.ttl = ttl_seconds
        self._allow = redis.register_script(_ALLOW)

    async def allow(self, user_id: str, sizes: dict[str, int]) -> set[str]:
        """The executions (of `sizes`: id → HTML bytes) whose states may carry their HTML;
        one round trip for any number."""
        if not sizes:
            return set()
        if self.budget <= 0:
            return set(sizes)
        prefix = f"events:inline:{user_id}"
        pairs = [str(part) for item in sizes.items() for part in item]
        allowed = await self._allow(
            keys=[f"{prefix}:expiries", f"{prefix}:sizes", f"{prefix}:total"],
            args=[int(time.time()), self.ttl, self.budget, *pairs],
        )
        return {a.decode() if isinstance(a, bytes) else str(a) for a in allowed}
