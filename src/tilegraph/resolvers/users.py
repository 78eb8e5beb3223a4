"""Finding and creating users."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.schema.types.auth import CreateUserInput, UpdateUserInput, UserPayload
from tilegraph.schema.types.users import User
from tilegraph.schema.values import given, page_size


async def users(
    info: Info,
    query: Annotated[
        str,
        strawberry.argument(
            description="Text to look for: anywhere in email addresses for admins, at"
            " the start of an email or name for everyone else."
        ),
    ],
    limit: Annotated[
        int | None,
        strawberry.argument(
            description="How many users at most: 1 to 100 (a non-admin gets at most 10)."
        ),
    ] = 20,
) -> list[User]:
    ctx = info.context
    records = await ctx.services.users.search(ctx.principal, query, page_size(limit, 20))
    return [User.from_record(r) for r in records]


async def create_user(
    info: Info,
    input: Annotated[CreateUserInput, strawberry.argument(description="The new account.")],
) -> UserPayload:
    record = await info.context.services.users.create(
        input.email, input.name, input.password, input.role
    )
    return UserPayload(user=User.from_record(record))


async def update_user(
    info: Info,
    input: Annotated[
        UpdateUserInput, strawberry.argument(description="The account and what to change about it.")
    ],
) -> UserPayload:
    ctx = info.context
    record = await ctx.services.users.update(
        ctx.principal,
        str(input.id),
        name=given(input.name),
        role=given(input.role),
        disabled=given(input.disabled),
        request_id=ctx.request_id,
    )
    return UserPayload(user=User.from_record(record))
