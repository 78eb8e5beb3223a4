"""Saved filter views of a dashboard: private to their owner or shared with everyone who
sees the dashboard (sharing one needs EDITOR), with at most one default per owner."""

from __future__ import annotations

from typing import Any

from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.dashboards import DashboardRecord, FilterViewRecord, check_filter_state
from tilegraph.domain.errors import Conflict, Forbidden, NotFound
from tilegraph.domain.ids import new_id
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import check_name
from tilegraph.services.access import DashboardAccess
from tilegraph.store.dashboards import DashboardRepository
from tilegraph.store.dynamo import Stale

VIEWER, EDITOR = PermissionLevel.VIEWER, PermissionLevel.EDITOR


class FilterViewService:
    def __init__(self, dashboards: DashboardRepository) -> None:
        self.dashboards = dashboards

    async def visible(
        self, principal: Principal, dashboard_id: str, access: DashboardAccess
    ) -> list[FilterViewRecord]:
        views = await access.loaders.views_of_dashboard.load(dashboard_id)
        return [v for v in views if v.owner_id == principal.user_id or v.is_shared]

    async def default(
        self, principal: Principal, dashboard: DashboardRecord, access: DashboardAccess
    ) -> FilterViewRecord | None:
        """The caller's own default view, else the dashboard's shared default."""
        views = await self.visible(principal, dashboard.id, access)
        own = [v for v in views if v.owner_id == principal.user_id and v.is_default]
        if own:
            return own[0]
        return next((v for v in views if v.id == dashboard.default_filter_view_id), None)

    async def get(
        self, principal: Principal, access: DashboardAccess, view_id: str
    ) -> FilterViewRecord:
        view = await access.loaders.filter_views.load(view_id)
        if view is None or not await self.may_see(principal, access, view):
            raise NotFound("No such filter view", field="id")
        return view

    @staticmethod
    async def may_see(
        principal: Principal, access: DashboardAccess, view: FilterViewRecord
    ) -> bool:
        """Anyone with access to the dashboard sees its shared views; only the owner of a
        view sees it unshared."""
        if view.owner_id != principal.user_id and not view.is_shared:
            return False
        return await access.level(principal.user_id, view.dashboard_id) is not None

    async def create(
        self,
        principal: Principal,
        access: DashboardAccess,
        *,
        dashboard_id: str,
        name: str,
        filter_state: Any,
        is_shared: bool,
        is_default: bool,
    ) -> FilterViewRecord:
        dashboard = await access.checked(dashboard_id)
        if is_shared:
            await access.require(principal, dashboard_id, EDITOR)
        now = utcnow()
        view = FilterViewRecord(
            id=new_id("fv"),
            dashboard_id=dashboard.id,
            owner_id=principal.user_id,
            name=check_name(name),
            filter_state=check_filter_state(filter_state, dashboard.filters),
            is_shared=is_shared,
            is_default=is_default,
            created_at=now,
            updated_at=now,
        )
        if is_default:
            await self._clear_defaults(principal, dashboard.id, keep=None)
        await self.dashboards.add_view(view)
        return view

    async def _owned(
        self, principal: Principal, access: DashboardAccess, view_id: str
    ) -> FilterViewRecord:
        view = await self.get(principal, access, view_id)
        if view.owner_id != principal.user_id:
            raise Forbidden("Only the view's owner can change it")
        return view

    async def update(
        self,
        principal: Principal,
        access: DashboardAccess,
        view_id: str,
        *,
        name: str | None,
        filter_state: Any | None,
        is_shared: bool | None,
        is_default: bool | None,
    ) -> FilterViewRecord:
        view = await self._owned(principal, access, view_id)
        dashboard = await access.require(principal, view.dashboard_id, VIEWER)
        changes: dict[str, Any] = {"updated_at": to_iso(utcnow())}
        if name is not None:
            changes["name"] = check_name(name)
        if filter_state is not None:
            changes["filter_state"] = check_filter_state(filter_state, dashboard.filters)
        if is_shared is not None and is_shared != view.is_shared:
            await access.require(principal, view.dashboard_id, EDITOR)
            changes["is_shared"] = is_shared
        if is_default is not None:
            changes["is_default"] = is_default
            if is_default:
                await self._clear_defaults(principal, view.dashboard_id, keep=view.id)
        try:
            return await self.dashboards.update_view(view, changes)
        except Stale as exc:
            raise Conflict("The view changed meanwhile; try again") from exc

    async def delete(self, principal: Principal, access: DashboardAccess, view_id: str) -> str:
        view = await self._owned(principal, access, view_id)
        await self.dashboards.delete_view(view.id)
        return view.id

    async def _clear_defaults(
        self, principal: Principal, dashboard_id: str, *, keep: str | None
    ) -> None:
        """At most one default view per dashboard per owner."""
        for view in await self.dashboards.views_of(dashboard_id):
            if view.owner_id == principal.user_id and view.is_default and view.id != keep:
                try:
                    await self.dashboards.update_view(view, {"is_default": False})
                except Stale:
                    continue
