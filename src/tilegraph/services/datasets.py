"""Datasets: upload and S3 import (queued as jobs), metadata, previews, deletion and
re-import planning. Only the owner sees a dataset; others get NOT_FOUND."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import structlog
from redis.exceptions import RedisError

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.datasets import (
    LEGACY_NULL_VALUES,
    ColumnSpec,
    DatasetAccessDefault,
    DatasetRecord,
    DatasetSourceType,
)
from tilegraph.domain.errors import BadUserInput, Conflict
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.ids import new_id
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.ownership import owned
from tilegraph.domain.paging import check_first
from tilegraph.domain.policies import FULL_ACCESS, EffectiveAccess
from tilegraph.domain.schema_diff import SchemaChange, diff_schemas
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import (
    check_bucket_name,
    check_description,
    check_name,
    check_null_values,
    check_s3_key,
)
from tilegraph.settings import Settings
from tilegraph.store.datasets import DatasetRepository
from tilegraph.store.dynamo import Stale
from tilegraph.store.imports import ImportRepository, import_to_item
from tilegraph.store.objects import ObjectMissing, ObjectStore, ReadChunk, UploadTooLarge
from tilegraph.store.pagination import Page
from tilegraph.store.parquet import ParquetReader
from tilegraph.store.policy_filter import visible_row_count, visible_values
from tilegraph.store.queue import JobQueue

log = structlog.get_logger("tilegraph.datasets")

IMPORT_JOB = "import_dataset"
PLAN_JOB = "plan_reimport"
DELIMITERS = {",", "\t", ";", "|"}

# Returns, for a dataset, the names of what uses it (cards, transforms); empty when unused.
UsageCheck = Callable[[DatasetRecord], Awaitable[list[str]]]


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[list[Any]]
    total_rows: int


@dataclass(frozen=True)
class ReimportPlan:
    dataset: DatasetRecord
    changes: list[SchemaChange]
    new_row_count: int
    new_column_count: int


def _check_delimiter(delimiter: str | None) -> str | None:
    if delimiter is None:
        return None
    if delimiter not in DELIMITERS:
        raise BadUserInput("The delimiter must be one of , ; | or a tab", field="delimiter")
    return delimiter


def _check_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError as exc:
        raise BadUserInput(f"Unknown encoding {encoding!r}", field="encoding") from exc


def _import_options(
    encoding: str | None, delimiter: str | None, null_values: list[str] | None
) -> dict[str, Any]:
    """How the worker reads the file, checked before anything is uploaded or queued."""
    return {
        "encoding": _check_encoding(encoding),
        "delimiter": _check_delimiter(delimiter),
        "null_values": list(check_null_values(null_values)),
    }


def _cell(value: Any) -> Any:
    """Cells leave as JSON values: dates and times as ISO strings."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class DatasetService:
    def __init__(
        self,
        settings: Settings,
        datasets: DatasetRepository,
        imports: ImportRepository,
        objects: ObjectStore,
        parquet: ParquetReader,
        queue: JobQueue,
        audit: AuditRecorder,
    ) -> None:
        self.settings = settings
        self.datasets = datasets
        self.imports = imports
        self.objects = objects
        self.parquet = parquet
        self.queue = queue
        self.audit = audit
        self.usage_checks: list[UsageCheck] = []
        # What goes with a deleted dataset (its policies), given the dataset's id.
        self.on_delete: list[Callable[[str], Awaitable[None]]] = []

    # ------------------------------------------------------------------ reading

    async def get_owned(self, principal: Principal, dataset_id: str) -> DatasetRecord:
        return owned(await self.datasets.get(dataset_id), principal, "dataset")

    async def list_page(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[DatasetRecord]:
        return await self.datasets.list_page(principal.user_id, check_first(first), after)

    async def get_import(self, principal: Principal, import_id: str) -> ImportRecord:
        return owned(await self.imports.get(import_id), principal, "import")

    async def preview(self, record: DatasetRecord, limit: int) -> Preview:
        if not 1 <= limit <= self.settings.preview_max_rows:
            raise BadUserInput(
                f"`limit` must be between 1 and {self.settings.preview_max_rows}", field="limit"
            )
        if record.version == 0:
            return Preview([c.name for c in record.columns], [], record.row_count)
        table: pa.Table = await asyncio.to_thread(self.parquet.head, record.data_prefix(), limit)
        columns = table.column_names
        data = [table.column(i).to_pylist() for i in range(table.num_columns)]
        rows = [[_cell(col[r]) for col in data] for r in range(table.num_rows)]
        return Preview(columns, rows, record.row_count)

    async def visible_row_count(self, record: DatasetRecord, seen: EffectiveAccess) -> int:
        """The rows of the current version `seen` shows: all of them for full access, none
        without rows, else counted under the reader's row condition."""
        if seen.row_condition is None or record.version == 0:
            return record.row_count if seen.any_rows else 0
        prefix = record.data_prefix()
        return await asyncio.to_thread(
            lambda: visible_row_count(self.parquet.dataset(prefix), seen)
        )

    async def column_values(
        self,
        record: DatasetRecord,
        column: str,
        search: str | None,
        limit: int,
        seen: EffectiveAccess = FULL_ACCESS,
    ) -> list[str]:
        """Distinct values of a column, from the rows and columns `seen` shows (its owner:
        all of them)."""
        if not 1 <= limit <= self.settings.column_values_max:
            raise BadUserInput(
                f"`limit` must be between 1 and {self.settings.column_values_max}", field="limit"
            )
        if column not in {c.name for c in record.columns}:
            raise BadUserInput(f"The dataset has no column {column!r}", field="column")
        if record.version == 0 or column in seen.hidden_columns or not seen.any_rows:
            return []
        prefix = record.data_prefix()
        if seen.row_condition is None:
            return await asyncio.to_thread(
                self.parquet.column_values, prefix, column, search or None, limit
            )
        return await asyncio.to_thread(
            lambda: visible_values(
                self.parquet.dataset(prefix), column, seen, search or None, limit
            )
        )

    async def values_across(
        self,
        records: list[DatasetRecord],
        column: str,
        search: str | None,
        limit: int,
        seen: Mapping[str, EffectiveAccess],
    ) -> list[str]:
        """Distinct values of `column` in every dataset that has it, merged and sorted, each
        as its reader may see it (`seen` by dataset id)."""
        having = [r for r in records if column in {c.name for c in r.columns}]
        found = await asyncio.gather(
            *(self.column_values(r, column, search, limit, seen[r.id]) for r in having)
        )
        return sorted({value for values in found for value in values})[:limit]

    # ------------------------------------------------------------------ creating

    async def upload(
        self,
        principal: Principal,
        *,
        name: str,
        description: str | None,
        read: ReadChunk,
        encoding: str | None,
        delimiter: str | None,
        null_values: list[str] | None,
        request_id: str | None,
    ) -> tuple[DatasetRecord, ImportRecord]:
        name = check_name(name)
        description = check_description(description)
        options = _import_options(encoding, delimiter, null_values)
        import_id = new_id("imp")
        staging_key = f"staging/{import_id}.csv"
        try:
            size = await self.objects.upload_stream(
                staging_key, read, max_bytes=self.settings.upload_max_bytes
            )
        except UploadTooLarge as exc:
            raise BadUserInput(
                f"The file is larger than the limit of {exc.limit} bytes", field="file"
            ) from exc
        if size == 0:
            await self.objects.delete(staging_key)
            raise BadUserInput("The file is empty", field="file")
        source = {"key": staging_key, "staging": True, "bytes": size}
        return await self._create(
            principal,
            name,
            description,
            DatasetSourceType.CSV,
            None,
            source,
            options,
            import_id,
            request_id,
        )

    async def import_from_s3(
        self,
        principal: Principal,
        *,
        name: str,
        description: str | None,
        bucket: str,
        key: str,
        encoding: str | None,
        delimiter: str | None,
        null_values: list[str] | None,
        request_id: str | None,
    ) -> tuple[DatasetRecord, ImportRecord]:
        name = check_name(name)
        description = check_description(description)
        bucket, key = check_bucket_name(bucket.strip()), check_s3_key(key.strip())
        self._check_bucket(bucket)
        options = _import_options(encoding, delimiter, null_values)
        try:
            size = await self.objects.size_of(key, bucket=bucket)
        except ObjectMissing as exc:
            raise BadUserInput(
                f"s3://{bucket}/{key} does not exist or cannot be read", field="key"
            ) from exc
        # The dataset keeps how it was read, so every re-import reads the file the same way.
        config = {
            "bucket": bucket,
            "key": key,
            **{k: options[k] for k in ("encoding", "delimiter") if options[k]},
            "nullValues": options["null_values"],
        }
        source = {"bucket": bucket, "key": key, "bytes": size}
        return await self._create(
            principal,
            name,
            description,
            DatasetSourceType.S3_CSV,
            config,
            source,
            options,
            new_id("imp"),
            request_id,
        )

    def _check_bucket(self, bucket: str, *, field: str = "bucket") -> None:
        """Only the operator's allow-list (none by default), never Tilegraph's own bucket.
        One refusal for every other bucket, checked before any S3 call, so the answer says
        nothing of which buckets or keys exist."""
        if not bucket:
            raise BadUserInput("Name a bucket", field=field)
        if bucket == self.settings.bucket or bucket not in self.settings.s3_import_buckets:
            raise BadUserInput(
                "Imports from this bucket are not allowed (TILEGRAPH_S3_IMPORT_BUCKETS)",
                field=field,
            )

    async def _create(
        self,
        principal: Principal,
        name: str,
        description: str | None,
        source_type: DatasetSourceType,
        config: dict[str, Any] | None,
        source: dict[str, Any],
        options: dict[str, Any],
        import_id: str,
        request_id: str | None,
    ) -> tuple[DatasetRecord, ImportRecord]:
        now = utcnow()
        dataset = DatasetRecord(
            id=new_id("ds"),
            owner_id=principal.user_id,
            name=name,
            description=description,
            source_type=source_type,
            source_config=config,
            version=0,
            row_count=0,
            columns=(),
            created_at=now,
            updated_at=now,
            latest_import_id=import_id,
        )
        await self.datasets.create(dataset)
        record = await self._queue_import(dataset, principal, source, options, import_id)
        await self.audit.record(
            AuditEventType.DATASET_CREATED,
            user_id=principal.user_id,
            target_type="dataset",
            target_id=dataset.id,
            details={"name": name, "source": source_type.value},
            request_id=request_id,
        )
        return dataset, record

    async def _queue_import(
        self,
        dataset: DatasetRecord,
        principal: Principal,
        source: dict[str, Any],
        options: dict[str, Any],
        import_id: str,
        expected_columns: list[dict[str, Any]] | None = None,
    ) -> ImportRecord:
        record = ImportRecord(
            id=import_id,
            dataset_id=dataset.id,
            owner_id=principal.user_id,
            status=ExecutionStatus.QUEUED,
            queued_at=utcnow(),
            source=source,
            options=options,
            expected_columns=expected_columns,
        )
        await self.imports.create(record)
        try:
            await self.queue.enqueue(IMPORT_JOB, import_id, import_id)
        except RedisError as exc:
            # Accepted all the same: the record is QUEUED in DynamoDB, and the sweeper
            # enqueues it once Redis is back (it re-enqueues QUEUED work whose job is gone).
            log.warning("import_enqueue_deferred", import_id=import_id, error=type(exc).__name__)
        return record

    # ------------------------------------------------------------------ changing

    async def update(
        self,
        principal: Principal,
        dataset_id: str,
        *,
        name: str | None,
        description: str | None,
        column_descriptions: dict[str, str | None] | None,
        default_access: DatasetAccessDefault | None = None,
        request_id: str | None = None,
    ) -> DatasetRecord:
        record = await self.get_owned(principal, dataset_id)
        changes: dict[str, Any] = {"updated_at": to_iso(utcnow())}
        if default_access is not None:
            changes["default_access"] = default_access.value
        if name is not None:
            changes["name"] = check_name(name)
        if description is not None:
            changes["description"] = check_description(description)
        if column_descriptions:
            for text in column_descriptions.values():
                check_description(text, field="columns")
            known = {c.name for c in record.columns}
            unknown = sorted(set(column_descriptions) - known)
            if unknown:
                raise BadUserInput(f"The dataset has no column {unknown[0]!r}", field="columns")
            changes["columns"] = [
                ColumnSpec(
                    c.name, c.type, c.nullable, column_descriptions.get(c.name, c.description)
                ).to_item()
                for c in record.columns
            ]
        try:
            updated = await self.datasets.update_metadata(record, changes)
        except Stale as exc:
            raise Conflict("The dataset changed meanwhile; try again") from exc
        if updated.default_access is not record.default_access:
            # Who sees a dataset changed: as much a governance event as a policy change.
            await self.audit.record(
                AuditEventType.DATASET_DEFAULT_ACCESS_CHANGED,
                user_id=principal.user_id,
                target_type="dataset",
                target_id=record.id,
                details={
                    "before": {"defaultAccess": record.default_access.value},
                    "after": {"defaultAccess": updated.default_access.value},
                },
                request_id=request_id,
            )
        return updated

    async def delete(
        self, principal: Principal, dataset_id: str, *, force: bool, request_id: str | None
    ) -> str:
        record = await self.get_owned(principal, dataset_id)
        # Without a published version (its first import failed, or has not finished) no
        # card or transform ever read it: nothing to protect, so no force is needed.
        if not force and record.version > 0:
            users = [name for check in self.usage_checks for name in await check(record)]
            if users:
                raise Conflict(
                    "The dataset is used by "
                    + ", ".join(users)
                    + "; delete those first or force the delete",
                    users=users,
                )
        await self.datasets.delete(record.id)
        await self.imports.delete_for_dataset(record.id)
        for cleanup in self.on_delete:
            await cleanup(record.id)
        await self.objects.delete_prefix(f"datasets/{record.id}/")
        await self.audit.record(
            AuditEventType.DATASET_DELETED,
            user_id=principal.user_id,
            target_type="dataset",
            target_id=record.id,
            details={"name": record.name, "forced": force},
            request_id=request_id,
        )
        return record.id

    # ------------------------------------------------------------------ re-import

    def _reimport_source(self, record: DatasetRecord) -> tuple[dict[str, Any], dict[str, Any]]:
        if record.source_type is not DatasetSourceType.S3_CSV or not record.source_config:
            raise BadUserInput("Only datasets imported from S3 can be re-imported", field="id")
        config = record.source_config
        # The allow-list may have changed since the first import.
        self._check_bucket(str(config["bucket"]), field="id")
        source = {"bucket": config["bucket"], "key": config["key"]}
        options = {
            "encoding": config.get("encoding"),
            "delimiter": config.get("delimiter"),
            # A dataset imported before null tokens could be chosen keeps the rule it had.
            "null_values": config.get("nullValues", list(LEGACY_NULL_VALUES)),
        }
        return source, options

    async def plan_reimport(self, principal: Principal, dataset_id: str) -> ReimportPlan:
        return await self._plan(principal, await self.get_owned(principal, dataset_id))

    async def _plan(self, principal: Principal, record: DatasetRecord) -> ReimportPlan:
        source, options = self._reimport_source(record)
        probe = ImportRecord(
            id=new_id("imp"),
            dataset_id=record.id,
            owner_id=principal.user_id,
            status=ExecutionStatus.QUEUED,
            queued_at=utcnow(),
            source=source,
            options=options,
        )
        result = await self.queue.run(
            PLAN_JOB,
            f"plan:{probe.id}",
            import_to_item(probe),
            wait_seconds=self.settings.plan_timeout_seconds,
        )
        if "error" in result:
            raise BadUserInput(
                f"The source cannot be imported: {result['error']['message']}", field="id"
            )
        new_columns = [ColumnSpec.from_item(c) for c in result["columns"]]
        return ReimportPlan(
            record,
            diff_schemas(record.columns, new_columns),
            int(result["row_count"]),
            len(new_columns),
        )

    async def reimport(
        self, principal: Principal, dataset_id: str, *, force: bool
    ) -> tuple[DatasetRecord, ImportRecord]:
        record = await self.get_owned(principal, dataset_id)
        source, options = self._reimport_source(record)
        expected: list[dict[str, Any]] | None = None
        if not force and record.version > 0:
            plan = await self._plan(principal, record)
            if plan.changes and record.version > 0:
                described = "; ".join(
                    f"{c.column_name}: {c.change_type.value}"
                    + (f" ({c.old_value} → {c.new_value})" if c.old_value and c.new_value else "")
                    for c in plan.changes
                )
                raise BadUserInput(
                    f"The schema changed: {described}. Re-import with force to accept it.",
                    field="force",
                    changes=[
                        {
                            "columnName": c.column_name,
                            "changeType": c.change_type.value,
                            "oldValue": c.old_value,
                            "newValue": c.new_value,
                        }
                        for c in plan.changes
                    ],
                )
            if record.version > 0:
                expected = [c.to_item() for c in record.columns]
        import_id = new_id("imp")
        refreshed = await self.datasets.set_latest_import(record.id, import_id)
        queued = await self._queue_import(
            record, principal, source, options, import_id, expected_columns=expected
        )
        return refreshed, queued
