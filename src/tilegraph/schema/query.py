"""The Query root."""

from __future__ import annotations

import strawberry

from tilegraph.resolvers import (
    audit as audit_r,
)
from tilegraph.resolvers import (
    auth as auth_r,
)
from tilegraph.resolvers import (
    groups as groups_r,
)
from tilegraph.resolvers import (
    nodes as nodes_r,
)
from tilegraph.resolvers import (
    users as users_r,
)
from tilegraph.schema.access import admin_only


@strawberry.type
class Query:
    node = strawberry.field(resolver=nodes_r.node)
    me = strawberry.field(resolver=auth_r.me)
    users = strawberry.field(
        resolver=users_r.users,
        description="Users whose email contains `query` (case-insensitive); empty query gives [].",
    )
    groups = strawberry.field(resolver=groups_r.groups, extensions=admin_only())
    group = strawberry.field(resolver=groups_r.group, extensions=admin_only())
    audit_logs = strawberry.field(
        resolver=audit_r.audit_logs, extensions=admin_only(), description="Newest first."
    )
