"""User and Group."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.context import Info
from tilegraph.domain.errors import NotFound
from tilegraph.domain.users import GroupRecord, UserRecord
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.enums import Role
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.values import given, page_size


@strawberry.type(description="An account that signs in.")
class User(Node):
    email: str = strawberry.field(
        description="The address the user signs in with; unique, ignoring letter case."
    )
    name: str = strawberry.field(description="How the user is shown to others.")
    role: Role = strawberry.field(description="What the account may do server-wide.")
    created_at: datetime = strawberry.field(description="When the account was created.")
    disabled: bool = strawberry.field(
        description="A disabled user cannot sign in, and every token of theirs stops working "
        "at once."
    )
    record: strawberry.Private[UserRecord]

    @classmethod
    def from_record(cls, record: UserRecord) -> User:
        return cls(
            id=strawberry.ID(record.id),
            email=record.email,
            name=record.name,
            role=record.role,
            created_at=record.created_at,
            disabled=record.disabled,
            record=record,
        )

    @field(
        description="Key → string or list of strings; read by policy filters. Visible to "
        "admins and to the user."
    )
    def attributes(self, info: Info) -> JSON | None:
        principal = info.context.principal
        if not principal.is_admin and principal.user_id != self.record.id:
            return None
        return JSON(self.record.attributes)

    @classmethod
    def maybe(cls, record: UserRecord | None) -> User | None:
        return cls.from_record(record) if record is not None else None


async def load_user(info: Info, user_id: str | None) -> User | None:
    """The user with this id, batched with every other user loaded in the same tick."""
    if not user_id:
        return None
    return User.maybe(await info.context.loaders.users.load(user_id))


async def load_owner(info: Info, user_id: str) -> User:
    """For non-null `owner` fields: a deleted owner is reported, not returned as null."""
    user = await load_user(info, user_id)
    if user is None:
        raise NotFound("The owner no longer exists")
    return user


@strawberry.type(
    description="A named set of users that dashboards can be shared with; managed by admins."
)
class Group(Node):
    name: str = strawberry.field(description="Unique among groups, ignoring letter case.")
    created_at: datetime = strawberry.field(description="When the group was created.")
    updated_at: datetime = strawberry.field(description="When the group was last renamed.")

    @classmethod
    def from_record(cls, record: GroupRecord) -> Group:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )

    @classmethod
    def maybe(cls, record: GroupRecord | None) -> Group | None:
        return cls.from_record(record) if record is not None else None

    @field(description="The group's members, a page at a time.")
    async def members(
        self, info: Info, first: First = 50, after: After = strawberry.UNSET
    ) -> Connection[User]:
        page = await info.context.services.groups.members_page(
            str(self.id), page_size(first, 50), given(after)
        )
        records = await info.context.loaders.users.load_many(page.items)
        by_id = {r.id: User.from_record(r) for r in records if r is not None}
        return connection_from_page(page, lambda user_id: by_id.get(user_id))
