"""Cards, their runs and results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from tilegraph.context import Info
from tilegraph.domain.cards import CardExecutionRecord, CardRecord, CardResultRecord
from tilegraph.domain.filters import ColumnFilter
from tilegraph.domain.ownership import only_owner
from tilegraph.schema.connections import After, Connection, First
from tilegraph.schema.enums import CardType, TableFormat
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.common import WORKSPACE_KEY, WORKSPACE_KEY_FIELD
from tilegraph.schema.types.datasets import Dataset, load_dataset
from tilegraph.schema.types.executions import Execution, ExecutionError
from tilegraph.schema.types.revisions import Revision, revisions_of_owned
from tilegraph.schema.types.users import User, load_owner
from tilegraph.schema.values import given

USED_COLUMNS = (
    "The columns the card's code said it reads (`used_columns` of its last successful run); "
    "later runs of the same code read only these. Empty before the first run and after the "
    "code changes."
)
FILTER_APPLICABLE = (
    "The filter columns the card's code said it honours (`filter_applicable` of its last "
    "successful run), e.g. to grey out the other filters next to it."
)
CARD_NAME = "Shown on dashboards; 1 to 200 characters."
CARD_DESCRIPTION = "Free text about the card, up to 10,000 characters."
CARD_CODE = (
    "For a CODE card, Python defining `render(dataset, filters, params)`; for a TEXT card, the "
    "text/HTML to show. At most 256 KiB."
)
CARD_DATASETS = (
    "The caller's own datasets to read, at most 10; the first is passed to render() as `dataset`."
)
CARD_PARAMS = "A JSON object of at most 64 KiB, passed to render() as `params`."
RUN_PARAMS = (
    "A JSON object laid over the card's own params for this run only (keys given here win)."
)
RUN_FILTERS = (
    "Filters the platform applies to the rows before render() sees them (render also gets "
    "them as `filters`)."
)
USE_CACHE = (
    "False runs the code even when a cached result of the same code, params, filters and "
    "dataset versions exists."
)


@strawberry.type(
    description="A tile of a dashboard: Python code that renders a chart as HTML, or static text."
)
class Card(Node):
    name: str = strawberry.field(description="Shown on dashboards.")
    description: str | None = strawberry.field(description="Free text about the card.")
    type: CardType = strawberry.field(description="Code to run, or text to show as it is.")
    params: JSON | None = strawberry.field(
        description="Passed to render() as `params`; null when none were set."
    )
    used_columns: list[str] = strawberry.field(description=USED_COLUMNS)
    filter_applicable: list[str] = strawberry.field(description=FILTER_APPLICABLE)
    created_at: datetime = strawberry.field(description="When the card was created.")
    updated_at: datetime = strawberry.field(description="When the card was last changed.")
    version: int = strawberry.field(
        description="Changes with every save; pass it as expectedVersion to update only what "
        "you read."
    )
    workspace_key: str | None = strawberry.field(description=WORKSPACE_KEY_FIELD)
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
            version=record.version,
            workspace_key=record.workspace_key,
            record=record,
        )

    @classmethod
    def maybe(cls, record: CardRecord | None) -> Card | None:
        return cls.from_record(record) if record is not None else None

    @field(description="Newest first. The card's owner only.")
    async def revisions(
        self, info: Info, first: First = 20, after: After = strawberry.UNSET
    ) -> Connection[Revision]:
        return await revisions_of_owned(
            info, self.record.owner_id, self.record.id, first, given(after)
        )

    @field(description="The card's code: its owner's only (FORBIDDEN for anyone else).")
    def code(self, info: Info) -> str:
        only_owner(self.record, info.context.principal, "a card's code")
        return self.record.code

    @field(description="The first of `datasets`, the one passed to render() as `dataset`.")
    async def dataset(self, info: Info) -> Dataset | None:
        return await load_dataset(
            info, self.record.dataset_ids[0] if self.record.dataset_ids else None
        )

    @field(description="The datasets the card reads, in the order given (deleted ones left out).")
    async def datasets(self, info: Info) -> list[Dataset]:
        records = await info.context.loaders.datasets.load_many(list(self.record.dataset_ids))
        return [Dataset.from_record(r) for r in records if r is not None]

    @field(description="Who created the card; only they may change it or read its code.")
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)


ROWS_LIMIT = Annotated[
    int | None,
    strawberry.argument(description="How many rows, from the first: 1 to 1,000 (null: 100)."),
]
TABLE_FORMAT = Annotated[
    TableFormat | None,
    strawberry.argument(description="The file format of the download (null: CSV)."),
]


@strawberry.type(
    description="The table a card returned with its HTML (HTMLResult(table=...)), stored with "
    "the result."
)
class CardTable:
    columns: list[str] = strawberry.field(description="The table's column names, in order.")
    row_count: int = strawberry.field(description="How many rows the whole table has.")
    result: strawberry.Private[CardResultRecord]

    @field(description="The first rows, row-major, JSON-encoded per cell (at most 1,000).")
    async def rows(self, info: Info, limit: ROWS_LIMIT = 100) -> list[list[JSON | None]]:
        rows = await info.context.services.card_tables.rows(
            self.result, 100 if limit is None else limit
        )
        return [[JSON(cell) if cell is not None else None for cell in row] for row in rows]

    @field(
        description="A link that downloads the whole table, valid for 15 minutes; no token "
        "needed to follow it."
    )
    async def download_url(self, info: Info, format: TABLE_FORMAT = TableFormat.CSV) -> str:
        return await info.context.services.card_tables.download_url(
            self.result, format or TableFormat.CSV
        )


@strawberry.type(description="What a successful card run produced.")
class CardResult:
    used_columns: list[str] = strawberry.field(
        description="The columns the code said it read (render's `used_columns`)."
    )
    filter_applicable: list[str] = strawberry.field(
        description="The filter columns the code said it honours (render's `filter_applicable`)."
    )
    cached: bool = strawberry.field(
        description="True when the result came from the cache instead of a new run."
    )
    execution_time_ms: float = strawberry.field(
        description="How long the code ran, in milliseconds (for a cached result, the run that "
        "produced it)."
    )
    ignored_filters: list[str] = strawberry.field(
        description="Filters on columns the card's datasets lack: ignored, and named here."
    )
    metrics: JSON | None = strawberry.field(
        description="Numbers the card returned (HTMLResult(metrics={...})): name → number."
    )
    table: CardTable | None = strawberry.field(
        description="The table the card returned (HTMLResult(table=...)); null when none."
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
            metrics=JSON(record.metrics) if record.metrics is not None else None,
            table=(
                CardTable(
                    columns=list(record.table.columns),
                    row_count=record.table.row_count,
                    result=record,
                )
                if record.table is not None
                else None
            ),
            record=record,
        )

    @field(description="HTML meant for a sandboxed iframe (never the host page).")
    async def html(self, info: Info) -> str:
        return await info.context.services.cards.result_html(self.record)


@strawberry.type(description="One run of a card (or of draft code, when `card` is null).")
class CardExecution(Execution):
    result: CardResult | None = strawberry.field(
        description="The chart, once SUCCEEDED; null until then and when the run fails."
    )
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

    @field(
        description="The card that ran; null for a previewCard run, or once the caller may no "
        "longer read the card."
    )
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


@strawberry.input(description="A new card, owned by the caller.")
class CreateCardInput:
    name: str = strawberry.field(description=CARD_NAME)
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=CARD_DESCRIPTION
    )
    type: CardType = strawberry.field(
        default=CardType.CODE, description="CODE runs `code`; TEXT shows it as it is."
    )
    code: str = strawberry.field(description=CARD_CODE)
    dataset_ids: list[strawberry.ID] = strawberry.field(
        description=CARD_DATASETS + " A CODE card needs at least one."
    )
    params: JSON | None = strawberry.field(default=strawberry.UNSET, description=CARD_PARAMS)
    workspace_key: str | None = strawberry.field(
        default=strawberry.UNSET, description=WORKSPACE_KEY
    )


@strawberry.input(description="Changes to one of the caller's cards; fields left out stay.")
class UpdateCardInput:
    id: strawberry.ID = strawberry.field(description="The card to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=CARD_NAME)
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=CARD_DESCRIPTION
    )
    code: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=CARD_CODE + " New code forgets the columns the old code used.",
    )
    dataset_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description=CARD_DATASETS
    )
    params: JSON | None = strawberry.field(
        default=strawberry.UNSET, description=CARD_PARAMS + " Null clears them."
    )
    workspace_key: str | None = strawberry.field(
        default=strawberry.UNSET, description=WORKSPACE_KEY + " Null clears it."
    )
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="The card's version as read; CONFLICT when it changed since.",
    )


@strawberry.type(description="The card a mutation created or changed.")
class CardPayload:
    card: Card = strawberry.field(description="The card as it is now.")


@strawberry.input(description="A platform-applied filter on one column of the card's dataset.")
class ColumnFilterInput:
    column: str = strawberry.field(
        description="The column to filter; datasets without it ignore the filter (see "
        "CardResult.ignoredFilters)."
    )
    values: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="CATEGORY: keep rows whose value is in this list."
    )
    start: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="DATE_RANGE / NUMBER_RANGE bounds, inclusive; either may be omitted.",
    )
    end: str | None = strawberry.field(
        default=strawberry.UNSET, description="The upper bound of a range, inclusive; see start."
    )
    include_null: bool = strawberry.field(
        default=False, description="Keep rows whose value in the column is null as well."
    )

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


@strawberry.input(description="Draft card code to run once, without saving a card.")
class PreviewCardInput:
    code: str = strawberry.field(
        description="Python defining `render(dataset, filters, params)`; at most 256 KiB."
    )
    dataset_ids: list[strawberry.ID] = strawberry.field(description=CARD_DATASETS)
    filters: list[ColumnFilterInput] | None = strawberry.field(
        default=strawberry.UNSET, description=RUN_FILTERS
    )
    params: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="A JSON object passed to render() as `params`."
    )


@strawberry.input(description="One run of a saved card.")
class ExecuteCardInput:
    id: strawberry.ID = strawberry.field(description="The card to run.")
    dashboard_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="The dashboard the card is shown on; grants VIEWERs of it the right to run "
        "the card.",
    )
    filters: list[ColumnFilterInput] | None = strawberry.field(
        default=strawberry.UNSET, description=RUN_FILTERS
    )
    params: JSON | None = strawberry.field(default=strawberry.UNSET, description=RUN_PARAMS)
    use_cache: bool = strawberry.field(default=True, description=USE_CACHE)


@strawberry.type(description="The run a mutation started (or answered from the cache).")
class CardExecutionPayload:
    execution: CardExecution = strawberry.field(
        description="Follow it with Subscription.cardExecution."
    )
