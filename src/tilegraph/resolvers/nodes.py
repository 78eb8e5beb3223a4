"""`node(id:)`: the id's prefix says which kind of object to look up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry
from strawberry.types import Info

from tilegraph.domain.errors import NotFound
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.users import Principal
from tilegraph.schema.node import Node
from tilegraph.schema.types.audit import AuditLog
from tilegraph.schema.types.users import Group, User

NodeResolver = Callable[[Info, Principal, str], Awaitable[Node | None]]


async def _user(info: Info, principal: Principal, node_id: str) -> Node | None:
    return User.maybe(await info.context.loaders.users.load(node_id))


async def _group(info: Info, principal: Principal, node_id: str) -> Node | None:
    if not principal.is_admin:
        return None
    return Group.maybe(await info.context.loaders.groups.load(node_id))


async def _audit_log(info: Info, principal: Principal, node_id: str) -> Node | None:
    if not principal.is_admin:
        return None
    record = await info.context.services.repos.audit.get(node_id)
    return AuditLog.from_record(record) if record else None


RESOLVERS: dict[str, NodeResolver] = {"usr": _user, "grp": _group, "log": _audit_log}


async def node(info: Info, id: strawberry.ID) -> Node | None:
    principal = await info.context.require_principal()
    resolver = RESOLVERS.get(prefix_of(str(id)) or "")
    found = await resolver(info, principal, str(id)) if resolver else None
    if found is None:
        raise NotFound("Nothing with this id exists, or you cannot see it", field="id")
    return found
