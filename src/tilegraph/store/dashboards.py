"""Dashboards, their shares and filter views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.dashboards import (
    DashboardRecord,
    FilterDefinition,
    FilterViewRecord,
    Layout,
    ShareRecord,
    ShareTargetType,
)
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.store.dynamo import ConditionFailed, Dynamo, Filter, KeyCondition, Stale

DASHBOARDS = "dashboards"
SHARES = "dashboard_shares"
VIEWS = "filter_views"


def dashboard_to_item(record: DashboardRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "owner_id": record.owner_id,
        "name": record.name,
        "description": record.description,
        "layout": record.layout.to_item(),
        "filters": [f.to_item() for f in record.filters],
        "default_filter_view_id": record.default_filter_view_id,
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
        "version": record.version,
        "workspace_key": record.workspace_key,
    }


def dashboard_from_item(item: dict[str, Any]) -> DashboardRecord:
    return DashboardRecord(
        id=item["id"],
        owner_id=item["owner_id"],
        name=item["name"],
        description=item.get("description"),
        layout=Layout.from_item(item.get("layout")),
        filters=tuple(FilterDefinition.from_item(f) for f in item.get("filters", [])),
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        default_filter_view_id=item.get("default_filter_view_id"),
        version=int(item.get("version", 1)),
        workspace_key=item.get("workspace_key"),
    )


def share_to_item(record: ShareRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "dashboard_id": record.dashboard_id,
        "target_type": record.target_type.value,
        "target_id": record.target_id,
        "permission": record.permission.value,
        "shared_by": record.shared_by,
        "created_at": to_iso(record.created_at),
        "version": record.version,
    }


def share_from_item(item: dict[str, Any]) -> ShareRecord:
    return ShareRecord(
        id=item["id"],
        dashboard_id=item["dashboard_id"],
        target_type=ShareTargetType(item["target_type"]),
        target_id=item["target_id"],
        permission=PermissionLevel(item["permission"]),
        shared_by=item["shared_by"],
        created_at=from_iso(item["created_at"]),
        version=int(item.get("version", 1)),
    )


def view_to_item(record: FilterViewRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "dashboard_id": record.dashboard_id,
        "owner_id": record.owner_id,
        "name": record.name,
        "filter_state": record.filter_state,
        "is_shared": record.is_shared,
        "is_default": record.is_default,
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
        "version": record.version,
    }


def view_from_item(item: dict[str, Any]) -> FilterViewRecord:
    return FilterViewRecord(
        id=item["id"],
        dashboard_id=item["dashboard_id"],
        owner_id=item["owner_id"],
        name=item["name"],
        filter_state=item.get("filter_state") or {},
        is_shared=bool(item.get("is_shared", False)),
        is_default=bool(item.get("is_default", False)),
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        version=int(item.get("version", 1)),
    )


class DashboardRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    # ---------------------------------------------------------------- dashboards

    async def create(self, record: DashboardRecord, also: Sequence[dict[str, Any]] = ()) -> None:
        """`also`: transaction steps written with it (its first revision)."""
        await self.db.put_new(DASHBOARDS, dashboard_to_item(record), also=also)

    async def get_many(self, ids: list[str]) -> dict[str, DashboardRecord]:
        wanted = [i for i in ids if i.startswith("dash_")]
        items = await self.db.batch_get(DASHBOARDS, [{"id": i} for i in wanted])
        return {item["id"]: dashboard_from_item(item) for item in items}

    async def get(self, dashboard_id: str) -> DashboardRecord | None:
        return (await self.get_many([dashboard_id])).get(dashboard_id)

    async def owned_by(self, owner_id: str) -> list[DashboardRecord]:
        items = await self.db.query_all(
            DASHBOARDS, KeyCondition("owner_id", owner_id), index="by_owner", forward=False
        )
        return [dashboard_from_item(i) for i in items]

    async def with_workspace_key(self, owner_id: str, key: str) -> list[DashboardRecord]:
        items = await self.db.query_all(
            DASHBOARDS,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            flt=Filter("#wk = :wk", {"#wk": "workspace_key"}, {":wk": key}),
        )
        return [dashboard_from_item(i) for i in items]

    async def update(
        self,
        record: DashboardRecord,
        changes: dict[str, Any],
        expected_version: int,
        also: Sequence[dict[str, Any]] = (),
    ) -> DashboardRecord:
        """Conditional on `expected_version`; `also`: steps of the same transaction."""
        try:
            item = await self.db.update(
                DASHBOARDS,
                {"id": record.id},
                set_values=changes,
                expected_version=expected_version,
                also=also,
            )
        except ConditionFailed as exc:
            raise Stale(record.id) from exc
        return dashboard_from_item(item)

    @staticmethod
    def applied(record: DashboardRecord, changes: dict[str, Any]) -> DashboardRecord:
        """The dashboard as `update` with these changes will store it."""
        item = {**dashboard_to_item(record), **changes, "version": record.version + 1}
        return dashboard_from_item(item)

    async def delete(self, dashboard_id: str, also: Sequence[dict[str, Any]] = ()) -> None:
        """Its shares and views go first; `also`: steps of the dashboard's own delete."""
        shares = await self.shares_of(dashboard_id)
        views = await self.views_of(dashboard_id)
        await self.db.batch_delete(SHARES, [{"id": s.id} for s in shares])
        await self.db.batch_delete(VIEWS, [{"id": v.id} for v in views])
        await self.db.delete(DASHBOARDS, {"id": dashboard_id}, also=also)

    # ---------------------------------------------------------------- shares

    async def add_share(self, record: ShareRecord) -> None:
        try:
            await self.db.put_new(SHARES, share_to_item(record))
        except ConditionFailed as exc:
            raise Stale(record.id) from exc

    async def get_shares(self, ids: list[str]) -> dict[str, ShareRecord]:
        wanted = [i for i in ids if i.startswith("share_")]
        items = await self.db.batch_get(SHARES, [{"id": i} for i in wanted])
        return {item["id"]: share_from_item(item) for item in items}

    async def shares_of(self, dashboard_id: str) -> list[ShareRecord]:
        items = await self.db.query_all(
            SHARES, KeyCondition("dashboard_id", dashboard_id), index="by_dashboard"
        )
        return [share_from_item(i) for i in items]

    async def shares_for_target(self, target_id: str) -> list[ShareRecord]:
        items = await self.db.query_all(
            SHARES, KeyCondition("target_id", target_id), index="by_target"
        )
        return [share_from_item(i) for i in items]

    async def set_share_permission(
        self, share: ShareRecord, permission: PermissionLevel
    ) -> ShareRecord:
        try:
            item = await self.db.update(
                SHARES,
                {"id": share.id},
                set_values={"permission": permission.value},
                expected_version=share.version,
            )
        except ConditionFailed as exc:
            raise Stale(share.id) from exc
        return share_from_item(item)

    async def remove_share(self, share_id: str) -> ShareRecord | None:
        old = await self.db.delete(SHARES, {"id": share_id})
        return share_from_item(old) if old else None

    async def remove_shares_for_target(self, target_id: str) -> None:
        shares = await self.shares_for_target(target_id)
        await self.db.batch_delete(SHARES, [{"id": s.id} for s in shares])

    # ---------------------------------------------------------------- filter views

    async def add_view(self, record: FilterViewRecord) -> None:
        await self.db.put_new(VIEWS, view_to_item(record))

    async def get_views(self, ids: list[str]) -> dict[str, FilterViewRecord]:
        wanted = [i for i in ids if i.startswith("fv_")]
        items = await self.db.batch_get(VIEWS, [{"id": i} for i in wanted])
        return {item["id"]: view_from_item(item) for item in items}

    async def views_of(self, dashboard_id: str) -> list[FilterViewRecord]:
        items = await self.db.query_all(
            VIEWS, KeyCondition("dashboard_id", dashboard_id), index="by_dashboard"
        )
        return [view_from_item(i) for i in items]

    async def update_view(
        self, view: FilterViewRecord, changes: dict[str, Any]
    ) -> FilterViewRecord:
        try:
            item = await self.db.update(
                VIEWS, {"id": view.id}, set_values=changes, expected_version=view.version
            )
        except ConditionFailed as exc:
            raise Stale(view.id) from exc
        return view_from_item(item)

    async def delete_view(self, view_id: str) -> None:
        await self.db.delete(VIEWS, {"id": view_id})
