"""Reading and restoring revisions. Who may read an object's history is who may change it:
a card's or transform's owner, a dashboard's EDITORs and OWNERs (a deleted object's owner
alone, since its shares went with it). Anyone else is told the revision does not exist."""

from __future__ import annotations

from dataclasses import dataclass

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.cards import CardRecord
from tilegraph.domain.dashboards import DashboardRecord
from tilegraph.domain.errors import Conflict, Forbidden, NotFound
from tilegraph.domain.paging import check_first
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.revisions import RevisionObjectType, RevisionRecord
from tilegraph.domain.transforms import TransformRecord
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import check_expected_version
from tilegraph.services.access import DashboardAccess
from tilegraph.services.cards import CardService
from tilegraph.services.dashboards import DashboardService
from tilegraph.services.transforms import TransformService
from tilegraph.store.pagination import Page
from tilegraph.store.revisions import RevisionRepository

NO_SUCH_REVISION = "No such revision"


@dataclass(frozen=True)
class Restored:
    """The revision a restore made, and the object as it is now."""

    revision: RevisionRecord
    record: CardRecord | DashboardRecord | TransformRecord


class RevisionService:
    def __init__(
        self,
        revisions: RevisionRepository,
        cards: CardService,
        dashboards: DashboardService,
        transforms: TransformService,
        audit: AuditRecorder,
    ) -> None:
        self.revisions = revisions
        self.cards = cards
        self.dashboards = dashboards
        self.transforms = transforms
        self.audit = audit

    async def level(
        self, principal: Principal, access: DashboardAccess, revision: RevisionRecord
    ) -> PermissionLevel | None:
        """What the caller holds on the revision's object: OWNER, EDITOR, VIEWER or nothing."""
        if revision.object_type is RevisionObjectType.DASHBOARD:
            dashboard = await access.loaders.dashboards.load(revision.object_id)
            if dashboard is not None:
                return await access.level_on(principal.user_id, dashboard)
        return PermissionLevel.OWNER if revision.owner_id == principal.user_id else None

    async def may_read(
        self, principal: Principal, access: DashboardAccess, revision: RevisionRecord
    ) -> bool:
        level = await self.level(principal, access, revision)
        return level is not None and level.allows(PermissionLevel.EDITOR)

    async def of_object(
        self, object_id: str, first: int, after: str | None
    ) -> Page[RevisionRecord]:
        """Newest first; the caller's right to read them is checked by the field."""
        return await self.revisions.of_object(object_id, check_first(first), after)

    async def of_owned(
        self, principal: Principal, owner_id: str, object_id: str, first: int, after: str | None
    ) -> Page[RevisionRecord]:
        """A card's or transform's history: its owner's alone (a card lent through a
        dashboard lends its output, never its code)."""
        if owner_id != principal.user_id:
            raise Forbidden("Only the owner reads its revisions")
        return await self.of_object(object_id, first, after)

    async def deleted(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[RevisionRecord]:
        return await self.revisions.deleted_of(principal.user_id, check_first(first), after)

    async def restore(
        self,
        principal: Principal,
        access: DashboardAccess,
        revision_id: str,
        expected_version: int | None,
        request_id: str | None,
    ) -> Restored:
        revision = await self.revisions.get(revision_id)
        level = await self.level(principal, access, revision) if revision else None
        if revision is None or level is None:
            raise NotFound(NO_SUCH_REVISION, field="id")
        if not level.allows(PermissionLevel.EDITOR):
            raise Forbidden(f"Restoring needs EDITOR on the dashboard; you are {level.value}")
        latest = await self.revisions.latest(revision.object_id) or revision
        record: CardRecord | DashboardRecord | TransformRecord
        if revision.object_type is RevisionObjectType.DASHBOARD:
            current = await access.loaders.dashboards.load(revision.object_id)
            check_expected_version(
                expected_version, current.version if current else latest.number, "dashboard"
            )
            record = await self.dashboards.restore(principal, access, revision, latest)
        elif revision.object_type is RevisionObjectType.CARD:
            check_expected_version(expected_version, latest.number, "card")
            record = await self.cards.restore(principal, revision, latest)
        else:
            check_expected_version(expected_version, latest.number, "transform")
            record = await self.transforms.restore(principal, revision, latest)
        made = await self.revisions.latest(revision.object_id)
        if made is None or made.number <= latest.number:
            raise Conflict("The object changed meanwhile; try again")
        await self.audit.record(
            AuditEventType.REVISION_RESTORED,
            user_id=principal.user_id,
            target_type=revision.object_type.value.lower(),
            target_id=revision.object_id,
            details={
                "objectType": revision.object_type.value,
                "restoredFrom": revision.number,
                "revision": made.number,
                "undeleted": latest.deleted,
            },
            request_id=request_id,
        )
        return Restored(made, record)
