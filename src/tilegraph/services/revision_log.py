"""What the services that save cards, dashboards and transforms add to each write: the
revision step of the same transaction (so history never misses or invents a change), and
what a delete and a restore do to a deleted object's history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tilegraph.domain.clock import utcnow
from tilegraph.domain.ids import new_id
from tilegraph.domain.revisions import (
    RevisionObjectType,
    RevisionRecord,
    expiry,
    field_changes,
)
from tilegraph.settings import Settings
from tilegraph.store.revisions import RevisionRepository


class RevisionLog:
    def __init__(self, revisions: RevisionRepository, settings: Settings) -> None:
        self.revisions = revisions
        self.settings = settings

    def first(
        self,
        object_type: RevisionObjectType,
        object_id: str,
        owner_id: str,
        snapshot: dict[str, Any],
        author_id: str,
    ) -> dict[str, Any]:
        """The step that records an object's creation as revision 1."""
        return self.revisions.append_step(
            self.following(None, object_type, object_id, owner_id, snapshot, author_id)
        )

    def following(
        self,
        latest: RevisionRecord | None,
        object_type: RevisionObjectType,
        object_id: str,
        owner_id: str,
        snapshot: dict[str, Any],
        author_id: str,
        *,
        restored_from: int | None = None,
    ) -> RevisionRecord:
        """The revision after `latest` (an object saved before history was kept starts at
        1), with what changed against it."""
        return RevisionRecord(
            id=new_id("rev"),
            object_type=object_type,
            object_id=object_id,
            owner_id=owner_id,
            number=latest.number + 1 if latest else 1,
            snapshot=snapshot,
            changes=field_changes(latest.snapshot if latest else None, snapshot),
            author_id=author_id,
            created_at=utcnow(),
            restored_from=restored_from,
        )

    async def saving(
        self,
        object_type: RevisionObjectType,
        object_id: str,
        owner_id: str,
        snapshot: dict[str, Any],
        author_id: str,
        *,
        restored_from: int | None = None,
    ) -> list[dict[str, Any]]:
        """The steps an update adds: the next revision, when the saved state changes (a
        restore always makes one)."""
        latest = await self.revisions.latest(object_id)
        if restored_from is None and latest is not None and latest.snapshot == snapshot:
            return []
        revision = self.following(
            latest,
            object_type,
            object_id,
            owner_id,
            snapshot,
            author_id,
            restored_from=restored_from,
        )
        return [self.revisions.append_step(revision)]

    async def recreating(
        self,
        latest: RevisionRecord,
        snapshot: dict[str, Any],
        author_id: str,
        *,
        restored_from: int,
    ) -> list[dict[str, Any]]:
        """The steps that bring a deleted object back: its next revision, and its last one
        taken off the deleted list. Its history stops expiring first, so a restore that
        then fails only keeps history longer."""
        await self.revisions.set_expiry(latest.object_id, None)
        revision = self.following(
            latest,
            latest.object_type,
            latest.object_id,
            latest.owner_id,
            snapshot,
            author_id,
            restored_from=restored_from,
        )
        return [self.revisions.append_step(revision), self.revisions.undeleted_step(latest)]

    async def latest(self, object_id: str) -> RevisionRecord | None:
        return await self.revisions.latest(object_id)

    def expires(self, deleted_at: datetime) -> datetime:
        return expiry(deleted_at, self.settings.deleted_retention_days)

    async def deleting(self, object_id: str) -> tuple[list[dict[str, Any]], datetime]:
        """The steps a delete adds (its last revision marked deleted), and when the
        object's history expires."""
        now = utcnow()
        expires = self.expires(now)
        latest = await self.revisions.latest(object_id)
        steps = [self.revisions.deleted_step(latest, now, expires)] if latest else []
        return steps, expires

    async def deleted(self, object_id: str, expires: datetime) -> None:
        """After a delete's transaction: the rest of its history expires with it (should
        this fail, history is only kept longer)."""
        await self.revisions.set_expiry(object_id, expires)
