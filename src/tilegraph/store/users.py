"""Users: records keyed by id, plus `email#…` claim items that keep emails unique."""

from __future__ import annotations

from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.users import Role, UserRecord, normalize_email, normalize_name
from tilegraph.store.dynamo import ConditionFailed, Dynamo, Filter, KeyCondition

TABLE = "users"
USER_KIND = "USER"


class EmailTaken(Exception):
    pass


def _claim_id(email: str) -> str:
    return f"email#{normalize_email(email)}"


def user_to_item(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "kind": USER_KIND,
        "email": user.email,
        "email_lower": normalize_email(user.email),
        "name": user.name,
        "name_lower": normalize_name(user.name),
        "role": user.role.value,
        "password_hash": user.password_hash,
        "created_at": to_iso(user.created_at),
        "updated_at": to_iso(user.updated_at),
        "version": user.version,
        "disabled": user.disabled,
        "session_epoch": user.session_epoch,
        "kept_session": user.kept_session,
        "attributes": user.attributes,
    }


def user_from_item(item: dict[str, Any]) -> UserRecord:
    return UserRecord(
        id=item["id"],
        email=item["email"],
        name=item["name"],
        role=Role(item["role"]),
        password_hash=item["password_hash"],
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        version=int(item.get("version", 1)),
        disabled=bool(item.get("disabled", False)),
        session_epoch=int(item.get("session_epoch", 0)),
        kept_session=item.get("kept_session"),
        attributes=dict(item.get("attributes") or {}),
    )


class UserRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def create(self, user: UserRecord) -> None:
        """Write the user and its email claim in one transaction; EmailTaken on a clash."""
        try:
            await self.db.transact_write(
                [
                    {
                        "put": TABLE,
                        "item": {"id": _claim_id(user.email), "user_id": user.id},
                        "condition": "attribute_not_exists(id)",
                    },
                    {
                        "put": TABLE,
                        "item": user_to_item(user),
                        "condition": "attribute_not_exists(id)",
                    },
                ]
            )
        except ConditionFailed as exc:
            raise EmailTaken(user.email) from exc

    async def get(self, user_id: str) -> UserRecord | None:
        if not user_id.startswith("usr_"):
            return None
        item = await self.db.get(TABLE, {"id": user_id})
        return user_from_item(item) if item else None

    async def get_many(self, user_ids: list[str]) -> dict[str, UserRecord]:
        ids = [i for i in user_ids if i.startswith("usr_")]
        items = await self.db.batch_get(TABLE, [{"id": i} for i in ids])
        return {item["id"]: user_from_item(item) for item in items}

    async def get_by_email(self, email: str) -> UserRecord | None:
        """Strongly consistent: follows the claim item rather than the eventual index."""
        claim = await self.db.get(TABLE, {"id": _claim_id(email)})
        if claim is None:
            return None
        return await self.get(claim["user_id"])

    async def search_by_email(self, query: str, limit: int) -> list[UserRecord]:
        """Users whose email contains `query`, case-insensitively, ordered by email.

        A Query on the directory index (never a Scan); the substring test is a filter.
        """
        items = await self.db.query_all(
            TABLE,
            KeyCondition("kind", USER_KIND),
            index="by_email",
            flt=Filter("contains(#fe, :fq)", {"#fe": "email_lower"}, {":fq": query.lower()}),
            limit=limit,
        )
        return [user_from_item(i) for i in items]

    async def search_by_prefix(self, prefix: str, limit: int) -> list[UserRecord]:
        """Users whose email or name starts with `prefix` (compared lower-case), ordered by
        email. Like search_by_email, a Query on the directory index with a filter."""
        items = await self.db.query_all(
            TABLE,
            KeyCondition("kind", USER_KIND),
            index="by_email",
            flt=Filter(
                "begins_with(#fe, :fq) OR begins_with(#fn, :fq)",
                {"#fe": "email_lower", "#fn": "name_lower"},
                {":fq": prefix},
            ),
            limit=limit,
        )
        return [user_from_item(i) for i in items]

    async def update(self, user: UserRecord, changes: dict[str, Any]) -> UserRecord:
        """Conditional on the version read (ConditionFailed when someone else won)."""
        if "name" in changes:
            changes = {**changes, "name_lower": normalize_name(changes["name"])}
        item = await self.db.update(
            TABLE, {"id": user.id}, set_values=changes, expected_version=user.version
        )
        return user_from_item(item)

    async def any_admin(self) -> bool:
        items = await self.db.query_all(
            TABLE,
            KeyCondition("kind", USER_KIND),
            index="by_email",
            flt=Filter("#fr = :fr", {"#fr": "role"}, {":fr": Role.ADMIN.value}),
            limit=1,
        )
        return bool(items)
