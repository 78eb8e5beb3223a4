"""Dashboards, layouts, filters, shares and saved filter views."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

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
from tilegraph.schema.connections import After, Connection, First
from tilegraph.schema.enums import FilterType, PermissionLevel, ShareTargetType
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.cards import (
    RUN_FILTERS,
    USE_CACHE,
    Card,
    CardExecution,
    ColumnFilterInput,
)
from tilegraph.schema.types.common import WORKSPACE_KEY, WORKSPACE_KEY_FIELD
from tilegraph.schema.types.datasets import VALUE_LIMIT, VALUE_SEARCH, Dataset
from tilegraph.schema.types.revisions import Revision, revisions_of
from tilegraph.schema.types.users import Group, User, load_owner, load_user
from tilegraph.schema.values import given, page_size

if TYPE_CHECKING:
    from tilegraph.schema.types.deliveries import Delivery

DeliveryType = Annotated["Delivery", strawberry.lazy("tilegraph.schema.types.deliveries")]

DASHBOARD_NAME = "1 to 200 characters."
DASHBOARD_DESCRIPTION = "Free text about the dashboard, up to 10,000 characters."
LAYOUT_INPUT = (
    "Where the cards sit: the caller's own cards, or cards already on this dashboard; at most 200."
)
FILTERS_INPUT = "The page filters, at most 50, with unique ids."
FILTER_STATE = "Keyed by FilterDefinition.id: a string, a list of strings, or {start, end}."
VIEW_NAME = "1 to 200 characters."
VIEW_SHARED = "Shared with everyone who sees the dashboard; sharing a view needs EDITOR."
VIEW_DEFAULT = (
    "Opens the dashboard with this view for its owner; setting it clears the owner's previous "
    "default on the dashboard."
)


async def _visible_cards(info: Info, record: DashboardRecord) -> list[Any]:
    ctx = info.context
    principal = ctx.principal
    return await ctx.services.dashboards.visible_cards(principal, record, ctx.access)


@strawberry.type(description="Where one card sits on the dashboard's grid.")
class LayoutItem:
    card: Card = strawberry.field(description="The card shown here.")
    x: int = strawberry.field(description="Column of the card's left edge, from 0.")
    y: int = strawberry.field(description="Row of the card's top edge, from 0.")
    w: int = strawberry.field(description="Width, in grid columns.")
    h: int = strawberry.field(description="Height, in grid rows.")


@strawberry.type(description="A dashboard's grid and the cards on it.")
class DashboardLayout:
    columns: int = strawberry.field(description="How many columns the grid has.")
    row_height: int = strawberry.field(description="The height of one grid row, in pixels.")
    items: list[LayoutItem] = strawberry.field(
        description="The cards the caller may see, in layout order."
    )


@strawberry.type(description="A page filter of a dashboard, applied to every card under it.")
class FilterDefinition:
    id: strawberry.ID = strawberry.field(
        description="Unique within the dashboard; filter views key their state by it."
    )
    type: FilterType = strawberry.field(description="How the filter narrows the rows.")
    column: str = strawberry.field(description="The column it filters, in every card's datasets.")
    label: str = strawberry.field(description="What the filter is called on the page.")
    multi_select: bool = strawberry.field(
        description="A CATEGORY filter may have more than one value chosen."
    )
    options: list[str] | None = strawberry.field(
        description="Fixed choices to offer; null to offer the column's values (`values`)."
    )
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
        self,
        info: Info,
        search: Annotated[str | None, strawberry.argument(description=VALUE_SEARCH)] = (
            strawberry.UNSET
        ),
        limit: Annotated[
            int | None,
            strawberry.argument(description=VALUE_LIMIT),
        ] = 100,
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


@strawberry.type(description="A dataset that cards on a dashboard read.")
class ReferencedDataset:
    dataset: Dataset = strawberry.field(description="The dataset.")
    used_by_cards: list[Card] = strawberry.field(
        description="The dashboard's cards (those the caller may see) that read it."
    )


@strawberry.type(
    description="Cards laid out on a grid under page filters, shared with users and groups."
)
class Dashboard(Node):
    name: str = strawberry.field(description="Shown in lists and on the page.")
    description: str | None = strawberry.field(description="Free text about the dashboard.")
    version: int = strawberry.field(
        description="Optimistic-locking counter; see UpdateDashboardInput.expectedVersion."
    )
    created_at: datetime = strawberry.field(description="When the dashboard was created.")
    updated_at: datetime = strawberry.field(description="When the dashboard was last changed.")
    workspace_key: str | None = strawberry.field(description=WORKSPACE_KEY_FIELD)
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
            workspace_key=record.workspace_key,
            record=record,
        )

    @field(description="Who created the dashboard (or this copy of it); holds OWNER.")
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)

    @field(description="The grid and the cards on it that the caller may see.")
    async def layout(self, info: Info) -> DashboardLayout:
        layout = self.record.layout
        visible = {c.id: Card.from_record(c) for c in await _visible_cards(info, self.record)}
        items = [
            LayoutItem(card=visible[i.card_id], x=i.x, y=i.y, w=i.w, h=i.h)
            for i in layout.items
            if i.card_id in visible
        ]
        return DashboardLayout(columns=layout.columns, row_height=layout.row_height, items=items)

    @field(description="The page filters, in the order set.")
    def filters(self) -> list[FilterDefinition]:
        return [FilterDefinition.from_record(f, self.record.id) for f in self.record.filters]

    @field(
        description="The view to open the dashboard with: the caller's own default view, else "
        "the dashboard's shared default (UpdateDashboardInput.defaultFilterViewId)."
    )
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

    @field(description="How many cards `cards` lists.")
    async def card_count(self, info: Info) -> int:
        return len(await _visible_cards(info, self.record))

    @field(description="The cards on the dashboard the caller may see, in layout order.")
    async def cards(self, info: Info) -> list[Card]:
        return [Card.from_record(c) for c in await _visible_cards(info, self.record)]

    @field(description="The datasets those cards read, each with the cards that read it.")
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

    @field(
        description="Who the dashboard is shared with, oldest share first.",
        extensions=requires_permission(DomainPermissionLevel.OWNER),
    )
    async def shares(self, info: Info) -> list[DashboardShare]:
        shares = await info.context.loaders.shares_of_dashboard.load(self.record.id)
        return [DashboardShare.from_record(s) for s in sorted(shares, key=lambda s: s.created_at)]

    @field(
        description="Newest first. EDITOR or more.",
        extensions=requires_permission(DomainPermissionLevel.EDITOR),
    )
    async def revisions(
        self, info: Info, first: First = 20, after: After = strawberry.UNSET
    ) -> Connection[Revision]:
        return await revisions_of(info, self.record.id, first, given(after))

    @field(
        description="Deliveries and alerts of this dashboard, newest first. EDITOR or more.",
        extensions=requires_permission(DomainPermissionLevel.EDITOR),
    )
    async def deliveries(self, info: Info) -> list[DeliveryType]:
        ctx = info.context
        found = await ctx.services.deliveries.of_dashboard(ctx.access, self.record.id)
        # The Delivery type names this one, so it is found through the schema, not imported.
        delivery: Any = info.schema.get_type_by_name("Delivery")
        return [delivery.origin.from_record(d) for d in found]

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


@strawberry.type(description="A dashboard's grant of a permission level to a user or a group.")
class DashboardShare(Node):
    target_type: ShareTargetType = strawberry.field(
        description="Whether `user` or `group` holds the share."
    )
    permission: PermissionLevel = strawberry.field(description="The level granted.")
    created_at: datetime = strawberry.field(description="When the dashboard was shared.")
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

    @field(description="The dashboard shared.")
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

    @field(description="Who granted the share.")
    async def shared_by(self, info: Info) -> User:
        return await load_owner(info, self.record.shared_by)


@strawberry.type(description="A saved set of filter values for a dashboard.")
class FilterView(Node):
    name: str = strawberry.field(description="What the view is called.")
    filter_state: JSON = strawberry.field(description=FILTER_STATE)
    is_shared: bool = strawberry.field(
        description="Everyone who sees the dashboard sees the view; otherwise only its owner."
    )
    is_default: bool = strawberry.field(
        description="The owner's default view of the dashboard (see Dashboard.defaultFilterView)."
    )
    created_at: datetime = strawberry.field(description="When the view was saved.")
    updated_at: datetime = strawberry.field(description="When the view was last changed.")
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

    @field(description="The dashboard the view belongs to.")
    async def dashboard(self, info: Info) -> Dashboard:
        return await _load_dashboard(info, self.record.dashboard_id)

    @field(description="Who saved the view; only they may change or delete it.")
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)


# ---------------------------------------------------------------- inputs and payloads


@strawberry.input(description="Where one card goes on the grid; it must fit within the columns.")
class LayoutItemInput:
    card_id: strawberry.ID = strawberry.field(description="The card to place.")
    x: int = strawberry.field(description="Column of the card's left edge, from 0.")
    y: int = strawberry.field(description="Row of the card's top edge, from 0.")
    w: int = strawberry.field(description="Width, in grid columns; at least 1.")
    h: int = strawberry.field(description="Height, in grid rows; at least 1.")


@strawberry.input(description="A dashboard's grid and the cards on it; replaces the whole layout.")
class DashboardLayoutInput:
    columns: int = strawberry.field(default=12, description="Grid columns, 1 to 48.")
    row_height: int = strawberry.field(
        default=100, description="The height of one grid row, in pixels; at least 1."
    )
    items: list[LayoutItemInput] = strawberry.field(description=LAYOUT_INPUT)

    def to_layout(self) -> Layout:
        return Layout(
            self.columns,
            self.row_height,
            tuple(LayoutItemRecord(str(i.card_id), i.x, i.y, i.w, i.h) for i in self.items),
        )


@strawberry.input(description="A page filter of a dashboard.")
class FilterDefinitionInput:
    id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Generated when omitted."
    )
    type: FilterType = strawberry.field(description="How the filter narrows the rows.")
    column: str = strawberry.field(description="The column to filter; not empty.")
    label: str = strawberry.field(description="What the filter is called on the page; not empty.")
    multi_select: bool = strawberry.field(
        default=False, description="Allow more than one value of a CATEGORY filter at once."
    )
    options: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Fixed choices to offer; omit to offer the column's values.",
    )

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


@strawberry.input(description="A new dashboard, owned by the caller.")
class CreateDashboardInput:
    name: str = strawberry.field(description=DASHBOARD_NAME)
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=DASHBOARD_DESCRIPTION
    )
    layout: DashboardLayoutInput | None = strawberry.field(
        default=strawberry.UNSET, description="Empty 12-column grid when omitted."
    )
    filters: list[FilterDefinitionInput] | None = strawberry.field(
        default=strawberry.UNSET, description=FILTERS_INPUT
    )
    workspace_key: str | None = strawberry.field(
        default=strawberry.UNSET, description=WORKSPACE_KEY
    )


@strawberry.input(description="Changes to a dashboard (EDITOR or more); fields left out stay.")
class UpdateDashboardInput:
    id: strawberry.ID = strawberry.field(description="The dashboard to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=DASHBOARD_NAME)
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=DASHBOARD_DESCRIPTION
    )
    layout: DashboardLayoutInput | None = strawberry.field(
        default=strawberry.UNSET, description=LAYOUT_INPUT
    )
    filters: list[FilterDefinitionInput] | None = strawberry.field(
        default=strawberry.UNSET, description=FILTERS_INPUT + " Replaces every filter."
    )
    default_filter_view_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="A shared view of this dashboard to open it with for everyone without a "
        "default of their own; null clears it.",
    )
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="When given and not equal to the stored version, the update fails with "
        "CONFLICT.",
    )
    workspace_key: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=WORKSPACE_KEY + " The owner's dashboards are those of the dashboard's "
        "owner, whoever (an EDITOR) sets it. Null clears it.",
    )


@strawberry.input(description="A dashboard to copy; the copy is the caller's.")
class CloneDashboardInput:
    id: strawberry.ID = strawberry.field(description="The dashboard to copy.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="Defaults to the source name + ' (Copy)'."
    )


@strawberry.type(description="The dashboard a mutation created or changed.")
class DashboardPayload:
    dashboard: Dashboard = strawberry.field(description="The dashboard as it is now.")


@strawberry.input(description="A new share of a dashboard.")
class ShareDashboardInput:
    dashboard_id: strawberry.ID = strawberry.field(description="The dashboard to share.")
    target_type: ShareTargetType = strawberry.field(
        description="Whether targetId is a user or a group."
    )
    target_id: strawberry.ID = strawberry.field(
        description="The user or group to share with; not the dashboard's owner. CONFLICT when "
        "it already has a share (change that one instead)."
    )
    permission: PermissionLevel = strawberry.field(description="The level to grant.")


@strawberry.input(description="A new level for an existing share.")
class UpdateDashboardShareInput:
    id: strawberry.ID = strawberry.field(description="The share (DashboardShare.id).")
    permission: PermissionLevel = strawberry.field(description="The level to grant instead.")


@strawberry.type(description="The share a mutation created or changed.")
class DashboardSharePayload:
    share: DashboardShare = strawberry.field(description="The share as it is now.")


@strawberry.input(description="A new filter view of a dashboard, owned by the caller.")
class CreateFilterViewInput:
    dashboard_id: strawberry.ID = strawberry.field(description="The dashboard the view is for.")
    name: str = strawberry.field(description=VIEW_NAME)
    filter_state: JSON = strawberry.field(
        description=FILTER_STATE + " Only the dashboard's filter ids may appear."
    )
    is_shared: bool = strawberry.field(default=False, description=VIEW_SHARED)
    is_default: bool = strawberry.field(default=False, description=VIEW_DEFAULT)


@strawberry.input(description="Changes to one of the caller's filter views; fields left out stay.")
class UpdateFilterViewInput:
    id: strawberry.ID = strawberry.field(description="The view to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=VIEW_NAME)
    filter_state: JSON | None = strawberry.field(default=strawberry.UNSET, description=FILTER_STATE)
    is_shared: bool | None = strawberry.field(
        default=strawberry.UNSET, description=VIEW_SHARED + " Not null."
    )
    is_default: bool | None = strawberry.field(
        default=strawberry.UNSET, description=VIEW_DEFAULT + " Not null."
    )


@strawberry.type(description="The filter view a mutation created or changed.")
class FilterViewPayload:
    filter_view: FilterView = strawberry.field(description="The view as it is now.")


@strawberry.input(description="Runs every code card of a dashboard at once.")
class ExecuteDashboardInput:
    id: strawberry.ID = strawberry.field(description="The dashboard.")
    filters: list[ColumnFilterInput] | None = strawberry.field(
        default=strawberry.UNSET, description=RUN_FILTERS
    )
    use_cache: bool = strawberry.field(default=True, description=USE_CACHE)


@strawberry.type(description="The runs executeDashboard started.")
class DashboardExecutionPayload:
    executions: list[CardExecution] = strawberry.field(
        description="One execution per code card on the dashboard, in layout order."
    )
