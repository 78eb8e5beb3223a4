"""Transform queries, mutations and the two run subscriptions."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.events.bus import RESYNC
from tilegraph.events.channels import transform_runs_channel
from tilegraph.resolvers.executions import TRANSFORM_RUN, follow_execution, next_message, recheck
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.types.common import DeleteInput, DeletePayload
from tilegraph.schema.types.transforms import (
    CreateTransformInput,
    ExecuteTransformInput,
    Transform,
    TransformExecution,
    TransformExecutionPayload,
    TransformPayload,
    UpdateTransformInput,
)
from tilegraph.schema.values import given, page_size


async def transforms(
    info: Info, first: First = 50, after: After = strawberry.UNSET
) -> Connection[Transform]:
    principal = info.context.principal
    page = await info.context.services.transforms.list_page(
        principal, page_size(first, 50), given(after)
    )
    return connection_from_page(page, Transform.from_record)


async def transform(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The transform (Transform.id).")],
) -> Transform | None:
    principal = info.context.principal
    return Transform.from_record(
        await info.context.services.transforms.get_owned(principal, str(id))
    )


async def transform_execution(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(description="The run (TransformExecutionPayload.execution.id)."),
    ],
) -> TransformExecution | None:
    principal = info.context.principal
    run = await info.context.services.transforms.get_run(principal, str(id))
    return TransformExecution.from_record(run)


async def create_transform(
    info: Info,
    input: Annotated[CreateTransformInput, strawberry.argument(description="The new transform.")],
) -> TransformPayload:
    principal = info.context.principal
    record = await info.context.services.transforms.create(
        principal,
        name=input.name,
        input_dataset_ids=[str(i) for i in input.input_dataset_ids],
        code=input.code,
        schedule_cron=given(input.schedule_cron),
        schedule_enabled=input.schedule_enabled,
        params=given(input.params),
        workspace_key=given(input.workspace_key),
    )
    return TransformPayload(transform=Transform.from_record(record))


async def update_transform(
    info: Info,
    input: Annotated[
        UpdateTransformInput, strawberry.argument(description="The transform and what to change.")
    ],
) -> TransformPayload:
    principal = info.context.principal
    ids = given(input.input_dataset_ids)
    record = await info.context.services.transforms.update(
        principal,
        str(input.id),
        name=given(input.name),
        input_dataset_ids=[str(i) for i in ids] if ids is not None else None,
        code=given(input.code),
        schedule_cron=given(input.schedule_cron),
        cron_given=input.schedule_cron is not strawberry.UNSET,
        schedule_enabled=given(input.schedule_enabled),
        params=given(input.params),
        params_given=input.params is not strawberry.UNSET,
        workspace_key=given(input.workspace_key),
        workspace_key_given=input.workspace_key is not strawberry.UNSET,
        expected_version=given(input.expected_version),
    )
    return TransformPayload(transform=Transform.from_record(record))


async def delete_transform(
    info: Info,
    input: Annotated[DeleteInput, strawberry.argument(description="The transform to delete.")],
) -> DeletePayload:
    principal = info.context.principal
    deleted = await info.context.services.transforms.delete(principal, str(input.id))
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def execute_transform(
    info: Info,
    input: Annotated[
        ExecuteTransformInput, strawberry.argument(description="The transform to run.")
    ],
) -> TransformExecutionPayload:
    principal = info.context.principal
    run = await info.context.services.transforms.execute(principal, str(input.id))
    return TransformExecutionPayload(execution=TransformExecution.from_record(run))


async def transform_execution_updates(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(
            description="The run to follow (TransformExecutionPayload.execution.id)."
        ),
    ],
) -> AsyncGenerator[TransformExecution, None]:
    async for update in follow_execution(info, str(id), TRANSFORM_RUN):
        yield update


async def transform_runs_updates(
    info: Info,
    transform_id: Annotated[
        strawberry.ID, strawberry.argument(description="The transform whose runs to follow.")
    ],
) -> AsyncGenerator[TransformExecution, None]:
    """Every change of every run of one transform, manual or scheduled; never completes.
    Ownership is checked again before each event."""
    ctx = info.context
    principal = ctx.principal
    await ctx.services.transforms.get_owned(principal, str(transform_id))

    async def still_owner() -> None:
        ctx.renew_loaders()
        caller = await ctx.services.rechecks.principal(ctx.authorization) or principal
        await ctx.services.transforms.get_owned(caller, str(transform_id))

    async with ctx.services.bus.subscribe(transform_runs_channel(str(transform_id))) as sub:
        while True:
            message = await next_message(info, sub.get, still_owner)
            if message is RESYNC:
                continue  # each run's next change carries its whole state
            run = TRANSFORM_RUN.of(info).record(message)
            principal = await recheck(
                info,
                principal,
                run.id,
                TRANSFORM_RUN.node.visible,
                run,
                what="transform",
                field="transformId",
            )
            yield TransformExecution.from_record(run)
