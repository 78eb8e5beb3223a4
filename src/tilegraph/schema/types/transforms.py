"""Transforms and their runs."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.context import Info
from tilegraph.domain.errors import NotFound
from tilegraph.domain.transforms import TransformRecord, TransformRunRecord
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.enums import TriggerType
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.common import WORKSPACE_KEY, WORKSPACE_KEY_FIELD
from tilegraph.schema.types.datasets import Dataset, load_dataset
from tilegraph.schema.types.executions import Execution, ExecutionError
from tilegraph.schema.types.revisions import Revision, revisions_of_owned
from tilegraph.schema.types.users import User, load_owner
from tilegraph.schema.values import given, page_size

TRANSFORM_NAME = "1 to 200 characters; the output dataset is named after it."
TRANSFORM_INPUTS = (
    "The caller's own datasets to read, 1 to 10, in the order `inputs` (and df_0, df_1, ...) "
    "get them."
)
TRANSFORM_CODE = (
    "Python defining `transform(inputs, params)` that returns a DataFrame, or plain code that "
    "assigns a DataFrame to `result`; at most 256 KiB."
)
SCHEDULE_CRON = (
    "A cron expression in UTC (5 fields, or 6 with seconds) whose runs are at least the "
    "server's minimum interval apart (60 s by default)."
)
SCHEDULE_ENABLED = "Run on the schedule; needs scheduleCron."
TRANSFORM_PARAMS = "A JSON object of at most 64 KiB, passed to the code as `params`."


@strawberry.type(
    description="Python code that turns datasets into a new dataset, by hand or on a schedule."
)
class Transform(Node):
    name: str = strawberry.field(description="Shown wherever the transform is listed.")
    code: str = strawberry.field(
        description="Python defining `transform(inputs, params)`, or plain code that assigns "
        "`result`."
    )
    params: JSON | None = strawberry.field(
        description="Passed to `transform(inputs, params)` (and bound as `params` for inline code)."
    )
    schedule_cron: str | None = strawberry.field(
        description="When scheduled runs happen: a cron expression in UTC; null when none."
    )
    schedule_enabled: bool = strawberry.field(
        description="Whether the schedule is on; a scheduled run never overlaps one in progress."
    )
    next_run_at: datetime | None = strawberry.field(
        description="Next scheduled run (UTC), when scheduleEnabled."
    )
    created_at: datetime = strawberry.field(description="When the transform was created.")
    updated_at: datetime = strawberry.field(description="When the transform was last changed.")
    version: int = strawberry.field(
        description="Changes with every save; pass it as expectedVersion to update only what "
        "you read."
    )
    workspace_key: str | None = strawberry.field(description=WORKSPACE_KEY_FIELD)
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
            version=record.version,
            workspace_key=record.workspace_key,
            record=record,
        )

    @field(
        description="Who created the transform; it reads only their datasets and writes one of "
        "theirs."
    )
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)

    @field(description="The datasets the code reads, in the order given (deleted ones left out).")
    async def input_datasets(self, info: Info) -> list[Dataset]:
        records = await info.context.loaders.datasets.load_many(list(self.record.input_dataset_ids))
        return [Dataset.from_record(r) for r in records if r is not None]

    @field(
        description="The dataset the runs write (a TRANSFORM dataset); null until the first "
        "successful run creates it. It stays when the transform is deleted."
    )
    async def output_dataset(self, info: Info) -> Dataset | None:
        return await load_dataset(info, self.record.output_dataset_id)

    @field(description="Newest first. The transform's owner only.")
    async def revisions(
        self, info: Info, first: First = 20, after: After = strawberry.UNSET
    ) -> Connection[Revision]:
        return await revisions_of_owned(
            info, self.record.owner_id, self.record.id, first, given(after)
        )

    @field(description="The transform's runs, manual and scheduled, newest first.")
    async def executions(
        self, info: Info, first: First = 20, after: After = strawberry.UNSET
    ) -> Connection[TransformExecution]:
        page = await info.context.services.transforms.runs_page(
            self.record, page_size(first, 20), given(after)
        )
        return connection_from_page(page, TransformExecution.from_record)


@strawberry.type(description="One run of a transform.")
class TransformExecution(Execution):
    triggered_by: TriggerType = strawberry.field(description="What started the run.")
    duration_ms: float | None = strawberry.field(
        description="How long the run took, in milliseconds; null until it SUCCEEDED."
    )
    output_row_count: int | None = strawberry.field(
        description="Rows the run wrote to the output dataset; null until it SUCCEEDED."
    )
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

    @field(description="The transform that ran.")
    async def transform(self, info: Info) -> Transform:
        record = await info.context.loaders.transforms.load(self.record.transform_id)
        if record is None:
            raise NotFound("The transform was deleted")
        return Transform.from_record(record)

    @field(description="The dataset the run wrote; null until it SUCCEEDED.")
    async def output_dataset(self, info: Info) -> Dataset | None:
        return await load_dataset(info, self.record.output_dataset_id)


@strawberry.input(description="A new transform, owned by the caller.")
class CreateTransformInput:
    name: str = strawberry.field(description=TRANSFORM_NAME)
    input_dataset_ids: list[strawberry.ID] = strawberry.field(description=TRANSFORM_INPUTS)
    code: str = strawberry.field(description=TRANSFORM_CODE)
    schedule_cron: str | None = strawberry.field(
        default=strawberry.UNSET, description=SCHEDULE_CRON
    )
    schedule_enabled: bool = strawberry.field(default=False, description=SCHEDULE_ENABLED)
    params: JSON | None = strawberry.field(default=strawberry.UNSET, description=TRANSFORM_PARAMS)
    workspace_key: str | None = strawberry.field(
        default=strawberry.UNSET, description=WORKSPACE_KEY
    )


@strawberry.input(description="Changes to one of the caller's transforms; fields left out stay.")
class UpdateTransformInput:
    id: strawberry.ID = strawberry.field(description="The transform to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=TRANSFORM_NAME)
    input_dataset_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description=TRANSFORM_INPUTS
    )
    code: str | None = strawberry.field(default=strawberry.UNSET, description=TRANSFORM_CODE)
    schedule_cron: str | None = strawberry.field(
        default=strawberry.UNSET, description=SCHEDULE_CRON + " Null clears it."
    )
    schedule_enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description=SCHEDULE_ENABLED
    )
    params: JSON | None = strawberry.field(
        default=strawberry.UNSET, description=TRANSFORM_PARAMS + " Null clears them."
    )
    workspace_key: str | None = strawberry.field(
        default=strawberry.UNSET, description=WORKSPACE_KEY + " Null clears it."
    )
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="The transform's version as read; CONFLICT when it changed since (its "
        "schedule moving on counts as a change).",
    )


@strawberry.type(description="The transform a mutation created or changed.")
class TransformPayload:
    transform: Transform = strawberry.field(description="The transform as it is now.")


@strawberry.input(description="Starts a run of a transform now.")
class ExecuteTransformInput:
    id: strawberry.ID = strawberry.field(
        description="The transform; CONFLICT while one of its runs is in progress."
    )


@strawberry.type(description="The run executeTransform started.")
class TransformExecutionPayload:
    execution: TransformExecution = strawberry.field(
        description="Follow it with Subscription.transformExecution."
    )
