"""Cards, their runs and results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from tilegraph.context import Info
from tilegraph.domain.cards import CardExecutionRecord, CardRecord, CardResultRecord
from tilegraph.domain.filters import ColumnFilter
from tilegraph.domain.ownership import only_owner
from tilegraph.schema.enums import CardType
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.datasets import Dataset, load_dataset
from tilegraph.schema.types.executions import Execution, ExecutionError
from tilegraph.schema.types.users import User, load_owner
from tilegraph.schema.values import given


@strawberry.type
class Card(Node):
    name: str
    description: str | None
    type: CardType
    params: JSON | None
    used_columns: list[str]
    filter_applicable: list[str]
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[CardRecord]

    @classmethod
    def from_record(cls, record: CardRecord) -> Card:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            description=record.description,
            type=record.type,
            params=JSON(record.params) if record.params is not None else None,
            used_columns=list(record.used_columns),
            filter_applicable=list(record.filter_applicable),
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    @classmethod
    def maybe(cls, record: CardRecord | None) -> Card | None:
        return cls.from_record(record) if record is not None else None

    @field(description="The card's code: its owner's only (FORBIDDEN for anyone else).")
    def code(self, info: Info) -> str:
        only_owner(self.record, info.context.principal, "a card's code")
        return self.record.code

    @field(description="The first of `datasets`, the one passed to render() as `dataset`.")
    async def dataset(self, info: Info) -> Dataset | None:
        return await load_dataset(
            info, self.record.dataset_ids[0] if self.record.dataset_ids else None
        )

    @strawberry.field
    async def datasets(self, info: Info) -> list[Dataset]:
        records = await info.context.loaders.datasets.load_many(list(self.record.dataset_ids))
        return [Dataset.from_record(r) for r in records if r is not None]

    @strawberry.field
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)


@strawberry.type
class CardResult:
    used_columns: list[str]
    filter_applicable: list[str]
    cached: bool
    execution_time_ms: float
    ignored_filters: list[str] = strawberry.field(
        description="Filters on columns the card's datasets lack: ignored, and named here."
    )
    record: strawberry.Private[CardResultRecord]

    @classmethod
    def from_record(cls, record: CardResultRecord) -> CardResult:
        return cls(
            used_columns=list(record.used_columns),
            filter_applicable=list(record.filter_applicable),
            cached=record.cached,
            execution_time_ms=record.execution_time_ms,
            ignored_filters=list(record.ignored_filters),
            record=record,
        )

    @field(description="HTML meant for a sandboxed iframe (never the host page).")
    async def html(self, info: Info) -> str:
        return await info.context.services.cards.result_html(self.record)


@strawberry.type(description="One run of a card (or of draft code, when `card` is null).")
class CardExecution(Execution):
    result: CardResult | None
    record: strawberry.Private[CardExecutionRecord]

    @classmethod
    def from_record(cls, record: CardExecutionRecord) -> CardExecution:
        return cls(
            id=strawberry.ID(record.id),
            status=record.status,
            progress=record.progress,
            result=CardResult.from_record(record.result) if record.result else None,
            error=ExecutionError.maybe(record.error),
            queued_at=record.queued_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            record=record,
        )

    @strawberry.field
    async def card(self, info: Info) -> Card | None:
        """The card, while the caller may still read it: the run's owner may have reached
        it through a dashboard whose share has since been revoked."""
        if not self.record.card_id:
            return None
        ctx = info.context
        card = await ctx.loaders.cards.load(self.record.card_id)
        readable = card is not None and await ctx.services.cards.readable(
            ctx.principal, card, self.record.dashboard_id, ctx.access
        )
        return Card.from_record(card) if card is not None and readable else None


@strawberry.input
class CreateCardInput:
    name: str
    description: str | None = strawberry.UNSET
    type: CardType = CardType.CODE
    code: str
    dataset_ids: list[strawberry.ID]
    params: JSON | None = strawberry.UNSET


@strawberry.input
class UpdateCardInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    code: str | None = strawberry.UNSET
    dataset_ids: list[strawberry.ID] | None = strawberry.UNSET
    params: JSON | None = strawberry.UNSET


@strawberry.type
class CardPayload:
    card: Card


@strawberry.input(description="A platform-applied filter on one column of the card's dataset.")
class ColumnFilterInput:
    column: str
    values: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="CATEGORY: keep rows whose value is in this list."
    )
    start: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="DATE_RANGE / NUMBER_RANGE bounds, inclusive; either may be omitted.",
    )
    end: str | None = strawberry.UNSET
    include_null: bool = False

    def to_filter(self) -> ColumnFilter:
        values = given(self.values)
        return ColumnFilter(
            column=self.column,
            values=tuple(values) if values is not None else None,
            start=given(self.start),
            end=given(self.end),
            include_null=self.include_null,
        )


def filters_of(items: list[ColumnFilterInput] | Any | None) -> list[ColumnFilter]:
    return [f.to_filter() for f in (given(items) or [])]


@strawberry.input
class PreviewCardInput:
    code: str
    dataset_ids: list[strawberry.ID]
    filters: list[ColumnFilterInput] | None = strawberry.UNSET
    params: JSON | None = strawberry.UNSET


@strawberry.input
class ExecuteCardInput:
    id: strawberry.ID
    dashboard_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="The dashboard the card is shown on; grants VIEWERs of it the right to run "
        "the card.",
    )
    filters: list[ColumnFilterInput] | None = strawberry.UNSET
    params: JSON | None = strawberry.UNSET
    use_cache: bool = True


@strawberry.type
class CardExecutionPayload:
    execution: CardExecution = strawberry.field(
        description="Follow it with Subscription.cardExecution."
    )
