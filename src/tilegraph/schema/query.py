"""The Query root."""

from __future__ import annotations

import strawberry

from tilegraph.domain.permissions import PermissionLevel
from tilegraph.resolvers import audit as audit_r
from tilegraph.resolvers import auth as auth_r
from tilegraph.resolvers import cards as cards_r
from tilegraph.resolvers import dashboards as dashboards_r
from tilegraph.resolvers import datasets as datasets_r
from tilegraph.resolvers import deliveries as deliveries_r
from tilegraph.resolvers import executions as executions_r
from tilegraph.resolvers import groups as groups_r
from tilegraph.resolvers import lineage as lineage_r
from tilegraph.resolvers import nodes as nodes_r
from tilegraph.resolvers import revisions as revisions_r
from tilegraph.resolvers import transforms as transforms_r
from tilegraph.resolvers import users as users_r
from tilegraph.schema.access import admin_only, requires_permission


@strawberry.type(
    description="Reads. Every field needs a signed-in caller (Authorization: Bearer <token>)."
)
class Query:
    node = strawberry.field(
        resolver=nodes_r.node,
        description="Any object by its id; NOT_FOUND when there is none or the caller may not "
        "see it.",
    )
    nodes = strawberry.field(
        resolver=nodes_r.nodes,
        description=f"Up to {nodes_r.MAX_NODES} objects by id, in the order asked; null where "
        "the caller may not see one (or there is none).",
    )
    execution = strawberry.field(
        resolver=executions_r.execution,
        description="Any execution by id (the caller's own, or one it may follow): a card run, "
        "a transform run or a dataset import.",
    )
    me = strawberry.field(resolver=auth_r.me, description="The signed-in caller's own account.")
    users = strawberry.field(
        resolver=users_r.users,
        description="Users whose email contains `query` (case-insensitive); empty query gives "
        "[]. For a non-admin: users whose email or name starts with `query` (case-insensitive, "
        "at least 3 characters, else BAD_USER_INPUT on `query`), at most 10.",
    )
    groups = strawberry.field(
        resolver=groups_r.groups, extensions=admin_only(), description="Every group, by name."
    )
    group = strawberry.field(
        resolver=groups_r.group,
        extensions=admin_only(),
        description="One group by id; NOT_FOUND when there is none.",
    )
    datasets = strawberry.field(
        resolver=datasets_r.datasets, description="The caller's own datasets, newest first."
    )
    dataset = strawberry.field(
        resolver=datasets_r.dataset,
        description="One of the caller's own datasets; NOT_FOUND for any other id.",
    )
    dataset_import = strawberry.field(
        resolver=datasets_r.dataset_import,
        description="One of the caller's own imports; NOT_FOUND otherwise.",
    )
    cards = strawberry.field(
        resolver=cards_r.cards, description="The caller's own cards, newest first."
    )
    card = strawberry.field(
        resolver=cards_r.card,
        description="A card the caller owns, or one lent to them by a dashboard they see "
        "(`dashboardId`); NOT_FOUND otherwise.",
    )
    card_execution = strawberry.field(
        resolver=cards_r.card_execution,
        description="A card run the caller started; NOT_FOUND otherwise.",
    )
    dashboards = strawberry.field(
        resolver=dashboards_r.dashboards,
        description="Dashboards the caller owns or has been shared (directly or via a group), "
        "newest first.",
    )
    dashboard = strawberry.field(
        resolver=dashboards_r.dashboard,
        extensions=requires_permission(PermissionLevel.VIEWER),
        description="A dashboard the caller owns or has been shared; NOT_FOUND otherwise.",
    )
    filter_view = strawberry.field(
        resolver=dashboards_r.filter_view,
        description="A filter view: the caller's own, or a shared one of a dashboard they see; "
        "NOT_FOUND otherwise.",
    )
    deleted_objects = strawberry.field(
        resolver=revisions_r.deleted_objects,
        description="Revisions of objects the caller owns that were deleted, newest first (to "
        "undo a delete).",
    )
    transforms = strawberry.field(
        resolver=transforms_r.transforms, description="The caller's own transforms, newest first."
    )
    transform = strawberry.field(
        resolver=transforms_r.transform,
        description="One of the caller's own transforms; NOT_FOUND for any other id.",
    )
    transform_execution = strawberry.field(
        resolver=transforms_r.transform_execution,
        description="A run of one of the caller's own transforms; NOT_FOUND otherwise.",
    )
    deliveries = strawberry.field(
        resolver=deliveries_r.deliveries, description="Deliveries the caller owns, newest first."
    )
    audit_logs = strawberry.field(
        resolver=audit_r.audit_logs, extensions=admin_only(), description="Newest first."
    )
    lineage = strawberry.field(
        resolver=lineage_r.lineage,
        description="The graph around a dataset, transform, card or dashboard, `depth` hops "
        "each way (1..10). NOT_FOUND when there is no such object or the caller may not see "
        "it (as node(id:)); BAD_USER_INPUT on `depth` outside 1..10.",
    )
