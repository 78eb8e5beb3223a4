"""Login failure limits with backoff, per scope: an email and a client address for clients we
do not know, the (email, device) pair for a device that signed in to that email before.

A scope may fail `limit` times; the failure that reaches the limit, and every later one,
refuses the scope for a while that doubles with each failure (`backoff`, 2×, 4× … up to
`backoff_max`). Refused attempts do not count, so a patient client gets one try per window;
the count is forgotten `window` seconds after the last window ends. Successes never count,
so many people behind one address still sign in.

While Redis is unreachable the same limits hold in this process's memory (`LocalCounters`):
logins keep working, throttled per API process until Redis is back."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError


@dataclass(frozen=True)
class Scope:
    key: str
    limit: int


def _digest(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class LocalCounters:
    """The few Redis operations the throttle uses, on expiring keys in memory (bounded:
    the least recently touched keys go first)."""

    def __init__(
        self, *, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._items: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def _now_ms(self) -> float:
        return self.clock() * 1000

    def _live(self, key: str) -> tuple[int, float] | None:
        item = self._items.get(key)
        if item is not None and item[1] <= self._now_ms():
            del self._items[key]
            return None
        return item

    def _put(self, key: str, value: int, expires_ms: float) -> None:
        self._items[key] = (value, expires_ms)
        self._items.move_to_end(key)
        while len(self._items) > self.max_keys:
            self._items.popitem(last=False)

    def pttl(self, key: str) -> int:
        item = self._live(key)
        return -2 if item is None else max(0, int(item[1] - self._now_ms()))

    def incr(self, key: str, ttl_ms: int) -> int:
        item = self._live(key)
        count = (item[0] if item else 0) + 1
        self._put(key, count, self._now_ms() + ttl_ms)
        return count

    def set(self, key: str, value: int, ttl_ms: int) -> None:
        self._put(key, value, self._now_ms() + ttl_ms)

    def delete(self, *keys: str) -> None:
        for key in keys:
            self._items.pop(key, None)


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
        self.local = LocalCounters()

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
        local = [self.local.pttl(f"{scope.key}:lock") for scope in scopes]
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for scope in scopes:
                    pipe.pttl(f"{scope.key}:lock")
                remaining = [*await pipe.execute(), *local]
        except RedisError:
            remaining = local
        return max([int(ms) for ms in remaining if int(ms) > 0] or [0]) / 1000

    async def record_failure(self, scopes: list[Scope]) -> None:
        try:
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
        except RedisError:
            self._record_locally(scopes)

    def _record_locally(self, scopes: list[Scope]) -> None:
        for scope in scopes:
            count = self.local.incr(f"{scope.key}:n", self.window_ms)
            lock_ms = self._lock_ms(count, scope.limit)
            if lock_ms:
                self.local.set(f"{scope.key}:lock", count, lock_ms)
                self.local.set(f"{scope.key}:n", count, lock_ms + self.window_ms)

    async def forget(self, scopes: list[Scope]) -> None:
        """The client proved who it is: its own earlier mistakes no longer count."""
        keys = [f"{s.key}:{part}" for s in scopes for part in ("n", "lock")]
        self.local.delete(*keys)
        with contextlib.suppress(RedisError):  # what Redis holds expires by itself
            await self.redis.delete(*keys)

    def _lock_ms(self, failures: int, limit: int) -> int:
        if failures < limit:
            return 0
        doublings = min(failures - limit, 40)
        return min(self.backoff_ms << doublings, self.backoff_max_ms)
