"""Counts the DynamoDB and Redis round trips made on behalf of one request, so tests and
benchmarks measure round trips instead of guessing them."""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Iterable
from typing import Any

from redis.asyncio.connection import Connection

_request_counter: contextvars.ContextVar[RequestCounter | None] = contextvars.ContextVar(
    "tilegraph_request_counter", default=None
)


class RequestCounter:
    """A mutable tally shared by every task spawned while handling one request."""

    def __init__(self) -> None:
        self.dynamodb = 0
        self.redis = 0
        self.dynamodb_operations: Counter[str] = Counter()  # GetItem, UpdateItem, …
        # Requests sent while none of this tally's was in flight: the DynamoDB round trips
        # a caller waits for one after another (parallel requests share one).
        self.dynamodb_round_trips = 0
        self._in_flight = 0

    def bind(self) -> contextvars.Token[RequestCounter | None]:
        return _request_counter.set(self)

    @staticmethod
    def unbind(token: contextvars.Token[RequestCounter | None]) -> None:
        _request_counter.reset(token)


def count_dynamodb_request(event_name: str = "", **_: Any) -> None:
    """A botocore `before-send.dynamodb.<Operation>` hook: one call per HTTP request,
    retries included."""
    counter = _request_counter.get()
    if counter is not None:
        counter.dynamodb += 1
        counter.dynamodb_operations[event_name.rsplit(".", 1)[-1]] += 1
        if counter._in_flight == 0:
            counter.dynamodb_round_trips += 1
        counter._in_flight += 1


def count_dynamodb_response(**_: Any) -> None:
    """The `response-received` hook (each attempt, answered or failed): no longer in
    flight."""
    counter = _request_counter.get()
    if counter is not None:
        counter._in_flight = max(0, counter._in_flight - 1)


class CountedConnection(Connection):
    """A Redis connection that counts what it sends: one command, or one whole pipeline."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        counter = _request_counter.get()
        if counter is not None:
            counter.redis += 1
        await super().send_packed_command(command, check_health)
