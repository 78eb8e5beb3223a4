"""`node(id:)` and `nodes(ids:)`: the id's prefix says which kind of object to look up, and
each kind has one rule for who may see it (also used to follow executions)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from tilegraph.context import Info
from tilegraph.domain.cards import CardExecutionRecord, CardRecord
from tilegraph.domain.dashboards import DashboardRecord, FilterViewRecord, ShareRecord
from tilegraph.domain.deliveries import DeliveryRecord, DeliveryRunRecord
from tilegraph.domain.errors import BadUserInput, NotFound
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.ownership import Owned, mine
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.policies import DatasetPolicyRecord
from tilegraph.domain.revisions import RevisionRecord
from tilegraph.domain.transforms import TransformRunRecord
from tilegraph.domain.users import Principal
from tilegraph.loaders.records import RecordLoader
from tilegraph.loaders.registry import Loaders
from tilegraph.schema.node import Node
from tilegraph.schema.types.audit import AuditLog
from tilegraph.schema.types.cards import Card, CardExecution
from tilegraph.schema.types.dashboards import Dashboard, DashboardShare, FilterView
from tilegraph.schema.types.datasets import Dataset, DatasetImport, DatasetPolicy
from tilegraph.schema.types.deliveries import Delivery, DeliveryRun
from tilegraph.schema.types.revisions import Revision
from tilegraph.schema.types.transforms import Transform, TransformExecution
from tilegraph.schema.types.users import Group, User

MAX_NODES = 100

R = TypeVar("R")
N = TypeVar("N", bound=Node)


@dataclass(frozen=True)
class NodeKind(Generic[R, N]):
    """One kind of object: the request's loader for it (one batched read per table), the
    rule for who may see a record, and its GraphQL type."""

    loader: Callable[[Loaders], RecordLoader[R]]
    visible: Callable[[Info, Principal, R], Awaitable[bool]]
    convert: Callable[[R], N]

    async def shown(self, info: Info, principal: Principal, record: R | None) -> N | None:
        """The record as a node, when it exists and the caller may see it."""
        if record is None or not await self.visible(info, principal, record):
            return None
        return self.convert(record)

    async def find(self, info: Info, principal: Principal, ids: list[str]) -> list[N | None]:
        records = await self.loader(info.context.loaders).load_many(ids)
        return list(await asyncio.gather(*(self.shown(info, principal, r) for r in records)))


# ---------------------------------------------------------------- who may see what


async def _anyone(info: Info, principal: Principal, record: object) -> bool:
    return True


async def _admins(info: Info, principal: Principal, record: object) -> bool:
    return principal.is_admin


async def _owner(info: Info, principal: Principal, record: Owned) -> bool:
    return mine(record, principal) is not None


async def _card(info: Info, principal: Principal, card: CardRecord) -> bool:
    return await info.context.services.cards.readable(principal, card)


async def _import(info: Info, principal: Principal, record: ImportRecord) -> bool:
    """The owner's, while its dataset exists (a deleted dataset takes its imports along)."""
    if mine(record, principal) is None:
        return False
    return await info.context.loaders.datasets.load(record.dataset_id) is not None


async def _policy(info: Info, principal: Principal, record: DatasetPolicyRecord) -> bool:
    """The dataset owner's only."""
    dataset = await info.context.loaders.datasets.load(record.dataset_id)
    return mine(dataset, principal) is not None


async def _transform_run(info: Info, principal: Principal, run: TransformRunRecord) -> bool:
    """The owner's, while its transform exists (a deleted transform takes its runs along)."""
    if mine(run, principal) is None:
        return False
    return await info.context.loaders.transforms.load(run.transform_id) is not None


async def _dashboard(info: Info, principal: Principal, record: DashboardRecord) -> bool:
    return await info.context.access.level_on(principal.user_id, record) is not None


async def _filter_view(info: Info, principal: Principal, view: FilterViewRecord) -> bool:
    ctx = info.context
    return await ctx.services.filter_views.may_see(principal, ctx.access, view)


async def _share(info: Info, principal: Principal, share: ShareRecord) -> bool:
    level = await info.context.access.level(principal.user_id, share.dashboard_id)
    return level is PermissionLevel.OWNER


async def _delivery(info: Info, principal: Principal, record: DeliveryRecord) -> bool:
    """Its owner, and whoever may edit its dashboard."""
    ctx = info.context
    return await ctx.services.deliveries.may_see(principal, ctx.access, record)


async def _delivery_run(info: Info, principal: Principal, run: DeliveryRunRecord) -> bool:
    """As its delivery, while that exists."""
    delivery = await info.context.loaders.deliveries.load(run.delivery_id)
    return delivery is not None and await _delivery(info, principal, delivery)


async def _revision(info: Info, principal: Principal, record: RevisionRecord) -> bool:
    """Whoever may change the object (see RevisionService)."""
    ctx = info.context
    return await ctx.services.revisions.may_read(principal, ctx.access, record)


CARD_RUN: NodeKind[CardExecutionRecord, CardExecution] = NodeKind(
    lambda loaders: loaders.card_executions, _owner, CardExecution.from_record
)
TRANSFORM_RUN: NodeKind[TransformRunRecord, TransformExecution] = NodeKind(
    lambda loaders: loaders.transform_runs, _transform_run, TransformExecution.from_record
)
DATASET_IMPORT: NodeKind[ImportRecord, DatasetImport] = NodeKind(
    lambda loaders: loaders.imports, _import, DatasetImport.from_record
)
DELIVERY_RUN: NodeKind[DeliveryRunRecord, DeliveryRun] = NodeKind(
    lambda loaders: loaders.delivery_runs, _delivery_run, DeliveryRun.from_record
)

KINDS: dict[str, NodeKind[Any, Any]] = {
    "usr": NodeKind(lambda loaders: loaders.users, _anyone, User.from_record),
    "grp": NodeKind(lambda loaders: loaders.groups, _admins, Group.from_record),
    "log": NodeKind(lambda loaders: loaders.audit_logs, _admins, AuditLog.from_record),
    "ds": NodeKind(lambda loaders: loaders.datasets, _owner, Dataset.from_record),
    "imp": DATASET_IMPORT,
    "pol": NodeKind(lambda loaders: loaders.policies, _policy, DatasetPolicy.from_record),
    "card": NodeKind(lambda loaders: loaders.cards, _card, Card.from_record),
    "cex": CARD_RUN,
    "dash": NodeKind(lambda loaders: loaders.dashboards, _dashboard, Dashboard.from_record),
    "fv": NodeKind(lambda loaders: loaders.filter_views, _filter_view, FilterView.from_record),
    "share": NodeKind(lambda loaders: loaders.shares, _share, DashboardShare.from_record),
    "tf": NodeKind(lambda loaders: loaders.transforms, _owner, Transform.from_record),
    "tex": TRANSFORM_RUN,
    "rev": NodeKind(lambda loaders: loaders.revisions, _revision, Revision.from_record),
    "dl": NodeKind(lambda loaders: loaders.deliveries, _delivery, Delivery.from_record),
    "dlr": DELIVERY_RUN,
}


async def find_nodes(info: Info, principal: Principal, ids: list[str]) -> list[Node | None]:
    """The objects in the order asked, None where there is none the caller may see; ids
    grouped by kind, so each table is read once (in one batch) whatever the mix."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for node_id in dict.fromkeys(ids):
        prefix = prefix_of(node_id)
        if prefix in KINDS:
            by_kind[prefix].append(node_id)
    groups = list(by_kind.items())
    found_lists = await asyncio.gather(
        *(KINDS[prefix].find(info, principal, group) for prefix, group in groups)
    )
    found: dict[str, Node | None] = {}
    for (_, group), nodes in zip(groups, found_lists, strict=True):
        found.update(zip(group, nodes, strict=True))
    return [found.get(node_id) for node_id in ids]


async def node(
    info: Info,
    id: Annotated[
        strawberry.ID, strawberry.argument(description="Any id the API returned (Node.id).")
    ],
) -> Node | None:
    principal = info.context.principal
    found = (await find_nodes(info, principal, [str(id)]))[0]
    if found is None:
        raise NotFound("Nothing with this id exists, or you cannot see it", field="id")
    return found


async def nodes(
    info: Info,
    ids: Annotated[
        list[strawberry.ID],
        strawberry.argument(
            description="Up to 100 ids of any kinds; the answer keeps their order."
        ),
    ],
) -> list[Node | None]:
    principal = info.context.principal
    if len(ids) > MAX_NODES:
        raise BadUserInput(f"Ask for at most {MAX_NODES} ids at once", field="ids")
    return await find_nodes(info, principal, [str(i) for i in ids])
