"""Delivery queries and mutations (runs are followed with Subscription.execution)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.types.common import DeleteInput, DeletePayload
from tilegraph.schema.types.deliveries import (
    CreateDeliveryInput,
    Delivery,
    DeliveryPayload,
    DeliveryRun,
    DeliveryRunPayload,
    RunDeliveryInput,
    UpdateDeliveryInput,
)
from tilegraph.schema.values import given, page_size
from tilegraph.services.deliveries import DeliveryChanges


async def deliveries(
    info: Info, first: First = 50, after: After = strawberry.UNSET
) -> Connection[Delivery]:
    principal = info.context.principal
    page = await info.context.services.deliveries.list_page(
        principal, page_size(first, 50), given(after)
    )
    return connection_from_page(page, Delivery.from_record)


async def create_delivery(
    info: Info,
    input: Annotated[CreateDeliveryInput, strawberry.argument(description="The new delivery.")],
) -> DeliveryPayload:
    ctx = info.context
    record, secret = await ctx.services.deliveries.create(
        ctx.principal,
        ctx.access,
        dashboard_id=str(input.dashboard_id),
        name=input.name,
        card_ids=[str(i) for i in input.card_ids],
        filter_view_id=str(input.filter_view_id) if given(input.filter_view_id) else None,
        schedule_cron=input.schedule_cron,
        enabled=input.enabled,
        channel=input.channel,
        recipients=list(input.recipients),
        contents=list(input.contents),
        condition=condition.to_record() if (condition := given(input.condition)) else None,
    )
    return DeliveryPayload(delivery=Delivery.from_record(record), signing_secret=secret)


async def update_delivery(
    info: Info,
    input: Annotated[UpdateDeliveryInput, strawberry.argument(description="What to change.")],
) -> DeliveryPayload:
    ctx = info.context
    view = given(input.filter_view_id)
    card_ids = given(input.card_ids)
    recipients = given(input.recipients)
    contents = given(input.contents)
    condition = given(input.condition)
    changes = DeliveryChanges(
        name=given(input.name),
        card_ids=[str(i) for i in card_ids] if card_ids is not None else None,
        filter_view_id=str(view) if view else None,
        filter_view_given=input.filter_view_id is not strawberry.UNSET,
        schedule_cron=given(input.schedule_cron),
        enabled=given(input.enabled),
        recipients=list(recipients) if recipients is not None else None,
        contents=list(contents) if contents is not None else None,
        condition=condition.to_record() if condition else None,
        clear_condition=bool(given(input.clear_condition)),
        expected_version=given(input.expected_version),
    )
    record = await ctx.services.deliveries.update(ctx.principal, ctx.access, str(input.id), changes)
    return DeliveryPayload(delivery=Delivery.from_record(record))


async def delete_delivery(
    info: Info,
    input: Annotated[DeleteInput, strawberry.argument(description="The delivery to delete.")],
) -> DeletePayload:
    ctx = info.context
    deleted = await ctx.services.deliveries.delete(ctx.principal, ctx.access, str(input.id))
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def run_delivery(
    info: Info,
    input: Annotated[RunDeliveryInput, strawberry.argument(description="The delivery to send.")],
) -> DeliveryRunPayload:
    ctx = info.context
    run = await ctx.services.deliveries.run_now(ctx.principal, ctx.access, str(input.id))
    return DeliveryRunPayload(run=DeliveryRun.from_record(run))
