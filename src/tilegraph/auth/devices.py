"""Known devices: a client that signed in to an account is given a random device id (the
`tg_device` cookie), and Redis remembers which accounts each id signed in to. A login from a
known device for that account is throttled only by its own failures (auth/throttle.py), so
an attacker's failures elsewhere never lock the owner out of the browsers they use.

The id is 128 random bits, so it cannot be guessed, and it is worth nothing without the
server's record for the account; it is only ever sent in an HttpOnly cookie.

While Redis is unreachable no device is known (its logins are throttled like anyone's,
in memory) and a new one is not remembered; signing in still works."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

DEVICE_COOKIE = "tg_device"
_VALID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


def _key(email: str, device: str) -> str:
    return f"tg:login:known:{hashlib.sha256(email.encode()).hexdigest()[:32]}:{device}"


def well_formed(device: str | None) -> str | None:
    """The device id from a cookie when it could be one of ours; None otherwise."""
    return device if device and _VALID.match(device) else None


class KnownDevices:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds

    async def is_known(self, email: str, device: str | None) -> bool:
        if device is None:
            return False
        try:
            return bool(await self.redis.exists(_key(email, device)))
        except RedisError:
            return False

    async def remember(self, email: str, device: str | None) -> str:
        """The device id to give back after a successful login (the caller's, or a new one),
        known for this account for the next `ttl` seconds."""
        device = device or secrets.token_urlsafe(16)
        with contextlib.suppress(RedisError):  # else known from its next login with Redis
            await self.redis.set(_key(email, device), 1, ex=self.ttl)
        return device
