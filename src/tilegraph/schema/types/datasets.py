"""Datasets, their imports, previews and re-import plans."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload

from tilegraph.context import Info
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.errors import NotFound
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.ownership import only_owner
from tilegraph.domain.schema_diff import SchemaChange as SchemaChangeRecord
from tilegraph.schema.enums import (
    ColumnType,
    DatasetSourceType,
    SchemaChangeType,
)
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.executions import Execution, ExecutionError
from tilegraph.schema.types.users import User, load_owner, load_user
from tilegraph.schema.values import given, page_size


@strawberry.type
class Column:
    name: str
    type: ColumnType
    nullable: bool
    description: str | None


@strawberry.type
class DatasetPreview:
    columns: list[str]
    rows: list[list[JSON | None]] = strawberry.field(
        description="Row-major values, JSON-encoded per cell (dates as ISO strings)."
    )
    total_rows: int
    preview_rows: int


@strawberry.type
class Dataset(Node):
    name: str
    description: str | None
    source_type: DatasetSourceType
    row_count: int
    column_count: int
    columns: list[Column]
    version: int = strawberry.field(
        description="Incremented by every successful import; cache keys depend on it."
    )
    last_import_at: datetime | None
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[DatasetRecord]

    @classmethod
    def from_record(cls, record: DatasetRecord) -> Dataset:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            description=record.description,
            source_type=record.source_type,
            row_count=record.row_count,
            column_count=len(record.columns),
            columns=[
                Column(name=c.name, type=c.type, nullable=c.nullable, description=c.description)
                for c in record.columns
            ],
            version=record.version,
            last_import_at=record.last_import_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    @classmethod
    def maybe(cls, record: DatasetRecord | None) -> Dataset | None:
        return cls.from_record(record) if record is not None else None

    @field(
        description="For S3_CSV: bucket, key, encoding, delimiter, nullValues. "
        "For TRANSFORM: transformId. "
        "The owner's only (FORBIDDEN for anyone else)."
    )
    def source_config(self, info: Info) -> JSON | None:
        only_owner(self.record, info.context.principal, "a dataset's source")
        return JSON(self.record.source_config) if self.record.source_config else None

    @strawberry.field
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)

    @strawberry.field
    async def last_import_by(self, info: Info) -> User | None:
        return await load_user(info, self.record.last_import_by)

    @field(description="The newest import job of this dataset, finished or not.")
    async def latest_import(self, info: Info) -> DatasetImport | None:
        if not self.record.latest_import_id:
            return None
        record = await info.context.loaders.imports.load(self.record.latest_import_id)
        return DatasetImport.maybe(record)

    @field(description="The first rows: the owner's only (FORBIDDEN for anyone else).")
    async def preview(self, info: Info, limit: int | None = 100) -> DatasetPreview:
        only_owner(self.record, info.context.principal, "a dataset's rows")
        info.context.spend_data_read()
        preview = await info.context.services.datasets.preview(self.record, page_size(limit, 100))
        return DatasetPreview(
            columns=preview.columns,
            rows=preview.rows,  # JSON cells: plain values, already JSON-safe
            total_rows=preview.total_rows,
            preview_rows=len(preview.rows),
        )

    @field(
        description="Distinct non-null values as strings, sorted: the owner's only "
        "(dashboard readers get filter options from FilterDefinition.values)."
    )
    async def column_values(
        self,
        info: Info,
        column: str,
        search: str | None = strawberry.UNSET,
        limit: int | None = 500,
    ) -> list[str]:
        only_owner(self.record, info.context.principal, "a dataset's values")
        info.context.spend_data_read()
        return await info.context.services.datasets.column_values(
            self.record, column, given(search), page_size(limit, 500)
        )


@strawberry.type(
    description="An ingest job: parse, infer types, write Parquet, publish a new version."
)
class DatasetImport(Execution):
    rows_processed: int | None
    bytes_processed: int | None
    record: strawberry.Private[ImportRecord]

    @classmethod
    def from_record(cls, record: ImportRecord) -> DatasetImport:
        return cls(
            id=strawberry.ID(record.id),
            status=record.status,
            progress=record.progress,
            rows_processed=record.rows_processed,
            bytes_processed=record.bytes_processed,
            error=ExecutionError.maybe(record.error),
            queued_at=record.queued_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            record=record,
        )

    @classmethod
    def maybe(cls, record: ImportRecord | None) -> DatasetImport | None:
        return cls.from_record(record) if record is not None else None

    @strawberry.field
    async def dataset(self, info: Info) -> Dataset:
        dataset = await load_dataset(info, self.record.dataset_id)
        if dataset is None:
            raise NotFound("The dataset was deleted")
        return dataset


@strawberry.type
class SchemaChange:
    column_name: str
    change_type: SchemaChangeType
    old_value: str | None
    new_value: str | None

    @classmethod
    def from_record(cls, record: SchemaChangeRecord) -> SchemaChange:
        return cls(
            column_name=record.column_name,
            change_type=record.change_type,
            old_value=record.old_value,
            new_value=record.new_value,
        )


@strawberry.type
class ReimportPlan:
    has_schema_changes: bool
    changes: list[SchemaChange]
    new_row_count: int
    new_column_count: int


@strawberry.input
class UploadDatasetInput:
    name: str
    description: str | None = strawberry.UNSET
    file: Upload
    encoding: str | None = strawberry.field(
        default=strawberry.UNSET, description="Detected when omitted."
    )
    delimiter: str | None = strawberry.field(
        default=strawberry.UNSET, description="Detected when omitted."
    )
    null_values: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description='Cell values read as null. Default: "", NA, N/A, NULL, null, None, NaN, '
        "nan, #N/A, n/a\n(pandas' defaults); [] keeps every value as written.",
    )


@strawberry.input
class ImportDatasetFromS3Input:
    name: str
    description: str | None = strawberry.UNSET
    bucket: str
    key: str
    encoding: str | None = strawberry.UNSET
    delimiter: str | None = strawberry.UNSET
    null_values: list[str] | None = strawberry.UNSET


async def load_dataset(info: Info, dataset_id: str | None) -> Dataset | None:
    """The dataset with this id, batched with every other dataset loaded in the same tick."""
    if not dataset_id:
        return None
    return Dataset.maybe(await info.context.loaders.datasets.load(dataset_id))


@strawberry.type
class DatasetImportPayload:
    dataset: Dataset
    import_: DatasetImport = strawberry.field(
        name="import", description="Follow it with Subscription.datasetImport."
    )


@strawberry.input
class ColumnDescriptionInput:
    name: str
    description: str | None = strawberry.UNSET


@strawberry.input
class UpdateDatasetInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    columns: list[ColumnDescriptionInput] | None = strawberry.UNSET


@strawberry.type
class DatasetPayload:
    dataset: Dataset


@strawberry.input
class ReimportDatasetInput:
    id: strawberry.ID
    force: bool = strawberry.field(
        default=False, description="Proceed even when the schema changed."
    )
