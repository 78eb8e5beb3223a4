"""Transform runs.

A run takes a conditional lock on its transform, so runs never overlap: a run that finds
another holding it is recorded as skipped. The output goes through the same versioned
publish as imports. Scheduled runs are queued by the tick (jobs/schedules.py)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.clock import utcnow
from tilegraph.domain.datasets import ColumnSpec, ColumnType, DatasetRecord, DatasetSourceType
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.ids import new_id
from tilegraph.domain.transforms import (
    TransformRecord,
    TriggerType,
    skipped_run_error,
)
from tilegraph.events.channels import transform_run_channels
from tilegraph.executor import Sandbox, SandboxLimits, TransformJob, TransformOutput, job_limits
from tilegraph.jobs.inputs import input_datasets
from tilegraph.jobs.lifecycle import ExecutionFailed, ExecutionRun
from tilegraph.jobs.locked_runs import LockedRuns
from tilegraph.jobs.publishing import publish_files
from tilegraph.services.registry import Services
from tilegraph.store.executions import ExecutionTable
from tilegraph.store.transforms import run_from_item

log = structlog.get_logger("tilegraph.transforms")


def transform_limits(services: Services) -> SandboxLimits:
    settings = services.settings
    return job_limits(
        settings.transform_timeout_seconds,
        settings.transform_memory_bytes,
        settings.transform_output_max_bytes,
        file_bytes=1 << 30,
    )


def column_specs(table: pa.Table) -> list[ColumnSpec]:
    """The dataset columns an output table publishes (types were checked in the sandbox)."""
    specs = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = field.type
        if pa.types.is_boolean(kind):
            column_type = ColumnType.BOOL
        elif pa.types.is_integer(kind):
            column_type = ColumnType.INT64
        elif pa.types.is_floating(kind):
            column_type = ColumnType.FLOAT64
        elif pa.types.is_date(kind):
            column_type = ColumnType.DATE
        elif pa.types.is_timestamp(kind):
            column_type = ColumnType.DATETIME
        else:
            column_type = ColumnType.STRING
        specs.append(ColumnSpec(field.name, column_type, column.null_count > 0))
    return specs


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, row_group_size=128 * 1024, compression="zstd")


class TransformRunner:
    def __init__(self, services: Services, sandbox: Sandbox) -> None:
        self.services = services
        self.sandbox = sandbox

    @property
    def table(self) -> ExecutionTable:
        return self.services.repos.transforms.runs

    async def start(self, run_id: str) -> None:
        """The job: lock, run, record; or record the run as skipped."""
        repo = self.services.repos.transforms
        runs = LockedRuns(
            self.table, "transform_id", repo.schedules, skipped_run_error, transform_run_channels
        )
        await runs.start(self.services, run_id, self.run, self.finished)

    async def run(self, run: ExecutionRun) -> dict[str, Any]:
        services = self.services
        record = run_from_item(run.item)
        transform = await services.repos.transforms.get(record.transform_id)
        if transform is None:
            raise ExecutionFailed.unavailable("The transform was deleted")
        inputs = await self._inputs(transform)
        await run.check_cancel()
        started = time.perf_counter()
        result = await self.sandbox.run(
            TransformJob(code=transform.code, params=transform.params or {}, inputs=inputs),
            transform_limits(services),
        )
        if result.error is not None:
            raise ExecutionFailed(result.error)
        output = result.output
        assert isinstance(output, TransformOutput)
        await run.report(progress=0.8, force=True)
        dataset = await self._output_dataset(transform)
        with tempfile.TemporaryDirectory(dir=services.settings.work_dir) as tmp:
            out_dir = Path(tmp)
            await asyncio.to_thread(write_parquet, output.table, out_dir / "part-00000.parquet")
            outcome: dict[str, Any] = {
                "duration_ms": (time.perf_counter() - started) * 1000,
                "output_row_count": output.table.num_rows,
                "output_dataset_id": dataset.id,
            }
            published = await publish_files(
                services,
                dataset.id,
                out_dir,
                ["part-00000.parquet"],
                columns=column_specs(output.table),
                row_count=output.table.num_rows,
                published_by=record.triggered_by_user,
                run=run,
                result=outcome,
                version_key="output_version",
            )
        return {**outcome, "output_version": published.version}

    async def _inputs(self, transform: TransformRecord) -> list[tuple[str, pa.Table]]:
        services = self.services
        datasets = await input_datasets(
            services,
            transform.input_dataset_ids,
            label="Input dataset",
            owner_id=transform.owner_id,
        )
        tables = []
        for dataset in datasets:
            try:
                table = await asyncio.to_thread(services.parquet.read, dataset.data_prefix())
            except (OSError, pa.ArrowException) as exc:
                raise ExecutionFailed.unavailable(
                    f"Input dataset {dataset.name!r} cannot be read"
                ) from exc
            tables.append((dataset.id, table))
        return tables

    async def _output_dataset(self, transform: TransformRecord) -> DatasetRecord:
        """The transform's dataset; the first successful run creates it."""
        repos = self.services.repos
        if transform.output_dataset_id:
            existing = await repos.datasets.get(transform.output_dataset_id)
            if existing is not None:
                return existing
        now = utcnow()
        dataset = DatasetRecord(
            id=new_id("ds"),
            owner_id=transform.owner_id,
            name=f"{transform.name} (output)",
            description=f"Written by transform {transform.name}",
            source_type=DatasetSourceType.TRANSFORM,
            source_config={"transformId": transform.id},
            version=0,
            row_count=0,
            columns=(),
            created_at=now,
            updated_at=now,
        )
        await repos.datasets.create(dataset)
        await repos.transforms.set_output(transform.id, dataset.id)
        return dataset

    async def finished(self, run: ExecutionRun) -> None:
        await release_transform(self.services, run.item)


async def release_transform(services: Services, item: dict[str, Any]) -> None:
    """After a run ends, however it ended (the sweeper calls this for a lost worker's run):
    the transform's lock goes, the owner's place in the run allowance (a manual run's) is
    given back, and the outcome is audited."""
    await services.repos.transforms.schedules.unlock(str(item["transform_id"]), str(item["id"]))
    await services.run_allowance.release(str(item["owner_id"]), str(item["id"]))
    await record_outcome(services, item)


async def record_outcome(services: Services, item: dict[str, Any]) -> None:
    """TRANSFORM_EXECUTED or TRANSFORM_FAILED; scheduled runs have no acting user."""
    record = run_from_item(item)
    if record.status is ExecutionStatus.SUCCEEDED:
        event = AuditEventType.TRANSFORM_EXECUTED
        details: dict[str, Any] = {
            "executionId": record.id,
            "rows": record.output_row_count,
            "durationMs": record.duration_ms,
            "version": record.output_version,
            "triggeredBy": record.triggered_by.value,
        }
    elif record.status is ExecutionStatus.FAILED:
        event = AuditEventType.TRANSFORM_FAILED
        details = {
            "executionId": record.id,
            "triggeredBy": record.triggered_by.value,
            "code": record.error.code.value if record.error else None,
        }
    else:
        return
    user = record.triggered_by_user if record.triggered_by is TriggerType.MANUAL else None
    await services.audit_recorder.record(
        event, user_id=user, target_type="transform", target_id=record.transform_id, details=details
    )
