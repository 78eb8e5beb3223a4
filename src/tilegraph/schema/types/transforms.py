"""Transforms and their runs."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.context import Info
from tilegraph.domain.errors import NotFound
from tilegraph.domain.transforms import TransformRecord, TransformRunRecord
from tilegraph.schema.connections import Connection, connection_from_page
from tilegraph.schema.enums import TriggerType
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.datasets import Dataset, load_dataset
from tilegraph.schema.types.executions import Execution, ExecutionError
from tilegraph.schema.types.users import User, load_owner
from tilegraph.schema.values import given, page_size


@strawberry.type
class Transform(Node):
    name: str
    code: str
    params: JSON | None = strawberry.field(
        description="Passed to `transform(inputs, params)` (and bound as `params` for inline code)."
    )
    schedule_cron: str | None
    schedule_enabled: bool
    next_run_at: datetime | None = strawberry.field(
        description="Next scheduled run (UTC), when scheduleEnabled."
    )
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[TransformRecord]

    @classmethod
    def from_record(cls, record: TransformRecord) -> Transform:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            code=record.code,
            params=JSON(record.params) if record.params is not None else None,
            schedule_cron=record.schedule_cron,
            schedule_enabled=record.schedule_enabled,
            next_run_at=record.next_run_at if record.schedule_enabled else None,
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    @strawberry.field
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)

    @strawberry.field
    async def input_datasets(self, info: Info) -> list[Dataset]:
        records = await info.context.loaders.datasets.load_many(list(self.record.input_dataset_ids))
        return [Dataset.from_record(r) for r in records if r is not None]

    @strawberry.field
    async def output_dataset(self, info: Info) -> Dataset | None:
        return await load_dataset(info, self.record.output_dataset_id)

    @strawberry.field
    async def executions(
        self, info: Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[TransformExecution]:
        page = await info.context.services.transforms.runs_page(
            self.record, page_size(first, 20), given(after)
        )
        return connection_from_page(page, TransformExecution.from_record)


@strawberry.type
class TransformExecution(Execution):
    triggered_by: TriggerType
    duration_ms: float | None
    output_row_count: int | None
    record: strawberry.Private[TransformRunRecord]

    @classmethod
    def from_record(cls, record: TransformRunRecord) -> TransformExecution:
        return cls(
            id=strawberry.ID(record.id),
            status=record.status,
            triggered_by=record.triggered_by,
            progress=record.progress,
            queued_at=record.queued_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            duration_ms=record.duration_ms,
            output_row_count=record.output_row_count,
            error=ExecutionError.maybe(record.error),
            record=record,
        )

    @strawberry.field
    async def transform(self, info: Info) -> Transform:
        record = await info.context.loaders.transforms.load(self.record.transform_id)
        if record is None:
            raise NotFound("The transform was deleted")
        return Transform.from_record(record)

    @strawberry.field
    async def output_dataset(self, info: Info) -> Dataset | None:
        return await load_dataset(info, self.record.output_dataset_id)


@strawberry.input
class CreateTransformInput:
    name: str
    input_dataset_ids: list[strawberry.ID]
    code: str
    schedule_cron: str | None = strawberry.UNSET
    schedule_enabled: bool = False
    params: JSON | None = strawberry.UNSET


@strawberry.input
class UpdateTransformInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    input_dataset_ids: list[strawberry.ID] | None = strawberry.UNSET
    code: str | None = strawberry.UNSET
    schedule_cron: str | None = strawberry.UNSET
    schedule_enabled: bool | None = strawberry.UNSET
    params: JSON | None = strawberry.UNSET


@strawberry.type
class TransformPayload:
    transform: Transform


@strawberry.input
class ExecuteTransformInput:
    id: strawberry.ID


@strawberry.type
class TransformExecutionPayload:
    execution: TransformExecution = strawberry.field(
        description="Follow it with Subscription.transformExecution."
    )
