"""One Redis pub/sub connection per API process, fanned out to every local subscriber.

Each subscriber gets a bounded queue. Messages are state snapshots, so when a queue is
full the oldest message is dropped: the newer one supersedes it. When the connection is
lost the bus reconnects with backoff, subscribes again to every channel, and tells each
subscriber to re-read the current state (RESYNC), because messages may have been missed.

A new subscription while Redis is unreachable fails at once with SERVICE_UNAVAILABLE (the
client subscribes again later); an open one waits for the reconnect until the outage has
lasted `outage_grace` seconds (`unavailable` says when), then ends with the same error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tilegraph.domain.errors import ServiceUnavailable

log = structlog.get_logger("tilegraph.events")

RESYNC: dict[str, Any] = {"__resync__": True}
_KEEPALIVE_CHANNEL = "tg:bus:keepalive"
# How long a new subscription waits for a connection being made before it is refused.
CONNECT_WAIT_SECONDS = 3.0
UNAVAILABLE = "Live updates are unavailable for now (Redis is unreachable); subscribe again"


class Subscription:
    def __init__(self, channel: str, size: int) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)

    def deliver(self, message: dict[str, Any]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(message)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    async def newest(self) -> dict[str, Any]:
        """The latest state once one is there: snapshots supersede each other, so a
        subscriber that fell behind skips straight to the newest (a RESYNC wins, since the
        current state must then be read again)."""
        message = await self.queue.get()
        while not self.queue.empty():
            following = self.queue.get_nowait()
            message = RESYNC if message is RESYNC or following is RESYNC else following
        return message


class EventBus:
    def __init__(self, redis_url: str, *, queue_size: int = 64, outage_grace: float = 30.0) -> None:
        self.redis_url = redis_url
        self.queue_size = queue_size
        self.outage_grace = outage_grace
        # When the connection was lost (monotonic), or None while connected.
        self._down_since: float | None = time.monotonic()
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._confirmations: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._pubsub: Any = None
        self._client: Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-bus")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """Yields once Redis has confirmed the subscription, so a state read afterwards
        cannot miss an event published in between."""
        if not self._connected.is_set():
            await self._wait_connected()  # no events can reach a new subscriber
        subscription = Subscription(channel, self.queue_size)
        first = not self._subscribers[channel]
        self._subscribers[channel].add(subscription)
        try:
            if first:
                await self._subscribe_remote(channel)
            yield subscription
        finally:
            self._subscribers[channel].discard(subscription)
            if not self._subscribers[channel]:
                del self._subscribers[channel]
                await self._unsubscribe_remote(channel)

    def unavailable(self) -> ServiceUnavailable | None:
        """The error that ends an open subscription: once Redis has been unreachable for
        longer than `outage_grace`; None while it is up or may be back soon."""
        down = self._down_since
        if down is None or time.monotonic() - down < self.outage_grace:
            return None
        return ServiceUnavailable(UNAVAILABLE)

    async def _wait_connected(self) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout=CONNECT_WAIT_SECONDS)
        except TimeoutError as exc:
            raise ServiceUnavailable(UNAVAILABLE) from exc

    async def _subscribe_remote(self, channel: str) -> None:
        while True:
            await self._wait_connected()
            confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._confirmations[channel].append(confirmed)
            try:
                async with self._lock:
                    await self._pubsub.subscribe(channel)
                await asyncio.wait_for(asyncio.shield(confirmed), timeout=10)
                return
            except (RedisError, OSError, AttributeError, TimeoutError):
                # The connection dropped meanwhile; the reconnect re-subscribes everything.
                if channel in self._subscribers and self._connected.is_set():
                    await asyncio.sleep(0.1)
                    continue
                await self._wait_connected()
                return
            finally:
                # One channel per execution: drop emptied lists, or they pile up for good.
                waiting = self._confirmations.get(channel)
                if waiting is not None:
                    with contextlib.suppress(ValueError):
                        waiting.remove(confirmed)
                    if not waiting:
                        del self._confirmations[channel]

    async def _unsubscribe_remote(self, channel: str) -> None:
        if not self._connected.is_set():
            return
        with contextlib.suppress(RedisError, OSError, AttributeError):
            async with self._lock:
                await self._pubsub.unsubscribe(channel)

    async def _connect(self) -> None:
        self._client = Redis.from_url(
            self.redis_url, socket_connect_timeout=3, health_check_interval=15
        )
        self._pubsub = self._client.pubsub()
        channels = [_KEEPALIVE_CHANNEL, *self._subscribers]
        await self._pubsub.subscribe(*channels)

    async def _disconnect(self) -> None:
        self._connected.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self._pubsub = None
        self._client = None

    async def _run(self) -> None:
        backoff = 0.1
        reconnecting = False
        while True:
            try:
                await self._connect()
                self._connected.set()
                self._down_since = None
                if reconnecting:
                    log.info("event_bus_reconnected", channels=len(self._subscribers))
                    for subscribers in self._subscribers.values():
                        for subscriber in subscribers:
                            subscriber.deliver(RESYNC)
                backoff = 0.1
                await self._read_forever()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("event_bus_disconnected", error=type(exc).__name__)
            await self._disconnect()
            if self._down_since is None:
                self._down_since = time.monotonic()
            reconnecting = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _read_forever(self) -> None:
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
            if message is None:
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if message["type"] == "subscribe":
                for future in self._confirmations.get(channel, []):
                    if not future.done():
                        future.set_result(None)
                continue
            if message["type"] != "message":
                continue
            try:
                payload = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                continue
            for subscriber in list(self._subscribers.get(channel, ())):
                subscriber.deliver(payload)
