"""Identity and access re-checks shared by every subscriber of one API process.

A subscription checks again, before each event, that its token is still valid and that the
caller may still see the object. A thousand subscribers of one execution would each read
Redis (and the store) for the same answer at the same moment; here one check per token, and
one per user and object, answers them all for `ttl` seconds, and callers that arrive while
it runs wait for it instead of starting their own. A revoked token or lost access therefore
ends a stream within `ttl` (at once for a logout in this process)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from tilegraph.domain.users import Principal, Role
from tilegraph.services.auth import AuthService

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_ENTRIES = 10_000


class SharedResults(Generic[K, V]):
    """Results computed at most once per key per `ttl` seconds (single flight: concurrent
    callers share the computation in progress). Failures are passed on, never kept."""

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._fresh: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._running: dict[K, asyncio.Task[V]] = {}
        self._generation = 0  # bumped by forget(): results begun before it are not kept

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        if self.ttl <= 0:
            return await compute()
        kept = self._fresh.get(key)
        if kept is not None and kept[0] > self.clock():
            return kept[1]
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._compute(key, compute))
            # Retrieved here too, so a failure that every waiter left before is not logged.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._running[key] = task
        # A waiter that goes away (its subscriber disconnected) leaves the check running.
        return await asyncio.shield(task)

    async def _compute(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        generation = self._generation
        try:
            value = await compute()
        finally:
            del self._running[key]
        if generation == self._generation:
            self._keep(key, value)
        return value

    def _keep(self, key: K, value: V) -> None:
        now = self.clock()
        self._fresh[key] = (now + self.ttl, value)
        self._fresh.move_to_end(key)
        # One ttl for all: the oldest entry expires first.
        while self._fresh and (
            len(self._fresh) > self.max_entries or next(iter(self._fresh.values()))[0] <= now
        ):
            self._fresh.popitem(last=False)

    def forget(self, matches: Callable[[K, V], bool]) -> None:
        """Drop the results `matches` selects, and keep none of the checks now running."""
        self._generation += 1
        for key in [k for k, (_, value) in self._fresh.items() if matches(k, value)]:
            del self._fresh[key]


class SharedChecks:
    """The subscribers' re-checks: the token (by its text) and access (by user and object)."""

    def __init__(self, auth: AuthService, ttl: float) -> None:
        self.auth = auth
        self._identities: SharedResults[str, Principal | None] = SharedResults(ttl)
        self._access: SharedResults[tuple[str, Role, str], bool] = SharedResults(ttl)

    async def principal(self, authorization: str | None) -> Principal | None:
        """`AuthService.authenticate`, shared: UNAUTHENTICATED once the token is revoked."""
        if not authorization:
            return None
        return await self._identities.get(
            authorization, lambda: self.auth.authenticate(authorization)
        )

    async def may_see(
        self, principal: Principal, object_id: str, check: Callable[[], Awaitable[bool]]
    ) -> bool:
        """`check` (the caller's access to the object), shared by whoever else asks the same
        for the same user."""
        return await self._access.get((principal.user_id, principal.role, object_id), check)

    def forget_user(self, user_id: str) -> None:
        """After a change to the user here (role, disabled, sessions ended): at once."""
        self._identities.forget(lambda _, known: known is not None and known.user_id == user_id)
        self._access.forget(lambda key, _: key[0] == user_id)

    def forget_token(self, principal: Principal) -> None:
        """After a logout here: that token's next check reads the denylist again."""
        self._identities.forget(lambda _, known: known is not None and known.jti == principal.jti)
