"""Dashboards: CRUD, clone, shares, saved filter views, and running every card at once.
The level a caller needs is checked by the permission directive before these run; the
rules that depend on more than one level (sharing a view needs EDITOR …) live here."""

from __future__ import annotations

import asyncio
from typing import Any

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.cards import CardExecutionRecord, CardRecord, CardType
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.dashboards import (
    DashboardRecord,
    FilterDefinition,
    FilterViewRecord,
    Layout,
    ShareRecord,
    ShareTargetType,
    check_filter_state,
    check_filters,
    check_layout,
    share_id,
)
from tilegraph.domain.errors import BadUserInput, Conflict, Forbidden, NotFound, RateLimited
from tilegraph.domain.filters import ColumnFilter
from tilegraph.domain.ids import new_id
from tilegraph.domain.paging import check_first
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import check_name
from tilegraph.services.access import DashboardAccess
from tilegraph.services.cards import CardService
from tilegraph.store.dashboards import DashboardRepository
from tilegraph.store.dynamo import Stale
from tilegraph.store.groups import GroupRepository
from tilegraph.store.pagination import Page, decode_cursor, encode_cursor
from tilegraph.store.users import UserRepository

VIEWER, EDITOR, OWNER = PermissionLevel.VIEWER, PermissionLevel.EDITOR, PermissionLevel.OWNER


def _cursor(record: DashboardRecord) -> str:
    """The list is merged in memory, so a cursor is the position key of its last item,
    in the same encoding as the store's cursors."""
    return encode_cursor({"created_at": {"S": to_iso(record.created_at)}, "id": {"S": record.id}})


def _position(cursor: str) -> tuple[str, str]:
    key = decode_cursor(cursor)
    try:
        return str(key["created_at"]["S"]), str(key["id"]["S"])
    except KeyError as exc:
        raise BadUserInput("The cursor is not valid", field="after") from exc


class DashboardService:
    def __init__(
        self,
        dashboards: DashboardRepository,
        users: UserRepository,
        groups: GroupRepository,
        cards: CardService,
        audit: AuditRecorder,
        queue_limit: QueueLimit,
    ) -> None:
        self.dashboards = dashboards
        self.users = users
        self.groups = groups
        self.cards = cards
        self.audit = audit
        self.queue_limit = queue_limit

    # ------------------------------------------------------------------ reading

    async def list_page(
        self, principal: Principal, access: DashboardAccess, first: int, after: str | None
    ) -> Page[DashboardRecord]:
        """Owned, shared directly and shared through groups; each once, newest first."""
        check_first(first)
        owned = await self.dashboards.owned_by(principal.user_id)
        group_ids = await access.loaders.groups_of_user.load(principal.user_id)
        share_lists = await asyncio.gather(
            *(self.dashboards.shares_for_target(t) for t in [principal.user_id, *group_ids])
        )
        shared_ids = {s.dashboard_id for shares in share_lists for s in shares}
        shared_ids -= {d.id for d in owned}
        found = await self.dashboards.get_many(sorted(shared_ids))
        records = owned + list(found.values())
        records.sort(key=lambda d: (to_iso(d.created_at), d.id), reverse=True)
        start = 0
        if after:
            position = _position(after)
            start = next(
                (i + 1 for i, d in enumerate(records) if (to_iso(d.created_at), d.id) == position),
                len(records),
            )
        page = records[start : start + first]

        async def count() -> int:
            return len(records)

        return Page(
            page, [_cursor(d) for d in page], start + first < len(records), start > 0, count
        )

    async def visible_views(
        self, principal: Principal, dashboard_id: str, access: DashboardAccess
    ) -> list[FilterViewRecord]:
        views = await access.loaders.views_of_dashboard.load(dashboard_id)
        return [v for v in views if v.owner_id == principal.user_id or v.is_shared]

    async def visible_cards(
        self, principal: Principal, dashboard: DashboardRecord, access: DashboardAccess
    ) -> list[CardRecord]:
        """The layout's cards the caller may see, in layout order, each once."""
        records = await access.loaders.cards.load_many(dashboard.layout.card_ids)
        visible = []
        for card in records:
            if card is None:
                continue
            if card.owner_id == principal.user_id or await access.card_on_dashboard(
                principal, card, dashboard
            ):
                visible.append(card)
        return visible

    async def default_view(
        self, principal: Principal, dashboard: DashboardRecord, access: DashboardAccess
    ) -> FilterViewRecord | None:
        """The caller's own default view, else the dashboard's shared default."""
        views = await self.visible_views(principal, dashboard.id, access)
        own = [v for v in views if v.owner_id == principal.user_id and v.is_default]
        if own:
            return own[0]
        return next((v for v in views if v.id == dashboard.default_filter_view_id), None)

    # ------------------------------------------------------------------ changing

    async def _check_layout_cards(
        self, principal: Principal, layout: Layout, current: DashboardRecord | None
    ) -> None:
        """Cards must be the caller's own, or already on this dashboard."""
        allowed = set(current.layout.card_ids) if current else set()
        found = await self.cards.cards.get_many(layout.card_ids)
        for index, item in enumerate(layout.items):
            card = found.get(item.card_id)
            if card is None or (card.owner_id != principal.user_id and item.card_id not in allowed):
                raise BadUserInput(
                    f"No such card: {item.card_id}", field=f"layout.items[{index}].cardId"
                )

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        description: str | None,
        layout: Layout | None,
        filters: list[FilterDefinition] | None,
    ) -> DashboardRecord:
        layout = check_layout(layout or Layout())
        await self._check_layout_cards(principal, layout, None)
        now = utcnow()
        record = DashboardRecord(
            id=new_id("dash"),
            owner_id=principal.user_id,
            name=check_name(name),
            description=description,
            layout=layout,
            filters=check_filters(filters or []),
            created_at=now,
            updated_at=now,
        )
        await self.dashboards.create(record)
        return record

    async def update(
        self,
        principal: Principal,
        access: DashboardAccess,
        dashboard_id: str,
        *,
        name: str | None,
        description: str | None,
        layout: Layout | None,
        filters: list[FilterDefinition] | None,
        default_view_id: str | None,
        clear_default_view: bool,
        expected_version: int | None,
    ) -> DashboardRecord:
        dashboard = await access.checked(dashboard_id)
        if expected_version is not None and expected_version != dashboard.version:
            raise Conflict(
                "The dashboard was changed by someone else; reload it",
                field="expectedVersion",
                currentVersion=dashboard.version,
            )
        changes: dict[str, Any] = {"updated_at": to_iso(utcnow())}
        if name is not None:
            changes["name"] = check_name(name)
        if description is not None:
            changes["description"] = description
        if layout is not None:
            check_layout(layout)
            await self._check_layout_cards(principal, layout, dashboard)
            changes["layout"] = layout.to_item()
        if filters is not None:
            changes["filters"] = [f.to_item() for f in check_filters(filters)]
        if default_view_id is not None:
            view = (await self.dashboards.get_views([default_view_id])).get(default_view_id)
            if view is None or view.dashboard_id != dashboard.id or not view.is_shared:
                raise BadUserInput(
                    "The default view must be a shared view of this dashboard",
                    field="defaultFilterViewId",
                )
            changes["default_filter_view_id"] = default_view_id
        elif clear_default_view:
            changes["default_filter_view_id"] = None
        try:
            return await self.dashboards.update(
                dashboard, changes, expected_version or dashboard.version
            )
        except Stale as exc:
            raise Conflict(
                "The dashboard was changed by someone else; reload it", field="expectedVersion"
            ) from exc

    async def delete(self, principal: Principal, access: DashboardAccess, dashboard_id: str) -> str:
        dashboard = await access.checked(dashboard_id)
        await self.dashboards.delete(dashboard.id)
        return dashboard.id

    async def clone(
        self, principal: Principal, access: DashboardAccess, dashboard_id: str, name: str | None
    ) -> DashboardRecord:
        source = await access.checked(dashboard_id)
        now = utcnow()
        record = DashboardRecord(
            id=new_id("dash"),
            owner_id=principal.user_id,
            name=check_name(name) if name else check_name(f"{source.name} (Copy)"),
            description=source.description,
            layout=source.layout,
            filters=source.filters,
            created_at=now,
            updated_at=now,
        )
        await self.dashboards.create(record)
        return record

    # ------------------------------------------------------------------ shares

    async def share(
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

    async def _share(self, access: DashboardAccess, share_id_: str) -> ShareRecord:
        """The share; @requiresPermission(OWNER) has checked its dashboard already."""
        share = await access.loaders.shares.load(share_id_)
        if share is None:
            raise NotFound("No such share", field="id")
        return share

    async def update_share(
        self,
        principal: Principal,
        access: DashboardAccess,
        share_id_: str,
        permission: PermissionLevel,
        request_id: str | None,
    ) -> ShareRecord:
        share = await self._share(access, share_id_)
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

    async def remove_share(
        self, principal: Principal, access: DashboardAccess, share_id_: str, request_id: str | None
    ) -> str:
        share = await self._share(access, share_id_)
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

    # ------------------------------------------------------------------ filter views

    async def get_view(
        self, principal: Principal, access: DashboardAccess, view_id: str
    ) -> FilterViewRecord:
        view = await access.loaders.filter_views.load(view_id)
        if view is None:
            raise NotFound("No such filter view", field="id")
        level = await access.level(principal.user_id, view.dashboard_id)
        mine = view.owner_id == principal.user_id
        if level is None or not (mine or view.is_shared):
            raise NotFound("No such filter view", field="id")
        return view

    async def create_view(
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

    async def _owned_view(
        self, principal: Principal, access: DashboardAccess, view_id: str
    ) -> FilterViewRecord:
        view = await self.get_view(principal, access, view_id)
        if view.owner_id != principal.user_id:
            raise Forbidden("Only the view's owner can change it")
        return view

    async def update_view(
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
        view = await self._owned_view(principal, access, view_id)
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

    async def delete_view(self, principal: Principal, access: DashboardAccess, view_id: str) -> str:
        view = await self._owned_view(principal, access, view_id)
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

    # ------------------------------------------------------------------ running

    async def execute(
        self,
        principal: Principal,
        access: DashboardAccess,
        dashboard_id: str,
        *,
        filters: list[ColumnFilter],
        use_cache: bool,
    ) -> list[CardExecutionRecord]:
        """Every code card of the dashboard, started at once, in layout order."""
        dashboard = await access.checked(dashboard_id)
        cards = [
            c
            for c in await self.visible_cards(principal, dashboard, access)
            if c.type is CardType.CODE
        ]
        if not await self.queue_limit.admit(principal.user_id, f"dashboard:{dashboard.id}"):
            raise RateLimited("Too many card runs are waiting; wait for them to finish")
        try:
            return await self.cards.start_cards(
                principal,
                cards,
                dashboard_id=dashboard.id,
                filters=filters,
                params=None,
                use_cache=use_cache,
                batch=True,
            )
        finally:
            await self.queue_limit.release(principal.user_id, f"dashboard:{dashboard.id}")
