"""Revision history: the deleted objects a user may bring back, and restoreRevision."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.domain.cards import CardRecord
from tilegraph.domain.dashboards import DashboardRecord
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.node import Node
from tilegraph.schema.types.cards import Card
from tilegraph.schema.types.dashboards import Dashboard
from tilegraph.schema.types.revisions import (
    RestoreRevisionInput,
    RestoreRevisionPayload,
    Revision,
)
from tilegraph.schema.types.transforms import Transform
from tilegraph.schema.values import given, page_size


async def deleted_objects(
    info: Info, first: First = 20, after: After = strawberry.UNSET
) -> Connection[Revision]:
    page = await info.context.services.revisions.deleted(
        info.context.principal, page_size(first, 20), given(after)
    )
    return connection_from_page(page, Revision.from_record)


async def restore_revision(
    info: Info,
    input: Annotated[
        RestoreRevisionInput,
        strawberry.argument(description="The revision, and the object's version as read."),
    ],
) -> RestoreRevisionPayload:
    ctx = info.context
    restored = await ctx.services.revisions.restore(
        ctx.principal,
        ctx.access,
        str(input.id),
        given(input.expected_version),
        ctx.request_id,
    )
    record = restored.record
    node: Node
    if isinstance(record, CardRecord):
        node = Card.from_record(record)
    elif isinstance(record, DashboardRecord):
        node = Dashboard.from_record(record)
    else:
        node = Transform.from_record(record)
    return RestoreRevisionPayload(revision=Revision.from_record(restored.revision), node=node)
