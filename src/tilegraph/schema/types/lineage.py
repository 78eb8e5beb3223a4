"""Lineage graphs, and what a re-import would break (ReimportPlan.impact)."""

from __future__ import annotations

import strawberry

from tilegraph.context import Info
from tilegraph.domain.cards import CardRecord
from tilegraph.domain.dashboards import DashboardRecord
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.lineage import LineageEdge as LineageEdgeRecord
from tilegraph.domain.schema_diff import SchemaChange as SchemaChangeRecord
from tilegraph.schema.enums import LineageRelation
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.types.cards import Card
from tilegraph.schema.types.dashboards import Dashboard
from tilegraph.schema.types.datasets import Dataset, SchemaChange
from tilegraph.schema.types.transforms import Transform
from tilegraph.services.lineage import LineageRecord


def lineage_node(record: LineageRecord) -> Node:
    if isinstance(record, DatasetRecord):
        return Dataset.from_record(record)
    if isinstance(record, CardRecord):
        return Card.from_record(record)
    if isinstance(record, DashboardRecord):
        return Dashboard.from_record(record)
    return Transform.from_record(record)


@strawberry.type(description="One link of a lineage graph, pointing the way the data flows.")
class LineageEdge:
    from_id: strawberry.ID = strawberry.field(
        description="Where the data comes from: the dataset of INPUT_OF and READ_BY, the "
        "transform of PRODUCES, the card of SHOWN_ON."
    )
    to_id: strawberry.ID = strawberry.field(
        description="Where it goes: the transform of INPUT_OF, the dataset of PRODUCES, the "
        "card of READ_BY, the dashboard of SHOWN_ON."
    )
    relation: LineageRelation = strawberry.field(description="How the two are linked.")

    @classmethod
    def from_record(cls, record: LineageEdgeRecord) -> LineageEdge:
        return cls(
            from_id=strawberry.ID(record.from_id),
            to_id=strawberry.ID(record.to_id),
            relation=record.relation,
        )


@strawberry.type(
    description="How objects feed each other: dataset → transform → dataset → card → "
    "dashboard. Only objects the caller may see are listed; the others are only counted."
)
class LineageGraph:
    root: Node = strawberry.field(description="The object the graph was asked for.")
    nodes: list[Node] = strawberry.field(
        description="Every object listed, the root first, then in the order the walk reached "
        "them (nearest first)."
    )
    edges: list[LineageEdge] = strawberry.field(
        description="The links found between listed objects; none leads to a hidden one."
    )
    hidden_count: int = strawberry.field(
        description="How many distinct objects next to listed ones the caller may not see; "
        "the walk does not go through them, so what lies behind them is not counted."
    )


@strawberry.type(description="What a re-import's schema changes would break.")
class ReimportImpact:
    cards: list[Card] = strawberry.field(
        description="Cards whose code or usedColumns refer to a removed or retyped column, or "
        "read the dataset through a transform that does."
    )
    transforms: list[Transform] = strawberry.field(
        description="Transforms whose code refers to a removed or retyped column."
    )
    dashboards: list[Dashboard] = strawberry.field(
        description="Dashboards showing an affected card."
    )


@strawberry.type(
    description="What re-importing an S3 dataset would change, found by reading the file now."
)
class ReimportPlan:
    has_schema_changes: bool = strawberry.field(
        description="True when `changes` is not empty: reimportDataset then needs force."
    )
    changes: list[SchemaChange] = strawberry.field(description="One entry per changed column.")
    new_row_count: int = strawberry.field(description="Rows the file has now.")
    new_column_count: int = strawberry.field(description="Columns the file has now.")
    dataset: strawberry.Private[DatasetRecord]
    change_records: strawberry.Private[list[SchemaChangeRecord]]

    @field(
        description="The dataset owner's cards and transforms that refer to a column the "
        "re-import removes or retypes (code naming it as a string literal, or a card's "
        "usedColumns), the cards reading the output of such a transform, and the dashboards "
        "the caller may see that show an affected card."
    )
    async def impact(self, info: Info) -> ReimportImpact:
        ctx = info.context
        found = await ctx.services.lineage.reimport_impact(
            ctx.principal, ctx.access, ctx.loaders, self.dataset, self.change_records
        )
        return ReimportImpact(
            cards=[Card.from_record(c) for c in found.cards],
            transforms=[Transform.from_record(t) for t in found.transforms],
            dashboards=[Dashboard.from_record(d) for d in found.dashboards],
        )
