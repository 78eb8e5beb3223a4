"""Groups (with `name#…` claim items for unique names) and their memberships."""

from __future__ import annotations

from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.users import GroupRecord, normalize_name
from tilegraph.store.dynamo import ConditionFailed, Dynamo, KeyCondition
from tilegraph.store.pagination import Page

TABLE = "groups"
MEMBERS = "group_members"
GROUP_KIND = "GROUP"


class NameTaken(Exception):
    pass


def _claim_id(name: str) -> str:
    return f"name#{normalize_name(name)}"


def group_to_item(group: GroupRecord) -> dict[str, Any]:
    return {
        "id": group.id,
        "kind": GROUP_KIND,
        "name": group.name,
        "name_lower": normalize_name(group.name),
        "created_at": to_iso(group.created_at),
        "updated_at": to_iso(group.updated_at),
        "version": group.version,
    }


def group_from_item(item: dict[str, Any]) -> GroupRecord:
    return GroupRecord(
        id=item["id"],
        name=item["name"],
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        version=int(item.get("version", 1)),
    )


class GroupRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def create(self, group: GroupRecord) -> None:
        try:
            await self.db.transact_write(
                [
                    {
                        "put": TABLE,
                        "item": {"id": _claim_id(group.name), "group_id": group.id},
                        "condition": "attribute_not_exists(id)",
                    },
                    {
                        "put": TABLE,
                        "item": group_to_item(group),
                        "condition": "attribute_not_exists(id)",
                    },
                ]
            )
        except ConditionFailed as exc:
            raise NameTaken(group.name) from exc

    async def get(self, group_id: str) -> GroupRecord | None:
        if not group_id.startswith("grp_"):
            return None
        item = await self.db.get(TABLE, {"id": group_id})
        return group_from_item(item) if item else None

    async def get_many(self, group_ids: list[str]) -> dict[str, GroupRecord]:
        ids = [i for i in group_ids if i.startswith("grp_")]
        items = await self.db.batch_get(TABLE, [{"id": i} for i in ids])
        return {item["id"]: group_from_item(item) for item in items}

    async def rename(self, group: GroupRecord, new_name: str, updated_at: str) -> GroupRecord:
        """Move the name claim and rename in one transaction, guarded by the version."""
        if normalize_name(new_name) == normalize_name(group.name):
            item = await self.db.update(
                TABLE,
                {"id": group.id},
                set_values={"name": new_name, "updated_at": updated_at},
                expected_version=group.version,
            )
            return group_from_item(item)
        try:
            await self.db.transact_write(
                [
                    {
                        "put": TABLE,
                        "item": {"id": _claim_id(new_name), "group_id": group.id},
                        "condition": "attribute_not_exists(id)",
                    },
                    {"delete": TABLE, "key": {"id": _claim_id(group.name)}},
                    {
                        "update": TABLE,
                        "key": {"id": group.id},
                        "expression": "SET #n = :n, #nl = :nl, #u = :u, #v = #v + :one",
                        "condition": "#v = :expected",
                        "names": {
                            "#n": "name",
                            "#nl": "name_lower",
                            "#u": "updated_at",
                            "#v": "version",
                        },
                        "values": {
                            ":n": new_name,
                            ":nl": normalize_name(new_name),
                            ":u": updated_at,
                            ":one": 1,
                            ":expected": group.version,
                        },
                    },
                ]
            )
        except ConditionFailed as exc:
            raise NameTaken(new_name) from exc
        renamed = await self.get(group.id)
        assert renamed is not None
        return renamed

    async def delete(self, group: GroupRecord) -> None:
        member_ids = await self.member_ids(group.id)
        await self.db.batch_delete(
            MEMBERS, [{"group_id": group.id, "user_id": u} for u in member_ids]
        )
        await self.db.transact_write(
            [
                {"delete": TABLE, "key": {"id": group.id}},
                {"delete": TABLE, "key": {"id": _claim_id(group.name)}},
            ]
        )

    async def list_page(self, first: int, after: str | None) -> Page[GroupRecord]:
        page = await self.db.query_page(
            TABLE, KeyCondition("kind", GROUP_KIND), index="by_name", first=first, after=after
        )
        return page.map(group_from_item)

    async def add_member(self, group_id: str, user_id: str, added_at: str) -> bool:
        """False when the user already was a member."""
        try:
            await self.db.put(
                MEMBERS,
                {"group_id": group_id, "user_id": user_id, "added_at": added_at},
                condition="attribute_not_exists(user_id)",
            )
        except ConditionFailed:
            return False
        return True

    async def remove_member(self, group_id: str, user_id: str) -> bool:
        old = await self.db.delete(MEMBERS, {"group_id": group_id, "user_id": user_id})
        return old is not None

    async def members_page(self, group_id: str, first: int, after: str | None) -> Page[str]:
        page = await self.db.query_page(
            MEMBERS, KeyCondition("group_id", group_id), first=first, after=after
        )
        return page.map(lambda item: item["user_id"])

    async def member_ids(self, group_id: str) -> list[str]:
        items = await self.db.query_all(MEMBERS, KeyCondition("group_id", group_id))
        return [i["user_id"] for i in items]

    async def group_ids_of(self, user_id: str) -> list[str]:
        items = await self.db.query_all(MEMBERS, KeyCondition("user_id", user_id), index="by_user")
        return [i["group_id"] for i in items]
