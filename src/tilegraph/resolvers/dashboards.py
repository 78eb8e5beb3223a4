"""Dashboard queries and mutations. Levels are enforced by @requiresPermission before
these run; the service re-reads the dashboard through the same request-memoised loaders."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.domain.errors import BadUserInput
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.types.cards import CardExecution, filters_of
from tilegraph.schema.types.common import DeleteInput, DeletePayload
from tilegraph.schema.types.dashboards import (
    CloneDashboardInput,
    CreateDashboardInput,
    CreateFilterViewInput,
    Dashboard,
    DashboardExecutionPayload,
    DashboardPayload,
    DashboardShare,
    DashboardSharePayload,
    ExecuteDashboardInput,
    FilterView,
    FilterViewPayload,
    ShareDashboardInput,
    UpdateDashboardInput,
    UpdateDashboardShareInput,
    UpdateFilterViewInput,
    filter_records,
)
from tilegraph.schema.values import given, page_size


async def dashboards(
    info: Info, first: First = 50, after: After = strawberry.UNSET
) -> Connection[Dashboard]:
    ctx = info.context
    principal = ctx.principal
    page = await ctx.services.dashboards.list_page(
        principal, ctx.access, page_size(first, 50), given(after)
    )
    return connection_from_page(page, Dashboard.from_record)


async def dashboard(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The dashboard (Dashboard.id).")],
) -> Dashboard | None:
    return Dashboard.from_record(await info.context.access.checked(str(id)))


async def filter_view(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The view (FilterView.id).")],
) -> FilterView | None:
    ctx = info.context
    principal = ctx.principal
    view = await ctx.services.filter_views.get(principal, ctx.access, str(id))
    return FilterView.from_record(view)


async def create_dashboard(
    info: Info,
    input: Annotated[CreateDashboardInput, strawberry.argument(description="The new dashboard.")],
) -> DashboardPayload:
    principal = info.context.principal
    layout = given(input.layout)
    record = await info.context.services.dashboards.create(
        principal,
        name=input.name,
        description=given(input.description),
        layout=layout.to_layout() if layout is not None else None,
        filters=filter_records(input.filters),
        workspace_key=given(input.workspace_key),
    )
    return DashboardPayload(dashboard=Dashboard.from_record(record))


async def update_dashboard(
    info: Info,
    input: Annotated[
        UpdateDashboardInput, strawberry.argument(description="The dashboard and what to change.")
    ],
) -> DashboardPayload:
    ctx = info.context
    principal = ctx.principal
    layout = given(input.layout)
    default_view = input.default_filter_view_id
    record = await ctx.services.dashboards.update(
        principal,
        ctx.access,
        str(input.id),
        name=given(input.name),
        description=given(input.description),
        layout=layout.to_layout() if layout is not None else None,
        filters=filter_records(input.filters),
        default_view_id=str(default_view) if given(default_view) else None,
        clear_default_view=default_view is None,
        expected_version=given(input.expected_version),
        workspace_key=given(input.workspace_key),
        workspace_key_given=input.workspace_key is not strawberry.UNSET,
    )
    return DashboardPayload(dashboard=Dashboard.from_record(record))


async def delete_dashboard(
    info: Info,
    input: Annotated[DeleteInput, strawberry.argument(description="The dashboard to delete.")],
) -> DeletePayload:
    ctx = info.context
    principal = ctx.principal
    deleted = await ctx.services.dashboards.delete(principal, ctx.access, str(input.id))
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def clone_dashboard(
    info: Info,
    input: Annotated[
        CloneDashboardInput,
        strawberry.argument(description="The dashboard to copy, and the name of the copy."),
    ],
) -> DashboardPayload:
    ctx = info.context
    principal = ctx.principal
    record = await ctx.services.dashboards.clone(
        principal, ctx.access, str(input.id), given(input.name)
    )
    return DashboardPayload(dashboard=Dashboard.from_record(record))


async def share_dashboard(
    info: Info,
    input: Annotated[
        ShareDashboardInput,
        strawberry.argument(description="The dashboard, who to share it with, and at what level."),
    ],
) -> DashboardSharePayload:
    ctx = info.context
    principal = ctx.principal
    share = await ctx.services.shares.add(
        principal,
        ctx.access,
        dashboard_id=str(input.dashboard_id),
        target_type=input.target_type,
        target_id=str(input.target_id),
        permission=input.permission,
        request_id=ctx.request_id,
    )
    return DashboardSharePayload(share=DashboardShare.from_record(share))


async def update_dashboard_share(
    info: Info,
    input: Annotated[
        UpdateDashboardShareInput,
        strawberry.argument(description="The share and the level it grants from now on."),
    ],
) -> DashboardSharePayload:
    ctx = info.context
    principal = ctx.principal
    share = await ctx.services.shares.update(
        principal, ctx.access, str(input.id), input.permission, ctx.request_id
    )
    return DashboardSharePayload(share=DashboardShare.from_record(share))


async def remove_dashboard_share(
    info: Info,
    input: Annotated[
        DeleteInput, strawberry.argument(description="The share to remove (DashboardShare.id).")
    ],
) -> DeletePayload:
    ctx = info.context
    principal = ctx.principal
    removed = await ctx.services.shares.remove(principal, ctx.access, str(input.id), ctx.request_id)
    return DeletePayload(deleted_id=strawberry.ID(removed))


async def create_filter_view(
    info: Info,
    input: Annotated[CreateFilterViewInput, strawberry.argument(description="The new view.")],
) -> FilterViewPayload:
    ctx = info.context
    principal = ctx.principal
    view = await ctx.services.filter_views.create(
        principal,
        ctx.access,
        dashboard_id=str(input.dashboard_id),
        name=input.name,
        filter_state=input.filter_state,
        is_shared=input.is_shared,
        is_default=input.is_default,
    )
    return FilterViewPayload(filter_view=FilterView.from_record(view))


async def update_filter_view(
    info: Info,
    input: Annotated[
        UpdateFilterViewInput, strawberry.argument(description="The view and what to change.")
    ],
) -> FilterViewPayload:
    ctx = info.context
    principal = ctx.principal
    for name in ("is_shared", "is_default"):
        if getattr(input, name) is None:
            raise BadUserInput(f"`{name}` cannot be null", field=name)
    view = await ctx.services.filter_views.update(
        principal,
        ctx.access,
        str(input.id),
        name=given(input.name),
        filter_state=given(input.filter_state),
        is_shared=given(input.is_shared),
        is_default=given(input.is_default),
    )
    return FilterViewPayload(filter_view=FilterView.from_record(view))


async def delete_filter_view(
    info: Info,
    input: Annotated[DeleteInput, strawberry.argument(description="The view to delete.")],
) -> DeletePayload:
    ctx = info.context
    principal = ctx.principal
    deleted = await ctx.services.filter_views.delete(principal, ctx.access, str(input.id))
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def execute_dashboard(
    info: Info,
    input: Annotated[
        ExecuteDashboardInput,
        strawberry.argument(
            description="The dashboard, with the filters and cache choice of this run."
        ),
    ],
) -> DashboardExecutionPayload:
    ctx = info.context
    principal = ctx.principal
    runs = await ctx.services.dashboards.execute(
        principal,
        ctx.access,
        str(input.id),
        filters=filters_of(input.filters),
        use_cache=input.use_cache,
    )
    return DashboardExecutionPayload(executions=[CardExecution.from_record(r) for r in runs])
