"""Revisions: one item per (object, number), the number zero-padded so they sort. A
revision is written as a step of the object's own write (`append_step`), so history never
misses or invents a change; a deleted object's last revision carries `deleted_owner` (a
sparse index of what its owner may undo) and every one of its revisions an expiry (TTL)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from tilegraph.domain.clock import from_iso, to_iso, utcnow
from tilegraph.domain.revisions import RevisionChange, RevisionObjectType, RevisionRecord
from tilegraph.store.dynamo import Dynamo, Filter, KeyCondition
from tilegraph.store.pagination import Page

TABLE = "revisions"


def seq_of(number: int) -> str:
    return f"{number:010d}"


def revision_to_item(record: RevisionRecord) -> dict[str, Any]:
    return {
        "object_id": record.object_id,
        "seq": seq_of(record.number),
        "id": record.id,
        "object_type": record.object_type.value,
        "owner_id": record.owner_id,
        "number": record.number,
        "snapshot": record.snapshot,
        "changes": [
            {"field": c.field, "before": c.before, "after": c.after} for c in record.changes
        ],
        "author_id": record.author_id,
        "created_at": to_iso(record.created_at),
        "restored_from": record.restored_from,
    }


def revision_from_item(item: dict[str, Any]) -> RevisionRecord:
    deleted_at = item.get("deleted_at")
    restored = item.get("restored_from")
    return RevisionRecord(
        id=item["id"],
        object_type=RevisionObjectType(item["object_type"]),
        object_id=item["object_id"],
        owner_id=item["owner_id"],
        number=int(item["number"]),
        snapshot=item.get("snapshot") or {},
        changes=tuple(
            RevisionChange(c["field"], c.get("before"), c.get("after"))
            for c in item.get("changes", [])
        ),
        author_id=item.get("author_id"),
        created_at=from_iso(item["created_at"]),
        restored_from=int(restored) if restored is not None else None,
        deleted_at=from_iso(deleted_at) if deleted_at else None,
    )


def _live(item: dict[str, Any], now: datetime) -> bool:
    """DynamoDB deletes expired items lazily: an expired one is gone already for us."""
    expires = item.get("expires_at")
    return expires is None or int(expires) > int(now.timestamp())


def _key(record: RevisionRecord) -> dict[str, str]:
    return {"object_id": record.object_id, "seq": seq_of(record.number)}


class RevisionRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def append_step(self, record: RevisionRecord) -> dict[str, Any]:
        """The transaction step that adds `record`; it fails the whole write when the
        number is taken (someone else saved the object first)."""
        return {
            "put": TABLE,
            "item": revision_to_item(record),
            "condition": "attribute_not_exists(#s)",
            "names": {"#s": "seq"},
        }

    def deleted_step(
        self, record: RevisionRecord, at: datetime, expires: datetime
    ) -> dict[str, Any]:
        """The step that marks `record` as its object's last state before a delete."""
        return {
            "update": TABLE,
            "key": _key(record),
            "expression": "SET #d = :d, #do = :o, #e = :e",
            "condition": "attribute_exists(#s)",
            "names": {"#d": "deleted_at", "#do": "deleted_owner", "#e": "expires_at", "#s": "seq"},
            "values": {":d": to_iso(at), ":o": record.owner_id, ":e": int(expires.timestamp())},
        }

    def undeleted_step(self, record: RevisionRecord) -> dict[str, Any]:
        """The step that takes a restored object's last revision off the deleted list."""
        return {
            "update": TABLE,
            "key": _key(record),
            "expression": "REMOVE #d, #do, #e",
            "condition": "attribute_exists(#d)",
            "names": {"#d": "deleted_at", "#do": "deleted_owner", "#e": "expires_at"},
        }

    async def set_expiry(self, object_id: str, expires: datetime | None) -> None:
        """Every revision of the object expires then (None: never). Idempotent: a delete
        sets it after its transaction, a restore clears it before its own."""
        items = await self.db.query_all(TABLE, KeyCondition("object_id", object_id))
        await asyncio.gather(
            *(
                self.db.update(
                    TABLE,
                    {"object_id": object_id, "seq": item["seq"]},
                    set_values={"expires_at": int(expires.timestamp()) if expires else None},
                    bump_version=False,
                )
                for item in items
            )
        )

    async def latest(self, object_id: str) -> RevisionRecord | None:
        page = await self.db.query_page(
            TABLE, KeyCondition("object_id", object_id), first=1, forward=False
        )
        live = [i for i in page.items if _live(i, utcnow())]
        return revision_from_item(live[0]) if live else None

    async def get(self, revision_id: str) -> RevisionRecord | None:
        if not revision_id.startswith("rev_"):
            return None
        items = await self.db.query_all(TABLE, KeyCondition("id", revision_id), index="by_id")
        live = [i for i in items if _live(i, utcnow())]
        return revision_from_item(live[0]) if live else None

    async def get_many(self, revision_ids: list[str]) -> dict[str, RevisionRecord]:
        found = await asyncio.gather(*(self.get(i) for i in dict.fromkeys(revision_ids)))
        return {r.id: r for r in found if r is not None}

    async def of_object(
        self, object_id: str, first: int, after: str | None
    ) -> Page[RevisionRecord]:
        """Newest first."""
        page = await self.db.query_page(
            TABLE,
            KeyCondition("object_id", object_id),
            first=first,
            after=after,
            forward=False,
            flt=_not_expired(),
        )
        return page.map(revision_from_item)

    async def deleted_of(
        self, owner_id: str, first: int, after: str | None
    ) -> Page[RevisionRecord]:
        """The last revision of each deleted object of the owner, newest delete first."""
        page = await self.db.query_page(
            TABLE,
            KeyCondition("deleted_owner", owner_id),
            index="by_deleted_owner",
            first=first,
            after=after,
            forward=False,
            flt=_not_expired(),
        )
        return page.map(revision_from_item)


def _not_expired() -> Filter:
    return Filter(
        "attribute_not_exists(#exp) OR #exp > :now",
        {"#exp": "expires_at"},
        {":now": int(utcnow().timestamp())},
    )
