"""`node(id:)`: the id's prefix says which kind of object to look up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from tilegraph.context import Info
from tilegraph.domain.errors import NotFound
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.ownership import mine
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.users import Principal
from tilegraph.schema.node import Node
from tilegraph.schema.types.audit import AuditLog
from tilegraph.schema.types.cards import Card, CardExecution
from tilegraph.schema.types.dashboards import Dashboard, DashboardShare, FilterView
from tilegraph.schema.types.datasets import Dataset, DatasetImport
from tilegraph.schema.types.transforms import Transform, TransformExecution
from tilegraph.schema.types.users import Group, User

NodeResolver = Callable[[Info, Principal, str], Awaitable[Node | None]]
R = TypeVar("R")


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


def _node(convert: Callable[[R], Node], record: R | None) -> Node | None:
    return convert(record) if record is not None else None


async def _dataset(info: Info, principal: Principal, node_id: str) -> Node | None:
    return _node(
        Dataset.from_record, mine(await info.context.loaders.datasets.load(node_id), principal)
    )


async def _import(info: Info, principal: Principal, node_id: str) -> Node | None:
    return _node(
        DatasetImport.from_record, mine(await info.context.loaders.imports.load(node_id), principal)
    )


async def _card(info: Info, principal: Principal, node_id: str) -> Node | None:
    record = await info.context.loaders.cards.load(node_id)
    if record is None or not await info.context.services.cards.readable(principal, record):
        return None
    return Card.from_record(record)


async def _card_run(info: Info, principal: Principal, node_id: str) -> Node | None:
    record = await info.context.services.repos.cards.get_execution(node_id)
    return _node(CardExecution.from_record, mine(record, principal))


async def _dashboard(info: Info, principal: Principal, node_id: str) -> Node | None:
    record = await info.context.loaders.dashboards.load(node_id)
    if record is None or await info.context.access.level_on(principal.user_id, record) is None:
        return None
    return Dashboard.from_record(record)


async def _filter_view(info: Info, principal: Principal, node_id: str) -> Node | None:
    ctx = info.context
    view = await ctx.services.filter_views.get(principal, ctx.access, node_id)
    return FilterView.from_record(view)


async def _share(info: Info, principal: Principal, node_id: str) -> Node | None:
    share = await info.context.loaders.shares.load(node_id)
    if share is None:
        return None
    level = await info.context.access.level(principal.user_id, share.dashboard_id)
    return DashboardShare.from_record(share) if level is PermissionLevel.OWNER else None


async def _transform(info: Info, principal: Principal, node_id: str) -> Node | None:
    record = await info.context.loaders.transforms.load(node_id)
    return _node(Transform.from_record, mine(record, principal))


async def _transform_run(info: Info, principal: Principal, node_id: str) -> Node | None:
    run = await info.context.services.repos.transforms.get_run(node_id)
    return _node(TransformExecution.from_record, mine(run, principal))


RESOLVERS: dict[str, NodeResolver] = {
    "tf": _transform,
    "tex": _transform_run,
    "dash": _dashboard,
    "fv": _filter_view,
    "share": _share,
    "card": _card,
    "cex": _card_run,
    "usr": _user,
    "grp": _group,
    "log": _audit_log,
    "ds": _dataset,
    "imp": _import,
}


async def node(info: Info, id: strawberry.ID) -> Node | None:
    principal = await info.context.require_principal()
    resolver = RESOLVERS.get(prefix_of(str(id)) or "")
    found = await resolver(info, principal, str(id)) if resolver else None
    if found is None:
        raise NotFound("Nothing with this id exists, or you cannot see it", field="id")
    return found
