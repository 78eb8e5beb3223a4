"""Dashboards, layouts, filters, shares and saved filter views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from tilegraph.context import Info
from tilegraph.domain.dashboards import (
    DashboardRecord,
    FilterViewRecord,
    Layout,
    ShareRecord,
    new_filter_id,
)
from tilegraph.domain.dashboards import (
    FilterDefinition as FilterDefinitionRecord,
)
from tilegraph.domain.dashboards import (
    LayoutItem as LayoutItemRecord,
)
from tilegraph.domain.errors import NotFound
from tilegraph.domain.permissions import PermissionLevel as DomainPermissionLevel
from tilegraph.schema.access import requires_permission
from tilegraph.schema.enums import FilterType, PermissionLevel, ShareTargetType
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.cards import Card, CardExecution, ColumnFilterInput
from tilegraph.schema.types.datasets import Dataset
from tilegraph.schema.types.users import Group, User, load_owner, load_user
from tilegraph.schema.values import given, page_size


async def _visible_cards(info: Info, record: DashboardRecord) -> list[Any]:
    ctx = info.context
    principal = ctx.principal
    return await ctx.services.dashboards.visible_cards(principal, record, ctx.access)


@strawberry.type
class LayoutItem:
    card: Card
    x: int
    y: int
    w: int
    h: int


@strawberry.type
class DashboardLayout:
    columns: int
    row_height: int
    items: list[LayoutItem]


@strawberry.type
class FilterDefinition:
    id: strawberry.ID
    type: FilterType
    column: str
    label: str
    multi_select: bool
    options: list[str] | None
    dashboard_id: strawberry.Private[str]

    @classmethod
    def from_record(cls, record: FilterDefinitionRecord, dashboard_id: str) -> FilterDefinition:
        return cls(
            id=strawberry.ID(record.id),
            type=record.type,
            column=record.column,
            label=record.label,
            multi_select=record.multi_select,
            options=list(record.options) if record.options is not None else None,
            dashboard_id=dashboard_id,
        )

    @field(
        description="Distinct values of the filter's column over the datasets of the cards "
        "the dashboard lends the caller, for the filter's options. VIEWER or more."
    )
    async def values(
        self, info: Info, search: str | None = strawberry.UNSET, limit: int | None = 100
    ) -> list[str]:
        ctx = info.context
        ctx.spend_data_read()
        return await ctx.services.dashboards.filter_values(
            ctx.principal,
            ctx.access,
            self.dashboard_id,
            self.column,
            search=given(search),
            limit=page_size(limit, 100),
        )


@strawberry.type
class ReferencedDataset:
    dataset: Dataset
    used_by_cards: list[Card]


@strawberry.type
class Dashboard(Node):
    name: str
    description: str | None
    version: int = strawberry.field(
        description="Optimistic-locking counter; see UpdateDashboardInput.expectedVersion."
    )
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[DashboardRecord]

    @classmethod
    def from_record(cls, record: DashboardRecord) -> Dashboard:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            description=record.description,
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    @strawberry.field
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)

    @strawberry.field
    async def layout(self, info: Info) -> DashboardLayout:
        layout = self.record.layout
        visible = {c.id: Card.from_record(c) for c in await _visible_cards(info, self.record)}
        items = [
            LayoutItem(card=visible[i.card_id], x=i.x, y=i.y, w=i.w, h=i.h)
            for i in layout.items
            if i.card_id in visible
        ]
        return DashboardLayout(columns=layout.columns, row_height=layout.row_height, items=items)

    @strawberry.field
    def filters(self) -> list[FilterDefinition]:
        return [FilterDefinition.from_record(f, self.record.id) for f in self.record.filters]

    @strawberry.field
    async def default_filter_view(self, info: Info) -> FilterView | None:
        ctx = info.context
        principal = ctx.principal
        view = await ctx.services.filter_views.default(principal, self.record, ctx.access)
        return FilterView.from_record(view) if view else None

    @field(description="The caller's own level on this dashboard.")
    async def my_permission(self, info: Info) -> PermissionLevel:
        principal = info.context.principal
        level = await info.context.access.level_on(principal.user_id, self.record)
        if level is None:
            raise NotFound("No such dashboard")
        return level

    @strawberry.field
    async def card_count(self, info: Info) -> int:
        return len(await _visible_cards(info, self.record))

    @strawberry.field
    async def cards(self, info: Info) -> list[Card]:
        return [Card.from_record(c) for c in await _visible_cards(info, self.record)]

    @strawberry.field
    async def referenced_datasets(self, info: Info) -> list[ReferencedDataset]:
        cards = await _visible_cards(info, self.record)
        dataset_ids = list(dict.fromkeys(d for c in cards for d in c.dataset_ids))
        datasets = await info.context.loaders.datasets.load_many(dataset_ids)
        return [
            ReferencedDataset(
                dataset=Dataset.from_record(dataset),
                used_by_cards=[Card.from_record(c) for c in cards if dataset.id in c.dataset_ids],
            )
            for dataset in datasets
            if dataset is not None
        ]

    @field(extensions=requires_permission(DomainPermissionLevel.OWNER))
    async def shares(self, info: Info) -> list[DashboardShare]:
        shares = await info.context.loaders.shares_of_dashboard.load(self.record.id)
        return [DashboardShare.from_record(s) for s in sorted(shares, key=lambda s: s.created_at)]

    @field(description="The caller's own views plus the shared ones.")
    async def filter_views(self, info: Info) -> list[FilterView]:
        ctx = info.context
        principal = ctx.principal
        views = await ctx.services.filter_views.visible(principal, self.record.id, ctx.access)
        return [FilterView.from_record(v) for v in sorted(views, key=lambda v: v.created_at)]


async def _load_dashboard(info: Info, dashboard_id: str) -> Dashboard:
    record = await info.context.loaders.dashboards.load(dashboard_id)
    if record is None:
        raise NotFound("The dashboard was deleted")
    return Dashboard.from_record(record)


@strawberry.type
class DashboardShare(Node):
    target_type: ShareTargetType
    permission: PermissionLevel
    created_at: datetime
    record: strawberry.Private[ShareRecord]

    @classmethod
    def from_record(cls, record: ShareRecord) -> DashboardShare:
        return cls(
            id=strawberry.ID(record.id),
            target_type=record.target_type,
            permission=record.permission,
            created_at=record.created_at,
            record=record,
        )

    @strawberry.field
    async def dashboard(self, info: Info) -> Dashboard:
        return await _load_dashboard(info, self.record.dashboard_id)

    @field(description="Set when targetType is USER.")
    async def user(self, info: Info) -> User | None:
        if self.record.target_type.value != "USER":
            return None
        return await load_user(info, self.record.target_id)

    @field(description="Set when targetType is GROUP.")
    async def group(self, info: Info) -> Group | None:
        if self.record.target_type.value != "GROUP":
            return None
        return Group.maybe(await info.context.loaders.groups.load(self.record.target_id))

    @strawberry.field
    async def shared_by(self, info: Info) -> User:
        return await load_owner(info, self.record.shared_by)


@strawberry.type
class FilterView(Node):
    name: str
    filter_state: JSON = strawberry.field(
        description="Keyed by FilterDefinition.id: a string, a list of strings, or {start, end}."
    )
    is_shared: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[FilterViewRecord]

    @classmethod
    def from_record(cls, record: FilterViewRecord) -> FilterView:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            filter_state=JSON(record.filter_state),
            is_shared=record.is_shared,
            is_default=record.is_default,
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    @strawberry.field
    async def dashboard(self, info: Info) -> Dashboard:
        return await _load_dashboard(info, self.record.dashboard_id)

    @strawberry.field
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)


# ---------------------------------------------------------------- inputs and payloads


@strawberry.input
class LayoutItemInput:
    card_id: strawberry.ID
    x: int
    y: int
    w: int
    h: int


@strawberry.input
class DashboardLayoutInput:
    columns: int = 12
    row_height: int = 100
    items: list[LayoutItemInput]

    def to_layout(self) -> Layout:
        return Layout(
            self.columns,
            self.row_height,
            tuple(LayoutItemRecord(str(i.card_id), i.x, i.y, i.w, i.h) for i in self.items),
        )


@strawberry.input
class FilterDefinitionInput:
    id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Generated when omitted."
    )
    type: FilterType
    column: str
    label: str
    multi_select: bool = False
    options: list[str] | None = strawberry.UNSET

    def to_record(self) -> FilterDefinitionRecord:
        options = given(self.options)
        return FilterDefinitionRecord(
            id=str(given(self.id) or new_filter_id()),
            type=self.type,
            column=self.column,
            label=self.label,
            multi_select=self.multi_select,
            options=tuple(options) if options is not None else None,
        )


def filter_records(items: Any) -> list[FilterDefinitionRecord] | None:
    given_items = given(items)
    return [i.to_record() for i in given_items] if given_items is not None else None


@strawberry.input
class CreateDashboardInput:
    name: str
    description: str | None = strawberry.UNSET
    layout: DashboardLayoutInput | None = strawberry.UNSET
    filters: list[FilterDefinitionInput] | None = strawberry.UNSET


@strawberry.input
class UpdateDashboardInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    layout: DashboardLayoutInput | None = strawberry.UNSET
    filters: list[FilterDefinitionInput] | None = strawberry.UNSET
    default_filter_view_id: strawberry.ID | None = strawberry.UNSET
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="When given and not equal to the stored version, the update fails with "
        "CONFLICT.",
    )


@strawberry.input
class CloneDashboardInput:
    id: strawberry.ID
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="Defaults to the source name + ' (Copy)'."
    )


@strawberry.type
class DashboardPayload:
    dashboard: Dashboard


@strawberry.input
class ShareDashboardInput:
    dashboard_id: strawberry.ID
    target_type: ShareTargetType
    target_id: strawberry.ID
    permission: PermissionLevel


@strawberry.input
class UpdateDashboardShareInput:
    id: strawberry.ID
    permission: PermissionLevel


@strawberry.type
class DashboardSharePayload:
    share: DashboardShare


@strawberry.input
class CreateFilterViewInput:
    dashboard_id: strawberry.ID
    name: str
    filter_state: JSON
    is_shared: bool = False
    is_default: bool = False


@strawberry.input
class UpdateFilterViewInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    filter_state: JSON | None = strawberry.UNSET
    is_shared: bool | None = strawberry.UNSET
    is_default: bool | None = strawberry.UNSET


@strawberry.type
class FilterViewPayload:
    filter_view: FilterView


@strawberry.input
class ExecuteDashboardInput:
    id: strawberry.ID
    filters: list[ColumnFilterInput] | None = strawberry.UNSET
    use_cache: bool = True


@strawberry.type
class DashboardExecutionPayload:
    executions: list[CardExecution] = strawberry.field(
        description="One execution per code card on the dashboard, in layout order."
    )
