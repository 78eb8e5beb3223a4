"""Revoked token ids in Redis, each kept until its token would have expired anyway."""

from __future__ import annotations

import time

from redis.asyncio import Redis


class TokenDenylist:
    def __init__(self, redis: Redis, prefix: str = "tg:revoked:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def revoke(self, jti: str, expires_at: int) -> None:
        ttl = max(1, expires_at - int(time.time()))
        await self.redis.set(self.prefix + jti, b"1", ex=ttl)

    async def is_revoked(self, jti: str) -> bool:
        return bool(await self.redis.exists(self.prefix + jti))
