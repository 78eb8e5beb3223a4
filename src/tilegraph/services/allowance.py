"""The per-user run allowance as the services use it: card runs (executeCard,
executeDashboard, previews), manual transform runs and manual delivery runs take places
from one QueueLimit, and are refused the same way when it is full or cannot be read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.domain.errors import RateLimited, ServiceUnavailable

T = TypeVar("T")

QUEUE_UNAVAILABLE = (
    "Runs cannot be queued now (the queue is unreachable); nothing was started, try again"
)


async def take_places(
    allowance: QueueLimit, user_id: str, run_ids: list[str], *, partial: bool
) -> int:
    """How many of `run_ids` (from the first) got a place. RATE_LIMITED when none fits, or,
    unless `partial`, not all (then no place is kept); SERVICE_UNAVAILABLE when the
    allowance cannot be checked, so nothing is started."""
    try:
        taken = await allowance.take(user_id, run_ids)
    except RedisError as exc:
        raise ServiceUnavailable(QUEUE_UNAVAILABLE) from exc
    if taken == 0 or (not partial and taken < len(run_ids)):
        await allowance.release(user_id, *run_ids[:taken])
        raise RateLimited(
            f"You already have {allowance.limit} runs waiting; wait for them to finish"
        )
    return taken


async def with_place(
    allowance: QueueLimit, user_id: str, run_id: str, queue: Callable[[], Awaitable[T]]
) -> T:
    """A manual run: its place is taken first, and given back when it could not be queued
    (once queued, whatever ends the run gives it back)."""
    await take_places(allowance, user_id, [run_id], partial=False)
    try:
        return await queue()
    except BaseException:
        await allowance.release(user_id, run_id)
        raise
