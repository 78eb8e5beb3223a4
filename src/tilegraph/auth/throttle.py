"""Login failure limits per email and per client address (successes never count)."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis


class LoginThrottle:
    def __init__(self, redis: Redis, *, per_email: int, per_ip: int, window_seconds: int) -> None:
        self.redis = redis
        self.per_email = per_email
        self.per_ip = per_ip
        self.window = window_seconds

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str]:
        digest = hashlib.sha256(email.encode()).hexdigest()[:32]
        return f"tg:loginfail:email:{digest}", f"tg:loginfail:ip:{ip}"

    async def is_blocked(self, email: str, ip: str) -> bool:
        email_key, ip_key = self._keys(email, ip)
        email_count, ip_count = await self.redis.mget(email_key, ip_key)
        return int(email_count or 0) >= self.per_email or int(ip_count or 0) >= self.per_ip

    async def record_failure(self, email: str, ip: str) -> None:
        email_key, ip_key = self._keys(email, ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(email_key)
            pipe.expire(email_key, self.window, nx=True)
            pipe.incr(ip_key)
            pipe.expire(ip_key, self.window, nx=True)
            await pipe.execute()
