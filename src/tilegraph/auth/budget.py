"""A per-client request budget in this process's memory: a token bucket per key.

It bounds what callers without a valid token can make one API process do, before their
request is read: refusing is a dictionary lookup. Each process keeps its own buckets (a
client spread over N replicas gets N budgets); the limit is about CPU, which is also per
process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RequestBudget:
    def __init__(
        self,
        per_minute: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def take(self, key: str) -> float | None:
        """Spends one request of `key`'s budget: None when allowed, else the seconds until
        one is available again."""
        if not self.enabled:
            return None
        now = self.clock()
        tokens, then = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)  # the least recently seen client
        return None
