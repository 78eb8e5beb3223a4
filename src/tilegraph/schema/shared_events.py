"""Executes a subscription event once for every subscriber that would get the same answer.

A thousand subscribers following one execution each receive the same state: running the
selection set once per subscriber cost ~1 ms apiece, so the last of them got the terminal
event a second late. Before it yields, a subscription resolver names the event and whom it
is for (user and role, already re-checked) with `share_next_event`; subscribers whose
document, operation and variables are the same then share one execution of that event.
The name travels in a context variable: an async generator's body runs in the context of
the task that iterates it, the same task that then executes the event."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson
from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

T = TypeVar("T")
_share_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tilegraph_shared_event", default=None
)
SHARED_RESULTS = 4096  # events remembered at once; each lives a few seconds
SHARED_SECONDS = 10.0


def share_next_event(key: str | None) -> None:
    """Every subscriber whose next event has the same key (for the same document and
    variables) receives the same result; None executes the next event on its own."""
    _share_key.set(key)


_values: OrderedDict[str, Any] = OrderedDict()


def shared_value(key: str, make: Callable[[], T]) -> T:
    """One value per key for every subscriber of this process (an event's record as read
    and converted is the same for all of them); the newest few thousand are kept."""
    if key in _values:
        return cast(T, _values[key])
    value = make()
    _values[key] = value
    while len(_values) > SHARED_RESULTS:
        _values.popitem(last=False)
    return value


class _SharedResults:
    """Single-flight results by key, kept briefly; results with errors are never shared."""

    def __init__(self) -> None:
        self._results: OrderedDict[Any, tuple[float, asyncio.Future[ExecutionResult]]] = (
            OrderedDict()
        )

    def get(self, key: Any) -> asyncio.Future[ExecutionResult] | None:
        entry = self._results.get(key)
        if entry is None or time.monotonic() - entry[0] > SHARED_SECONDS:
            return None
        return entry[1]

    def put(self, key: Any, future: asyncio.Future[ExecutionResult]) -> None:
        self._results[key] = (time.monotonic(), future)
        while len(self._results) > SHARED_RESULTS:
            self._results.popitem(last=False)

    def forget(self, key: Any) -> None:
        self._results.pop(key, None)


_shared = _SharedResults()


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    def execute_operation(self, serially: bool | None = None) -> Any:
        share = _share_key.get()
        if share is None:
            return super().execute_operation(serially)
        source = self.operation.loc.source.body if self.operation.loc else None
        name = self.operation.name.value if self.operation.name else None
        variables = orjson.dumps(
            self.variable_values.coerced, option=orjson.OPT_SORT_KEYS, default=str
        )
        key = (source, name, variables, share)
        running = _shared.get(key)
        if running is not None:
            return self._reuse(running, serially)
        future: asyncio.Future[ExecutionResult] = asyncio.get_running_loop().create_future()
        _shared.put(key, future)
        return self._first(key, future, super().execute_operation(serially))

    async def _first(
        self, key: Any, future: asyncio.Future[ExecutionResult], result: Any
    ) -> ExecutionResult:
        try:
            done = cast(ExecutionResult, await result if self.is_awaitable(result) else result)
        except asyncio.CancelledError:
            _shared.forget(key)
            future.cancel()
            raise
        except Exception as exc:
            _shared.forget(key)
            future.set_exception(exc)
            future.exception()  # marked as retrieved: the waiters execute for themselves
            raise
        if done.errors:
            _shared.forget(key)
        future.set_result(done)
        return done

    async def _reuse(
        self, running: asyncio.Future[ExecutionResult], serially: bool | None
    ) -> ExecutionResult:
        done: ExecutionResult | None
        try:
            done = await asyncio.shield(running)
        except asyncio.CancelledError:
            if not running.cancelled():
                raise  # this subscriber itself is being cancelled
            done = None
        except Exception:
            done = None
        if done is None or done.errors:
            result = super().execute_operation(serially)
            return cast(ExecutionResult, await result if self.is_awaitable(result) else result)
        return done
