"""Revoked token ids: kept in DynamoDB until the token would have expired anyway (the
source of truth, so a Redis restarted empty never revives a signed-out token), and cached in
Redis, both ways ("revoked" until expiry, "not revoked" briefly) so a request seldom reads
DynamoDB for it. A Redis error is a cache miss; a logout in this process is also remembered
here, so a stale "not revoked" in the cache never outlives it in this process."""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("tilegraph.auth")

# How long another process may keep answering "not revoked" from the cache after a logout
# made while the cache could not be told (Redis unreachable at that moment).
NOT_REVOKED_TTL_SECONDS = 60
_REVOKED, _NOT_REVOKED = b"1", b"0"
MAX_LOCAL = 100_000


class RevocationStore(Protocol):
    """The durable record of revoked token ids (store/revocations.py)."""

    async def revoke(self, jti: str, expires_at: int) -> None: ...

    async def is_revoked(self, jti: str) -> bool: ...


class TokenDenylist:
    def __init__(self, durable: RevocationStore, redis: Redis, prefix: str = "tg:revoked:") -> None:
        self.durable = durable
        self.redis = redis
        self.prefix = prefix
        # jti -> expiry (epoch seconds) of the tokens revoked by this process.
        self._local: OrderedDict[str, int] = OrderedDict()

    async def revoke(self, jti: str, expires_at: int) -> None:
        """Durable first: once this returns, no process accepts the token again."""
        self._remember(jti, expires_at)
        await self.durable.revoke(jti, expires_at)
        ttl = max(1, expires_at - int(time.time()))
        try:
            await self.redis.set(self.prefix + jti, _REVOKED, ex=ttl)
        except RedisError as exc:
            log.warning("revocation_cache_unavailable", error=type(exc).__name__)

    async def issued(self, jti: str) -> None:
        """A token just made is not revoked: its first requests need no DynamoDB read."""
        with contextlib.suppress(RedisError):
            await self.redis.set(
                self.prefix + jti, _NOT_REVOKED, ex=NOT_REVOKED_TTL_SECONDS, nx=True
            )

    async def is_revoked(self, jti: str) -> bool:
        expiry = self._local.get(jti)
        if expiry is not None:
            if expiry > time.time():
                return True
            del self._local[jti]
        key = self.prefix + jti
        try:
            cached = await self.redis.get(key)
        except RedisError:
            return await self.durable.is_revoked(jti)
        if cached is not None:
            return bytes(cached) == _REVOKED
        revoked = await self.durable.is_revoked(jti)
        # NX: a logout racing this read wins over the "not revoked" it would overwrite.
        with contextlib.suppress(RedisError):
            await self.redis.set(
                key, _REVOKED if revoked else _NOT_REVOKED, ex=NOT_REVOKED_TTL_SECONDS, nx=True
            )
        return revoked

    def _remember(self, jti: str, expires_at: int) -> None:
        self._local[jti] = expires_at
        self._local.move_to_end(jti)
        while len(self._local) > MAX_LOCAL:
            self._local.popitem(last=False)
