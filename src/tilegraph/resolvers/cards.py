"""Card queries, mutations and the run subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry

from tilegraph.context import Info
from tilegraph.domain.validation import check_params
from tilegraph.resolvers.executions import CARD_RUN, follow_execution
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.types.cards import (
    Card,
    CardExecution,
    CardExecutionPayload,
    CardPayload,
    CreateCardInput,
    ExecuteCardInput,
    PreviewCardInput,
    UpdateCardInput,
    filters_of,
)
from tilegraph.schema.types.common import DeleteInput, DeletePayload
from tilegraph.schema.values import given, page_size


def _params(value: Any) -> dict[str, Any] | None:
    return check_params(given(value))


async def cards(info: Info, first: First = 50, after: After = strawberry.UNSET) -> Connection[Card]:
    principal = info.context.principal
    page = await info.context.services.cards.list_page(
        principal, page_size(first, 50), given(after)
    )
    return connection_from_page(page, Card.from_record)


async def card(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The card (Card.id).")],
    dashboard_id: Annotated[
        strawberry.ID | None,
        strawberry.argument(description="A dashboard holding the card: lets its VIEWERs read it."),
    ] = strawberry.UNSET,
) -> Card | None:
    ctx = info.context
    principal = ctx.principal
    on = given(dashboard_id)
    record = await ctx.services.cards.get_readable(
        principal, str(id), str(on) if on else None, ctx.access
    )
    return Card.from_record(record)


async def card_execution(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(description="The run (CardExecutionPayload.execution.id)."),
    ],
) -> CardExecution | None:
    principal = info.context.principal
    record = await info.context.services.cards.get_execution(principal, str(id))
    return CardExecution.from_record(record)


async def create_card(
    info: Info, input: Annotated[CreateCardInput, strawberry.argument(description="The new card.")]
) -> CardPayload:
    principal = info.context.principal
    record = await info.context.services.cards.create(
        principal,
        name=input.name,
        description=given(input.description),
        card_type=input.type,
        code=input.code,
        dataset_ids=[str(i) for i in input.dataset_ids],
        params=_params(input.params),
        workspace_key=given(input.workspace_key),
    )
    return CardPayload(card=Card.from_record(record))


async def update_card(
    info: Info,
    input: Annotated[
        UpdateCardInput, strawberry.argument(description="The card and what to change.")
    ],
) -> CardPayload:
    principal = info.context.principal
    dataset_ids = given(input.dataset_ids)
    record = await info.context.services.cards.update(
        principal,
        str(input.id),
        name=given(input.name),
        description=given(input.description),
        code=given(input.code),
        dataset_ids=[str(i) for i in dataset_ids] if dataset_ids is not None else None,
        params=_params(input.params),
        params_given=input.params is not strawberry.UNSET,
        workspace_key=given(input.workspace_key),
        workspace_key_given=input.workspace_key is not strawberry.UNSET,
        expected_version=given(input.expected_version),
    )
    return CardPayload(card=Card.from_record(record))


async def delete_card(
    info: Info,
    input: Annotated[DeleteInput, strawberry.argument(description="The card to delete.")],
) -> DeletePayload:
    principal = info.context.principal
    deleted = await info.context.services.cards.delete(principal, str(input.id))
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def preview_card(
    info: Info,
    input: Annotated[
        PreviewCardInput,
        strawberry.argument(
            description="The draft code with the datasets, filters and params to run it on."
        ),
    ],
) -> CardExecutionPayload:
    principal = info.context.principal
    record = await info.context.services.cards.preview(
        principal,
        code=input.code,
        dataset_ids=[str(i) for i in input.dataset_ids],
        filters=filters_of(input.filters),
        params=_params(input.params),
    )
    return CardExecutionPayload(execution=CardExecution.from_record(record))


async def execute_card(
    info: Info,
    input: Annotated[
        ExecuteCardInput,
        strawberry.argument(
            description="The card, with the filters and params of this run and the "
            "dashboard it is shown on."
        ),
    ],
) -> CardExecutionPayload:
    principal = info.context.principal
    dashboard_id = given(input.dashboard_id)
    record = await info.context.services.cards.execute(
        principal,
        str(input.id),
        dashboard_id=str(dashboard_id) if dashboard_id else None,
        access=info.context.access,
        filters=filters_of(input.filters),
        params=_params(input.params),
        use_cache=input.use_cache,
    )
    return CardExecutionPayload(execution=CardExecution.from_record(record))


async def card_execution_updates(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(description="The run to follow (CardExecutionPayload.execution.id)."),
    ],
) -> AsyncGenerator[CardExecution, None]:
    async for update in follow_execution(info, str(id), CARD_RUN):
        yield update
