"""The dashboard chat subscription (VIEWER on the dashboard, enforced by the directive)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.schema.types.chat import ChatEvent, ChatMessageInput
from tilegraph.schema.values import given


async def dashboard_chat(
    info: Info,
    dashboard_id: Annotated[
        strawberry.ID,
        strawberry.argument(description="The dashboard whose data the question is about."),
    ],
    message: Annotated[
        str, strawberry.argument(description="The question, 1 to 10,000 characters.")
    ],
    history: Annotated[
        list[ChatMessageInput] | None,
        strawberry.argument(
            description="Earlier turns of the conversation, oldest first; the last five are used."
        ),
    ] = strawberry.UNSET,
) -> AsyncGenerator[ChatEvent, None]:
    ctx = info.context
    principal = ctx.principal
    access = ctx.access
    dashboard = await access.checked(str(dashboard_id))
    given_history: list[ChatMessageInput] = given(history) or []
    turns = [(turn.role, turn.content) for turn in given_history]
    chat = ctx.services.chat
    prepared = await chat.prepare(principal, access, dashboard, message, turns)
    async for event in chat.answer(
        principal, dashboard, prepared, message_length=len(message), request_id=ctx.request_id
    ):
        yield ChatEvent.from_record(event)
