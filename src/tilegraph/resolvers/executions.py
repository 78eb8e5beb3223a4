"""Cancelling executions, and following them live over subscriptions."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from tilegraph.context import Info
from tilegraph.domain.errors import NotFound
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.users import Principal
from tilegraph.events.bus import RESYNC
from tilegraph.events.channels import execution_channel
from tilegraph.schema.types.common import CancelExecutionInput, OkPayload
from tilegraph.services.executions import ExecutionKind

R = TypeVar("R")
T = TypeVar("T")

# May this caller see the execution? Called again for every event.
Authorize = Callable[[Info, Principal, dict[str, Any]], Awaitable[bool]]


async def cancel_execution(info: Info, input: CancelExecutionInput) -> OkPayload:
    principal = await info.context.require_principal()
    ok = await info.context.services.executions.cancel(principal, str(input.id))
    return OkPayload(ok=ok)


async def recheck(
    info: Info,
    principal: Principal,
    item: dict[str, Any],
    authorize: Authorize,
    *,
    what: str,
    field: str,
) -> Principal:
    """Before each event: fresh loaders, the token read again (it may have been revoked or
    the user demoted meanwhile), and access checked again; NOT_FOUND once it is gone."""
    ctx = info.context
    ctx.renew_loaders()
    principal = await ctx.services.auth.authenticate(ctx.authorization) or principal
    if not await authorize(info, principal, item):
        raise NotFound(f"No such {what}", field=field)
    return principal


async def follow_execution(
    info: Info,
    execution_id: str,
    *,
    kind: ExecutionKind[R],
    authorize: Authorize,
    convert: Callable[[R], T],
) -> AsyncGenerator[T, None]:
    """Subscribe first, then read the current state, yield it, and stream every change
    until a terminal state. Access is checked again before every event."""
    ctx = info.context
    principal = await ctx.require_principal()
    async with ctx.services.bus.subscribe(execution_channel(execution_id)) as subscription:
        item = await ctx.services.executions.current(kind, execution_id)
        if item is None or not await authorize(info, principal, item):
            raise NotFound("No such execution", field="id")
        last_seq = int(item.get("seq", 0))
        yield convert(kind.record(item))
        while not ExecutionStatus(item["status"]).is_terminal:
            message = await subscription.get()
            if message is RESYNC:
                fresh = await ctx.services.executions.current(kind, execution_id)
                if fresh is None:
                    raise NotFound("The execution no longer exists", field="id")
                message = fresh
            if int(message.get("seq", 0)) <= last_seq and message.get("seq") is not None:
                continue
            principal = await recheck(
                info, principal, message, authorize, what="execution", field="id"
            )
            item = message
            last_seq = int(item.get("seq", last_seq))
            yield convert(kind.record(item))
