"""Cancelling executions, finding them by id, and following them live: one stream for every
kind (card runs, transform runs, dataset imports, delivery runs), dispatched by the id's prefix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from tilegraph.context import Info
from tilegraph.domain.errors import NotFound
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.users import Principal
from tilegraph.events.bus import RESYNC
from tilegraph.events.channels import execution_channel
from tilegraph.resolvers import nodes as nodes_r
from tilegraph.resolvers.nodes import NodeKind
from tilegraph.schema.node import Node
from tilegraph.schema.shared_events import share_next_event, shared_value
from tilegraph.schema.types.common import CancelExecutionInput, OkPayload
from tilegraph.schema.types.executions import Execution
from tilegraph.services.executions import ExecutionService, StoredExecutions

R = TypeVar("R")
T = TypeVar("T")
N = TypeVar("N", bound=Node)
Item = dict[str, Any]  # an execution as stored, or a snapshot of it published as an event


@dataclass(frozen=True)
class ExecutionKind(Generic[R, N]):
    """One kind of execution: where the execution service keeps it (its table, how its
    items read), and through its node kind who may see it and its GraphQL type."""

    node: NodeKind[R, N]
    stored: Callable[[ExecutionService], StoredExecutions[R]]

    def of(self, info: Info) -> StoredExecutions[R]:
        return self.stored(info.context.services.executions)


CARD_RUN = ExecutionKind(nodes_r.CARD_RUN, lambda executions: executions.card_runs)
TRANSFORM_RUN = ExecutionKind(nodes_r.TRANSFORM_RUN, lambda executions: executions.transform_runs)
DATASET_IMPORT = ExecutionKind(nodes_r.DATASET_IMPORT, lambda executions: executions.imports)
DELIVERY_RUN = ExecutionKind(nodes_r.DELIVERY_RUN, lambda executions: executions.delivery_runs)
KINDS: dict[str, ExecutionKind[Any, Any]] = {
    "cex": CARD_RUN,
    "tex": TRANSFORM_RUN,
    "imp": DATASET_IMPORT,
    "dlr": DELIVERY_RUN,
}
NO_SUCH_EXECUTION = "No such execution"
EXECUTION_ID = "A CardExecution, TransformExecution, DatasetImport or DeliveryRun id."


def kind_of(execution_id: str) -> ExecutionKind[Any, Any] | None:
    return KINDS.get(prefix_of(execution_id) or "")


async def cancel_execution(
    info: Info,
    input: Annotated[
        CancelExecutionInput, strawberry.argument(description="The execution to cancel.")
    ],
) -> OkPayload:
    principal = info.context.principal
    ok = await info.context.services.executions.cancel(principal, str(input.id))
    return OkPayload(ok=ok)


async def execution(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(
            description="A CardExecution, TransformExecution, DatasetImport or DeliveryRun id."
        ),
    ],
) -> Execution | None:
    principal = info.context.principal
    kind = kind_of(str(id))
    found: Execution | None = (
        (await kind.node.find(info, principal, [str(id)]))[0] if kind else None
    )
    if found is None:
        raise NotFound(NO_SUCH_EXECUTION, field="id")
    return found


async def recheck(
    info: Info,
    principal: Principal,
    object_id: str,
    visible: Callable[[Info, Principal, R], Awaitable[bool]],
    record: R,
    *,
    what: str,
    field: str,
) -> Principal:
    """Before each event: fresh loaders, the token read again (it may have been revoked or
    the user demoted meanwhile), and access checked again; NOT_FOUND once it is gone. Both
    answers are shared for a moment with this process's other subscribers (SharedChecks)."""
    ctx = info.context
    ctx.renew_loaders()
    checks = ctx.services.rechecks
    principal = await checks.principal(ctx.authorization) or principal
    if not await checks.may_see(principal, object_id, lambda: visible(info, principal, record)):
        raise NotFound(f"No such {what}", field=field)
    return principal


async def next_message(
    info: Info, wait: Callable[[], Awaitable[T]], still_allowed: Callable[[], Awaitable[object]]
) -> T:
    """The subscription's next message. While none comes, ``still_allowed`` runs every
    ``idle_recheck_seconds``, so an idle stream ends too once its caller may no longer follow
    it (it raises then), or once Redis has been out of reach too long to wait for.
    Cancelling the wait loses nothing: a queue get is cancel-safe."""
    idle = info.context.services.settings.idle_recheck_seconds
    bus = info.context.services.bus
    while True:
        try:
            return await asyncio.wait_for(wait(), idle)
        except TimeoutError:
            outage = bus.unavailable()
            if outage is not None:  # no events can come: the client subscribes again
                raise outage from None
            await still_allowed()


def _read(stored: StoredExecutions[R], node: NodeKind[R, N], item: Item) -> tuple[R, N]:
    record = stored.record(item)
    return record, node.convert(record)


async def follow_execution(
    info: Info, execution_id: str, kind: ExecutionKind[R, N]
) -> AsyncGenerator[N, None]:
    """Subscribe first, then read the current state, yield it, and stream every change
    until a terminal state. Identity and access are checked again before every event."""
    ctx = info.context
    principal = ctx.principal
    if kind_of(execution_id) is not kind:
        raise NotFound(NO_SUCH_EXECUTION, field="id")
    stored = kind.of(info)
    async with ctx.services.bus.subscribe(execution_channel(execution_id)) as subscription:
        item = await ctx.services.executions.current(stored, execution_id)
        if item is None:
            raise NotFound(NO_SUCH_EXECUTION, field="id")
        record = stored.record(item)
        if not await kind.node.visible(info, principal, record):
            raise NotFound(NO_SUCH_EXECUTION, field="id")
        last_seq = int(item.get("seq", 0))
        share_next_event(None)
        yield kind.node.convert(record)
        while not ExecutionStatus(item["status"]).is_terminal:
            check = partial(
                recheck,
                info,
                principal,
                execution_id,
                kind.node.visible,
                what="execution",
                field="id",
            )
            message = await next_message(info, subscription.newest, partial(check, record))
            if message is RESYNC:
                fresh = await ctx.services.executions.current(stored, execution_id)
                if fresh is None:
                    raise NotFound("The execution no longer exists", field="id")
                message = fresh
            if int(message.get("seq", 0)) <= last_seq and message.get("seq") is not None:
                continue
            seq = message.get("seq")
            read = partial(_read, stored, kind.node, message)
            # The same event reads the same for every subscriber: read it once.
            record, node = read() if seq is None else shared_value(f"{execution_id}:{seq}", read)
            principal = await check(record)
            item = message
            last_seq = int(item.get("seq", last_seq))
            share_next_event(f"{execution_id}:{last_seq}:{principal.user_id}:{principal.role}")
            yield node


async def execution_updates(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(
            description="A CardExecution, TransformExecution, DatasetImport or DeliveryRun id."
        ),
    ],
) -> AsyncGenerator[Execution, None]:
    kind = kind_of(str(id))
    if kind is None:
        raise NotFound(NO_SUCH_EXECUTION, field="id")
    async for update in follow_execution(info, str(id), kind):
        yield update
