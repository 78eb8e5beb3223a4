"""Groups and membership (admin only, enforced by @requiresRole on the root fields)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.types.auth import (
    CreateGroupInput,
    GroupMemberInput,
    GroupPayload,
    UpdateGroupInput,
)
from tilegraph.schema.types.common import DeleteInput, DeletePayload
from tilegraph.schema.types.users import Group
from tilegraph.schema.values import given, page_size


async def groups(
    info: Info, first: First = 50, after: After = strawberry.UNSET
) -> Connection[Group]:
    page = await info.context.services.groups.list_page(page_size(first, 50), given(after))
    return connection_from_page(page, Group.from_record)


async def group(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The group (Group.id).")],
) -> Group | None:
    return Group.from_record(await info.context.services.groups.get(str(id)))


async def create_group(
    info: Info,
    input: Annotated[CreateGroupInput, strawberry.argument(description="The new group.")],
) -> GroupPayload:
    return GroupPayload(
        group=Group.from_record(await info.context.services.groups.create(input.name))
    )


async def update_group(
    info: Info,
    input: Annotated[
        UpdateGroupInput, strawberry.argument(description="The group and its new name.")
    ],
) -> GroupPayload:
    record = await info.context.services.groups.rename(str(input.id), input.name)
    return GroupPayload(group=Group.from_record(record))


async def delete_group(
    info: Info,
    input: Annotated[DeleteInput, strawberry.argument(description="The group to delete.")],
) -> DeletePayload:
    deleted = await info.context.services.groups.delete(str(input.id))
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def add_group_member(
    info: Info,
    input: Annotated[
        GroupMemberInput, strawberry.argument(description="The group and the user to add to it.")
    ],
) -> GroupPayload:
    record = await info.context.services.groups.add_member(str(input.group_id), str(input.user_id))
    return GroupPayload(group=Group.from_record(record))


async def remove_group_member(
    info: Info,
    input: Annotated[
        GroupMemberInput,
        strawberry.argument(description="The group and the user to take out of it."),
    ],
) -> GroupPayload:
    record = await info.context.services.groups.remove_member(
        str(input.group_id), str(input.user_id)
    )
    return GroupPayload(group=Group.from_record(record))
