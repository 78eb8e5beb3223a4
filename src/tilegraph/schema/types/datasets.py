"""Datasets, their imports, previews and re-import plans."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.file_uploads import Upload

from tilegraph.context import Info
from tilegraph.domain.dashboards import ShareTargetType as DomainShareTargetType
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.errors import NotFound
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.ownership import only_owner
from tilegraph.domain.policies import FULL_ACCESS, DatasetPolicyRecord, EffectiveAccess
from tilegraph.domain.policies import PolicyRowFilter as PolicyRowFilterRecord
from tilegraph.domain.schema_diff import SchemaChange as SchemaChangeRecord
from tilegraph.schema.enums import (
    ColumnType,
    DatasetAccessDefault,
    DatasetSourceType,
    SchemaChangeType,
    ShareTargetType,
)
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.executions import Execution, ExecutionError
from tilegraph.schema.types.users import Group, User, load_owner, load_user
from tilegraph.schema.values import given, page_size

DATASET_NAME = "1 to 200 characters."
DATASET_DESCRIPTION = "Free text about the dataset, up to 10,000 characters."
ENCODING = "Detected when omitted. The file's text encoding: a codec name such as utf-8 or cp932."
DELIMITER = "Detected when omitted. One of , ; | or a tab."
VALUE_SEARCH = "Only values containing this text, ignoring letter case."
VALUE_LIMIT = "How many values at most: 1 to the server's limit (500 by default)."
NULL_VALUES = (
    'Cell values read as null. Default: "", NA, N/A, NULL, null, None, NaN, nan, #N/A, n/a\n'
    "(pandas' defaults); [] keeps every value as written. At most 50 values of at most 64 "
    "characters each."
)


@strawberry.type(description="One column of a dataset.")
class Column:
    name: str = strawberry.field(
        description="As in the file's header (or the transform's DataFrame)."
    )
    type: ColumnType = strawberry.field(description="Inferred from the data when it is written.")
    nullable: bool = strawberry.field(description="True when the column holds null values.")
    description: str | None = strawberry.field(
        description="Free text set with updateDataset; null when none."
    )


@strawberry.type(description="The first rows of a dataset.")
class DatasetPreview:
    columns: list[str] = strawberry.field(description="The column names, in the order of each row.")
    rows: list[list[JSON | None]] = strawberry.field(
        description="Row-major values, JSON-encoded per cell (dates as ISO strings)."
    )
    total_rows: int = strawberry.field(description="How many rows the whole dataset has.")
    preview_rows: int = strawberry.field(description="How many rows `rows` holds.")


@strawberry.type(
    description="A table of typed columns, imported from a CSV file or written by a transform. "
    "Its rows are its owner's only: dashboard readers see its name and columns, and what cards "
    "render from it."
)
class Dataset(Node):
    name: str = strawberry.field(description="Shown wherever the dataset is listed.")
    description: str | None = strawberry.field(description="Free text about the dataset.")
    source_type: DatasetSourceType = strawberry.field(description="Where the rows come from.")
    version: int = strawberry.field(
        description="Incremented by every successful import; cache keys depend on it."
    )
    last_import_at: datetime | None = strawberry.field(
        description="When the current version was published; null before the first import."
    )
    created_at: datetime = strawberry.field(description="When the dataset was created.")
    updated_at: datetime = strawberry.field(
        description="When the dataset last changed: a new version, or its name or descriptions."
    )
    default_access: DatasetAccessDefault = strawberry.field(
        description="What readers matching none of its policies see; FULL unless changed "
        "with updateDataset."
    )
    record: strawberry.Private[DatasetRecord]

    @classmethod
    def from_record(cls, record: DatasetRecord) -> Dataset:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            description=record.description,
            source_type=record.source_type,
            version=record.version,
            last_import_at=record.last_import_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
            default_access=record.default_access,
            record=record,
        )

    @classmethod
    def maybe(cls, record: DatasetRecord | None) -> Dataset | None:
        return cls.from_record(record) if record is not None else None

    async def _seen(self, info: Info) -> EffectiveAccess:
        """What the caller sees of the dataset: everything for its owner, else what its
        policies show them (a reader reaches a dataset only through a shared dashboard)."""
        ctx = info.context
        principal = ctx.principal
        if principal is None or principal.user_id == self.record.owner_id:
            return FULL_ACCESS
        found = await ctx.services.policies.access_to([self.record], principal.user_id, ctx.loaders)
        return found[self.record.id]

    @field(
        description="Rows in the current version; 0 before the first import. A reader "
        "limited by a policy gets the rows the policy shows them."
    )
    async def row_count(self, info: Info) -> int:
        seen = await self._seen(info)
        if seen.row_condition is not None and seen.any_rows:
            info.context.spend_data_read()
        return await info.context.services.datasets.visible_row_count(self.record, seen)

    @field(description="How many columns `columns` lists.")
    async def column_count(self, info: Info) -> int:
        return len(await self.columns(info))

    @field(
        description="The current version's columns, in file order; empty before the first "
        "import. Columns a policy hides from the caller are left out."
    )
    async def columns(self, info: Info) -> list[Column]:
        hidden = set((await self._seen(info)).hidden_columns)
        return [
            Column(name=c.name, type=c.type, nullable=c.nullable, description=c.description)
            for c in self.record.columns
            if c.name not in hidden
        ]

    @field(description="Owner only (FORBIDDEN for anyone else); ordered by target.")
    async def policies(self, info: Info) -> list[DatasetPolicy]:
        only_owner(self.record, info.context.principal, "a dataset's policies")
        records = await info.context.loaders.policies_of_dataset.load(self.record.id)
        return [DatasetPolicy.from_record(r) for r in records]

    @field(
        description="Owner only (FORBIDDEN for anyone else): what this user would see of "
        "the dataset through a shared dashboard."
    )
    async def effective_access(
        self,
        info: Info,
        user_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The reader (User.id); NOT_FOUND when unknown."),
        ],
    ) -> EffectiveDatasetAccess:
        principal = info.context.principal
        only_owner(self.record, principal, "a dataset's policies")
        explained = await info.context.services.policies.explain(
            principal, self.record, str(user_id)
        )
        access = explained.access
        return EffectiveDatasetAccess(
            dataset=self,
            user=User.from_record(explained.reader),
            policies=[DatasetPolicy.from_record(p) for p in access.policies],
            full=access.full,
            any_rows=access.any_rows,
            hidden_columns=list(access.hidden_columns),
            row_condition=access.readable_condition,
        )

    @field(
        description="For S3_CSV: bucket, key, encoding, delimiter, nullValues. "
        "For TRANSFORM: transformId. "
        "The owner's only (FORBIDDEN for anyone else)."
    )
    def source_config(self, info: Info) -> JSON | None:
        only_owner(self.record, info.context.principal, "a dataset's source")
        return JSON(self.record.source_config) if self.record.source_config else None

    @field(description="Who created the dataset; only they may read its rows or change it.")
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)

    @field(
        description="Who started the import or transform run that published the current "
        "version; null before the first import and for scheduled runs."
    )
    async def last_import_by(self, info: Info) -> User | None:
        return await load_user(info, self.record.last_import_by)

    @field(description="The newest import job of this dataset, finished or not.")
    async def latest_import(self, info: Info) -> DatasetImport | None:
        if not self.record.latest_import_id:
            return None
        record = await info.context.loaders.imports.load(self.record.latest_import_id)
        return DatasetImport.maybe(record)

    @field(description="The first rows: the owner's only (FORBIDDEN for anyone else).")
    async def preview(
        self,
        info: Info,
        limit: Annotated[
            int | None,
            strawberry.argument(
                description="How many rows: 1 to the server's limit (1,000 by default)."
            ),
        ] = 100,
    ) -> DatasetPreview:
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
        column: Annotated[
            str, strawberry.argument(description="The column's name; BAD_USER_INPUT if unknown.")
        ],
        search: Annotated[str | None, strawberry.argument(description=VALUE_SEARCH)] = (
            strawberry.UNSET
        ),
        limit: Annotated[
            int | None,
            strawberry.argument(description=VALUE_LIMIT),
        ] = 500,
    ) -> list[str]:
        only_owner(self.record, info.context.principal, "a dataset's values")
        info.context.spend_data_read()
        return await info.context.services.datasets.column_values(
            self.record, column, given(search), page_size(limit, 500)
        )


@strawberry.type(
    description="One condition on a column; a row is visible when every condition of the "
    "policy holds."
)
class PolicyRowFilter:
    column: str = strawberry.field(description="A column of the dataset.")
    values: list[str] | None = strawberry.field(
        description="Rows whose value, as a string, is one of these."
    )
    user_attribute: str | None = strawberry.field(
        description="Rows whose value, as a string, equals the reading user's attribute of "
        "this name (User.attributes); a list attribute matches any of its values. A reader "
        "without the attribute sees no rows (fail closed)."
    )

    @classmethod
    def from_record(cls, record: PolicyRowFilterRecord) -> PolicyRowFilter:
        values = list(record.values) if record.values is not None else None
        return cls(column=record.column, values=values, user_attribute=record.user_attribute)


@strawberry.type(
    description="Limits what one user or group sees of a dataset. A reader with a USER policy "
    "gets that policy alone; otherwise the reader's GROUP policies are combined: a row is "
    "visible when any of them shows it, and a column is hidden only when all of them hide it. "
    "A reader matching no policy gets the dataset's `defaultAccess`."
)
class DatasetPolicy(Node):
    target_type: ShareTargetType = strawberry.field(
        description="Whether `user` or `group` is limited."
    )
    row_filters: list[PolicyRowFilter] = strawberry.field(
        description="All must hold. Empty: every row."
    )
    hidden_columns: list[str] = strawberry.field(
        description="Removed before the data reaches code, previews, filter options or the chatbot."
    )
    version: int = strawberry.field(
        description="Incremented by every change; updateDatasetPolicy's expectedVersion "
        "compares with it."
    )
    created_at: datetime = strawberry.field(description="When the policy was created.")
    updated_at: datetime = strawberry.field(description="When the policy last changed.")
    record: strawberry.Private[DatasetPolicyRecord]

    @classmethod
    def from_record(cls, record: DatasetPolicyRecord) -> DatasetPolicy:
        return cls(
            id=strawberry.ID(record.id),
            target_type=record.target_type,
            row_filters=[PolicyRowFilter.from_record(f) for f in record.row_filters],
            hidden_columns=list(record.hidden_columns),
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    @field(description="The dataset the policy limits.")
    async def dataset(self, info: Info) -> Dataset:
        dataset = await load_dataset(info, self.record.dataset_id)
        if dataset is None:
            raise NotFound("The dataset was deleted")
        return dataset

    @field(description="Set when targetType is USER.")
    async def user(self, info: Info) -> User | None:
        if self.record.target_type is not DomainShareTargetType.USER:
            return None
        return await load_user(info, self.record.target_id)

    @field(description="Set when targetType is GROUP.")
    async def group(self, info: Info) -> Group | None:
        if self.record.target_type is not DomainShareTargetType.GROUP:
            return None
        return Group.maybe(await info.context.loaders.groups.load(self.record.target_id))


@strawberry.type(description="What one reader would see of a dataset, resolved from its policies.")
class EffectiveDatasetAccess:
    dataset: Dataset = strawberry.field(description="The dataset asked about.")
    user: User = strawberry.field(description="The reader asked about.")
    policies: list[DatasetPolicy] = strawberry.field(
        description="The policies that apply (empty when the default applies or the reader "
        "is the owner)."
    )
    full: bool = strawberry.field(description="True when the reader sees every row and column.")
    any_rows: bool = strawberry.field(description="False when the reader sees no rows at all.")
    hidden_columns: list[str] = strawberry.field(
        description="The columns the reader does not see, sorted."
    )
    row_condition: str | None = strawberry.field(
        description='A readable summary of the row condition, e.g. "region in (west) AND '
        'country = user.country"; null when every row is visible, "no rows" when the '
        "default NONE applies."
    )


@strawberry.type(
    description="An ingest job: parse, infer types, write Parquet, publish a new version."
)
class DatasetImport(Execution):
    rows_processed: int | None = strawberry.field(
        description="Rows read so far (all of them once SUCCEEDED); null until known."
    )
    bytes_processed: int | None = strawberry.field(
        description="Bytes of the file read so far; null until known."
    )
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

    @field(description="The dataset this import publishes a version of.")
    async def dataset(self, info: Info) -> Dataset:
        dataset = await load_dataset(info, self.record.dataset_id)
        if dataset is None:
            raise NotFound("The dataset was deleted")
        return dataset


@strawberry.type(description="How a re-import would change one column.")
class SchemaChange:
    column_name: str = strawberry.field(description="The column that changes.")
    change_type: SchemaChangeType = strawberry.field(description="What changes about it.")
    old_value: str | None = strawberry.field(
        description="The column type (or nullability) now; null when ADDED."
    )
    new_value: str | None = strawberry.field(
        description="The column type (or nullability) after the re-import; null when REMOVED."
    )

    @classmethod
    def from_record(cls, record: SchemaChangeRecord) -> SchemaChange:
        return cls(
            column_name=record.column_name,
            change_type=record.change_type,
            old_value=record.old_value,
            new_value=record.new_value,
        )


@strawberry.input(
    description="A CSV file to make a dataset of, sent as a part of a GraphQL multipart request."
)
class UploadDatasetInput:
    name: str = strawberry.field(description=DATASET_NAME)
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=DATASET_DESCRIPTION
    )
    file: Upload = strawberry.field(
        description="The CSV file, up to the server's upload limit; not empty."
    )
    encoding: str | None = strawberry.field(default=strawberry.UNSET, description=ENCODING)
    delimiter: str | None = strawberry.field(default=strawberry.UNSET, description=DELIMITER)
    null_values: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description=NULL_VALUES
    )


@strawberry.input(
    description="A CSV object in S3 to make a dataset of; it can be re-imported later."
)
class ImportDatasetFromS3Input:
    name: str = strawberry.field(description=DATASET_NAME)
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=DATASET_DESCRIPTION
    )
    bucket: str = strawberry.field(
        description="A bucket name (not an ARN or URL) the server allows imports from."
    )
    key: str = strawberry.field(description="The object's key, at most 1,024 bytes.")
    encoding: str | None = strawberry.field(
        default=strawberry.UNSET, description=ENCODING + " Kept for every re-import."
    )
    delimiter: str | None = strawberry.field(
        default=strawberry.UNSET, description=DELIMITER + " Kept for every re-import."
    )
    null_values: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description=NULL_VALUES + " Kept for every re-import."
    )


async def load_dataset(info: Info, dataset_id: str | None) -> Dataset | None:
    """The dataset with this id, batched with every other dataset loaded in the same tick."""
    if not dataset_id:
        return None
    return Dataset.maybe(await info.context.loaders.datasets.load(dataset_id))


@strawberry.type(description="A dataset and the import that fills it.")
class DatasetImportPayload:
    dataset: Dataset = strawberry.field(
        description="The dataset; its current version stays readable until the import succeeds."
    )
    import_: DatasetImport = strawberry.field(
        name="import", description="Follow it with Subscription.datasetImport."
    )


@strawberry.input(description="A description for one column.")
class ColumnDescriptionInput:
    name: str = strawberry.field(description="The column; BAD_USER_INPUT if the dataset lacks it.")
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="Up to 10,000 characters; null clears it."
    )


@strawberry.input(
    description="Changes to one of the caller's datasets' metadata; fields left out stay."
)
class UpdateDatasetInput:
    id: strawberry.ID = strawberry.field(description="The dataset to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=DATASET_NAME)
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=DATASET_DESCRIPTION
    )
    columns: list[ColumnDescriptionInput] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Column descriptions to set; columns not listed keep theirs.",
    )
    default_access: DatasetAccessDefault | None = strawberry.field(
        default=strawberry.UNSET,
        description="What readers matching no policy see; null or left out keeps it.",
    )


@strawberry.type(description="The dataset a mutation changed.")
class DatasetPayload:
    dataset: Dataset = strawberry.field(description="The dataset as it is now.")


@strawberry.input(description="Reads a dataset's S3 object again and publishes a new version.")
class ReimportDatasetInput:
    id: strawberry.ID = strawberry.field(
        description="The dataset; only S3_CSV datasets can be re-imported."
    )
    force: bool = strawberry.field(
        default=False, description="Proceed even when the schema changed."
    )


@strawberry.input(description="One condition on a column of a policy.")
class PolicyRowFilterInput:
    column: str = strawberry.field(
        description="A column of the dataset; BAD_USER_INPUT when it has none of this name."
    )
    values: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Exactly one of values and userAttribute."
    )
    user_attribute: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The name of the reader's attribute (User.attributes) the value must equal.",
    )

    def to_record(self) -> PolicyRowFilterRecord:
        values = given(self.values)
        return PolicyRowFilterRecord(
            column=self.column,
            values=tuple(values) if values is not None else None,
            user_attribute=given(self.user_attribute),
        )


@strawberry.input(description="A new policy on one of the caller's datasets.")
class CreateDatasetPolicyInput:
    dataset_id: strawberry.ID = strawberry.field(description="The caller's dataset.")
    target_type: ShareTargetType = strawberry.field(
        description="Whether the policy limits a user or a group."
    )
    target_id: strawberry.ID = strawberry.field(
        description="The user or group; BAD_USER_INPUT when it does not exist."
    )
    row_filters: list[PolicyRowFilterInput] = strawberry.field(
        default_factory=list, description="All must hold. Empty: every row."
    )
    hidden_columns: list[str] = strawberry.field(
        default_factory=list, description="Columns of the dataset the target does not see."
    )


@strawberry.input(description="Changes to a policy; fields left out stay.")
class UpdateDatasetPolicyInput:
    id: strawberry.ID = strawberry.field(description="The policy (DatasetPolicy.id).")
    row_filters: list[PolicyRowFilterInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces every row filter."
    )
    hidden_columns: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the hidden columns."
    )
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="When given and not equal to the stored version, the update fails with "
        "CONFLICT.",
    )


@strawberry.type(description="The policy a mutation created or changed.")
class DatasetPolicyPayload:
    policy: DatasetPolicy = strawberry.field(description="The policy as it is now.")


@strawberry.input(description="The attributes of one user, replaced as a whole.")
class SetUserAttributesInput:
    user_id: strawberry.ID = strawberry.field(description="The account.")
    attributes: JSON = strawberry.field(
        description="Replaces all attributes: an object of string or list-of-string values "
        "(at most 50 names, 100 values each)."
    )
