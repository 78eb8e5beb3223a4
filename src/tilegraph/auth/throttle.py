"""Login failure limits with backoff, per scope: an email and a client address for clients we
do not know, the (email, device) pair for a device that signed in to that email before.

A scope may fail `limit` times; the failure that reaches the limit, and every later one,
refuses the scope for a while that doubles with each failure (`backoff`, 2×, 4× … up to
`backoff_max`). Refused attempts do not count, so a patient client gets one try per window;
the count is forgotten `window` seconds after the last window ends. Successes never count,
so many people behind one address still sign in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True)
class Scope:
    key: str
    limit: int


def _digest(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class LoginThrottle:
    def __init__(
        self,
        redis: Redis,
        *,
        per_email: int,
        per_ip: int,
        window_seconds: int,
        backoff_seconds: float,
        backoff_max_seconds: float,
    ) -> None:
        self.redis = redis
        self.per_email = per_email
        self.per_ip = per_ip
        self.window_ms = int(window_seconds * 1000)
        self.backoff_ms = max(int(backoff_seconds * 1000), 1)
        self.backoff_max_ms = max(int(backoff_max_seconds * 1000), self.backoff_ms)

    def scopes(self, email: str, ip: str, known_device: str | None) -> list[Scope]:
        """A known device answers only for its own failures, so others' failures on the same
        email or address never lock it out; anyone else counts against both."""
        if known_device is not None:
            return [Scope(f"tg:login:device:{_digest(email)}:{known_device}", self.per_email)]
        return [
            Scope(f"tg:login:email:{_digest(email)}", self.per_email),
            Scope(f"tg:login:ip:{ip}", self.per_ip),
        ]

    async def retry_after(self, scopes: list[Scope]) -> float:
        """Seconds until every scope accepts an attempt again; 0 when they all do now."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.pttl(f"{scope.key}:lock")
            remaining = await pipe.execute()
        return max([int(ms) for ms in remaining if int(ms) > 0] or [0]) / 1000

    async def record_failure(self, scopes: list[Scope]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.incr(f"{scope.key}:n")
            counts = await pipe.execute()
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope, count in zip(scopes, counts, strict=True):
                lock_ms = self._lock_ms(int(count), scope.limit)
                if lock_ms:
                    pipe.set(f"{scope.key}:lock", int(count), px=lock_ms)
                pipe.pexpire(f"{scope.key}:n", lock_ms + self.window_ms)
            await pipe.execute()

    async def forget(self, scopes: list[Scope]) -> None:
        """The client proved who it is: its own earlier mistakes no longer count."""
        await self.redis.delete(*(f"{s.key}:{part}" for s in scopes for part in ("n", "lock")))

    def _lock_ms(self, failures: int, limit: int) -> int:
        if failures < limit:
            return 0
        doublings = min(failures - limit, 40)
        return min(self.backoff_ms << doublings, self.backoff_max_ms)
