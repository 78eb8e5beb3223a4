"""Sharing a dashboard with users and groups: adding, changing and removing shares, each
audited. The caller's OWNER level is checked by the permission directive before these run."""

from __future__ import annotations

from typing import Any

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.clock import utcnow
from tilegraph.domain.dashboards import ShareRecord, ShareTargetType, share_id
from tilegraph.domain.errors import BadUserInput, Conflict, NotFound
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.users import Principal
from tilegraph.services.access import DashboardAccess
from tilegraph.store.dashboards import DashboardRepository
from tilegraph.store.dynamo import Stale
from tilegraph.store.groups import GroupRepository
from tilegraph.store.users import UserRepository


class ShareService:
    def __init__(
        self,
        dashboards: DashboardRepository,
        users: UserRepository,
        groups: GroupRepository,
        audit: AuditRecorder,
    ) -> None:
        self.dashboards = dashboards
        self.users = users
        self.groups = groups
        self.audit = audit

    async def add(
        self,
        principal: Principal,
        access: DashboardAccess,
        *,
        dashboard_id: str,
        target_type: ShareTargetType,
        target_id: str,
        permission: PermissionLevel,
        request_id: str | None,
    ) -> ShareRecord:
        dashboard = await access.checked(dashboard_id)
        if target_type is ShareTargetType.USER:
            if await self.users.get(target_id) is None:
                raise BadUserInput("No such user", field="targetId")
            if target_id == dashboard.owner_id:
                raise BadUserInput(
                    "The owner already holds every right on the dashboard", field="targetId"
                )
        elif await self.groups.get(target_id) is None:
            raise BadUserInput("No such group", field="targetId")
        record = ShareRecord(
            id=share_id(dashboard.id, target_id),
            dashboard_id=dashboard.id,
            target_type=target_type,
            target_id=target_id,
            permission=permission,
            shared_by=principal.user_id,
            created_at=utcnow(),
        )
        try:
            await self.dashboards.add_share(record)
        except Stale as exc:
            raise Conflict(
                "The dashboard is already shared with this target; update that share instead",
                field="targetId",
            ) from exc
        await self._audit(AuditEventType.DASHBOARD_SHARE_ADDED, principal, record, request_id)
        return record

    async def _get(self, access: DashboardAccess, share_id_: str) -> ShareRecord:
        """The share; @requiresPermission(OWNER) has checked its dashboard already."""
        share = await access.loaders.shares.load(share_id_)
        if share is None:
            raise NotFound("No such share", field="id")
        return share

    async def update(
        self,
        principal: Principal,
        access: DashboardAccess,
        share_id_: str,
        permission: PermissionLevel,
        request_id: str | None,
    ) -> ShareRecord:
        share = await self._get(access, share_id_)
        try:
            updated = await self.dashboards.set_share_permission(share, permission)
        except Stale as exc:
            raise Conflict("The share changed meanwhile; try again") from exc
        await self._audit(
            AuditEventType.DASHBOARD_SHARE_UPDATED,
            principal,
            updated,
            request_id,
            previous=share.permission,
        )
        return updated

    async def remove(
        self, principal: Principal, access: DashboardAccess, share_id_: str, request_id: str | None
    ) -> str:
        share = await self._get(access, share_id_)
        await self.dashboards.remove_share(share.id)
        await self._audit(AuditEventType.DASHBOARD_SHARE_REMOVED, principal, share, request_id)
        return share.id

    async def _audit(
        self,
        event: AuditEventType,
        principal: Principal,
        share: ShareRecord,
        request_id: str | None,
        previous: PermissionLevel | None = None,
    ) -> None:
        details: dict[str, Any] = {
            "dashboardId": share.dashboard_id,
            "targetType": share.target_type.value,
            "targetId": share.target_id,
            "permission": share.permission.value,
        }
        if previous is not None:
            details["previousPermission"] = previous.value
        await self.audit.record(
            event,
            user_id=principal.user_id,
            target_type="dashboard",
            target_id=share.dashboard_id,
            details=details,
            request_id=request_id,
        )
