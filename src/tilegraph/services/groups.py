"""Groups and their members (admin only; the API enforces the role)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.errors import BadUserInput, Conflict, NotFound
from tilegraph.domain.ids import new_id
from tilegraph.domain.paging import check_first
from tilegraph.domain.users import GroupRecord
from tilegraph.domain.validation import check_name
from tilegraph.store.dynamo import ConditionFailed
from tilegraph.store.groups import GroupRepository, NameTaken
from tilegraph.store.pagination import Page
from tilegraph.store.users import UserRepository

GROUP_NAME_MAX = 100


class GroupService:
    def __init__(self, groups: GroupRepository, users: UserRepository) -> None:
        self.groups = groups
        self.users = users
        # Things that refer to a group and go with it (its dashboard shares).
        self.on_delete: list[Callable[[str], Awaitable[None]]] = []

    async def get(self, group_id: str) -> GroupRecord:
        group = await self.groups.get(group_id)
        if group is None:
            raise NotFound("No such group", field="id")
        return group

    async def create(self, name: str) -> GroupRecord:
        name = check_name(name, max_length=GROUP_NAME_MAX)
        now = utcnow()
        group = GroupRecord(id=new_id("grp"), name=name, created_at=now, updated_at=now)
        try:
            await self.groups.create(group)
        except NameTaken as exc:
            raise Conflict("A group with this name already exists", field="name") from exc
        return group

    async def rename(self, group_id: str, name: str) -> GroupRecord:
        name = check_name(name, max_length=GROUP_NAME_MAX)
        group = await self.get(group_id)
        try:
            return await self.groups.rename(group, name, to_iso(utcnow()))
        except NameTaken as exc:
            raise Conflict("A group with this name already exists", field="name") from exc
        except ConditionFailed as exc:
            raise Conflict("The group changed meanwhile; try again") from exc

    async def delete(self, group_id: str) -> str:
        group = await self.get(group_id)
        await self.groups.delete(group)
        for cleanup in self.on_delete:
            await cleanup(group.id)
        return group.id

    async def add_member(self, group_id: str, user_id: str) -> GroupRecord:
        group = await self.get(group_id)
        if await self.users.get(user_id) is None:
            raise BadUserInput("No such user", field="userId")
        if not await self.groups.add_member(group.id, user_id, to_iso(utcnow())):
            raise Conflict("The user is already a member of this group", field="userId")
        return group

    async def remove_member(self, group_id: str, user_id: str) -> GroupRecord:
        group = await self.get(group_id)
        if not await self.groups.remove_member(group.id, user_id):
            raise BadUserInput("The user is not a member of this group", field="userId")
        return group

    async def list_page(self, first: int, after: str | None) -> Page[GroupRecord]:
        return await self.groups.list_page(check_first(first), after)

    async def members_page(self, group_id: str, first: int, after: str | None) -> Page[str]:
        return await self.groups.members_page(group_id, check_first(first), after)
