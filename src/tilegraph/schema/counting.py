"""Reports how many DynamoDB and Redis requests an operation made
(`extensions.dynamodbRequests`, `extensions.redisRequests`),
when TILEGRAPH_REPORT_DB_REQUESTS is on: round trips are measured, not guessed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from tilegraph.store.counting import RequestCounter


class RequestCounting(SchemaExtension):
    def __init__(self) -> None:
        self.counter = RequestCounter()

    def on_operation(self) -> Iterator[None]:
        token = self.counter.bind()
        try:
            yield
        finally:
            RequestCounter.unbind(token)

    def get_results(self) -> dict[str, Any]:
        return {
            "dynamodbRequests": self.counter.dynamodb,
            "dynamodbRoundTrips": self.counter.dynamodb_round_trips,
            "redisRequests": self.counter.redis,
        }
