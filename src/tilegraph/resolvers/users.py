"""Finding and creating users."""

from __future__ import annotations

from tilegraph.context import Info
from tilegraph.schema.types.auth import CreateUserInput, UpdateUserInput, UserPayload
from tilegraph.schema.types.users import User
from tilegraph.schema.values import given, page_size


async def users(info: Info, query: str, limit: int | None = 20) -> list[User]:
    ctx = info.context
    records = await ctx.services.users.search(ctx.principal, query, page_size(limit, 20))
    return [User.from_record(r) for r in records]


async def create_user(info: Info, input: CreateUserInput) -> UserPayload:
    record = await info.context.services.users.create(
        input.email, input.name, input.password, input.role
    )
    return UserPayload(user=User.from_record(record))


async def update_user(info: Info, input: UpdateUserInput) -> UserPayload:
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
