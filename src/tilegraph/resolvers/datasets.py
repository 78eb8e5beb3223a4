"""Dataset queries and mutations."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, cast

import strawberry
from starlette.datastructures import UploadFile

from tilegraph.context import Info
from tilegraph.resolvers.executions import DATASET_IMPORT, follow_execution
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.types.common import DeleteInput, DeletePayload
from tilegraph.schema.types.datasets import (
    Dataset,
    DatasetImport,
    DatasetImportPayload,
    DatasetPayload,
    ImportDatasetFromS3Input,
    ReimportDatasetInput,
    SchemaChange,
    UpdateDatasetInput,
    UploadDatasetInput,
)
from tilegraph.schema.types.lineage import ReimportPlan
from tilegraph.schema.values import given, page_size


async def datasets(
    info: Info, first: First = 50, after: After = strawberry.UNSET
) -> Connection[Dataset]:
    principal = info.context.principal
    page = await info.context.services.datasets.list_page(
        principal, page_size(first, 50), given(after)
    )
    return connection_from_page(page, Dataset.from_record)


async def dataset(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The dataset (Dataset.id).")],
) -> Dataset | None:
    principal = info.context.principal
    return Dataset.from_record(await info.context.services.datasets.get_owned(principal, str(id)))


async def dataset_import(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(description="The import (DatasetImportPayload.import.id)."),
    ],
) -> DatasetImport | None:
    principal = info.context.principal
    record = await info.context.services.datasets.get_import(principal, str(id))
    return DatasetImport.from_record(record)


async def upload_dataset(
    info: Info,
    input: Annotated[
        UploadDatasetInput, strawberry.argument(description="The file and how to read it.")
    ],
) -> DatasetImportPayload:
    ctx = info.context
    principal = ctx.principal
    dataset, record = await ctx.services.datasets.upload(
        principal,
        name=input.name,
        description=given(input.description),
        read=cast(UploadFile, input.file).read,  # Starlette spools it to disk
        encoding=given(input.encoding),
        delimiter=given(input.delimiter),
        null_values=given(input.null_values),
        request_id=ctx.request_id,
    )
    return DatasetImportPayload(
        dataset=Dataset.from_record(dataset), import_=DatasetImport.from_record(record)
    )


async def import_dataset_from_s3(
    info: Info,
    input: Annotated[
        ImportDatasetFromS3Input,
        strawberry.argument(description="The S3 object and how to read it."),
    ],
) -> DatasetImportPayload:
    ctx = info.context
    principal = ctx.principal
    dataset, record = await ctx.services.datasets.import_from_s3(
        principal,
        name=input.name,
        description=given(input.description),
        bucket=input.bucket,
        key=input.key,
        encoding=given(input.encoding),
        delimiter=given(input.delimiter),
        null_values=given(input.null_values),
        request_id=ctx.request_id,
    )
    return DatasetImportPayload(
        dataset=Dataset.from_record(dataset), import_=DatasetImport.from_record(record)
    )


async def update_dataset(
    info: Info,
    input: Annotated[
        UpdateDatasetInput, strawberry.argument(description="The dataset and what to change.")
    ],
) -> DatasetPayload:
    principal = info.context.principal
    columns = given(input.columns)
    record = await info.context.services.datasets.update(
        principal,
        str(input.id),
        name=given(input.name),
        description=given(input.description),
        column_descriptions={c.name: given(c.description) for c in columns} if columns else None,
        default_access=given(input.default_access),
        request_id=info.context.request_id,
    )
    return DatasetPayload(dataset=Dataset.from_record(record))


async def delete_dataset(
    info: Info,
    input: Annotated[
        DeleteInput,
        strawberry.argument(
            description="The dataset, and whether to delete it while it is in use."
        ),
    ],
) -> DeletePayload:
    ctx = info.context
    principal = ctx.principal
    deleted = await ctx.services.datasets.delete(
        principal, str(input.id), force=input.force, request_id=ctx.request_id
    )
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def plan_dataset_reimport(
    info: Info,
    input: Annotated[
        DeleteInput,
        strawberry.argument(description="The S3 dataset to check; `force` plays no part."),
    ],
) -> ReimportPlan:
    principal = info.context.principal
    plan = await info.context.services.datasets.plan_reimport(principal, str(input.id))
    return ReimportPlan(
        has_schema_changes=bool(plan.changes),
        changes=[SchemaChange.from_record(c) for c in plan.changes],
        new_row_count=plan.new_row_count,
        new_column_count=plan.new_column_count,
        dataset=plan.dataset,
        change_records=plan.changes,
    )


async def reimport_dataset(
    info: Info,
    input: Annotated[
        ReimportDatasetInput,
        strawberry.argument(description="The S3 dataset, and whether to accept schema changes."),
    ],
) -> DatasetImportPayload:
    principal = info.context.principal
    dataset, record = await info.context.services.datasets.reimport(
        principal, str(input.id), force=input.force
    )
    return DatasetImportPayload(
        dataset=Dataset.from_record(dataset), import_=DatasetImport.from_record(record)
    )


async def dataset_import_updates(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(description="The import to follow (DatasetImportPayload.import.id)."),
    ],
) -> AsyncGenerator[DatasetImport, None]:
    async for update in follow_execution(info, str(id), DATASET_IMPORT):
        yield update
