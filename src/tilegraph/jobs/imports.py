"""The dataset import job: download the source, ingest it to Parquet in a thread, upload
the files under a fresh version prefix, then flip the published version."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.datasets import LEGACY_NULL_VALUES, ColumnSpec
from tilegraph.domain.executions import ExecutionErrorCode
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.schema_diff import diff_schemas
from tilegraph.ingest import (
    IngestCancelled,
    IngestFailed,
    IngestOptions,
    IngestProgress,
    ingest_csv,
    scan_csv,
)
from tilegraph.jobs.lifecycle import CancelledByUser, ExecutionFailed, ExecutionRun
from tilegraph.jobs.publishing import publish_files
from tilegraph.services.registry import Services
from tilegraph.store.imports import import_from_item
from tilegraph.store.objects import ObjectMissing

DOWNLOAD_SHARE = 0.1  # of the progress bar
INGEST_SHARE = 0.85

# Work directories are named after the host and process that made them, so a worker starting
# up can tell (and remove) those a killed worker on this host left behind.
_WORK_DIR_PREFIX = "tg-import-"
_WORK_DIR_NAME = re.compile(r"^tg-import-(?P<host>.+)-(?P<pid>\d+)-[^-]+$")


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def work_dir(services: Services) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(
        dir=services.settings.work_dir, prefix=f"{_WORK_DIR_PREFIX}{_host()}-{os.getpid()}-"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_work_dirs(root: str | None) -> int:
    """Removes the import work directories of dead processes of this host; how many."""
    base = root or tempfile.gettempdir()
    removed = 0
    try:
        entries = os.listdir(base)
    except OSError:
        return 0
    for name in entries:
        match = _WORK_DIR_NAME.match(name)
        if match is None or match["host"] != _host():
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        removed += 1
    return removed


def _source_location(record: ImportRecord, services: Services) -> tuple[str, str]:
    return str(record.source.get("bucket") or services.settings.bucket), str(record.source["key"])


async def download_source(
    services: Services, record: ImportRecord, path: Path, run: ExecutionRun | None = None
) -> int:
    bucket, key = _source_location(record, services)

    async def progress(done: int, size: int) -> None:
        if run is not None:
            await run.report(progress=DOWNLOAD_SHARE * done / max(size, 1), bytes_processed=0)

    try:
        return await services.objects.download(key, path, bucket=bucket, on_bytes=progress)
    except ObjectMissing as exc:
        raise ExecutionFailed.of(
            ExecutionErrorCode.INPUT_UNAVAILABLE,
            f"s3://{bucket}/{key} does not exist or cannot be read",
        ) from exc


def _options(services: Services, record: ImportRecord) -> IngestOptions:
    null_values = record.options.get("null_values")
    return IngestOptions(
        encoding=record.options.get("encoding"),
        delimiter=record.options.get("delimiter"),
        block_size=services.settings.ingest_block_bytes,
        max_columns=services.settings.max_columns,
        # An import queued before null tokens could be chosen reads only empty cells as null.
        null_values=LEGACY_NULL_VALUES if null_values is None else tuple(null_values),
    )


def _ingest_failure(exc: IngestFailed) -> ExecutionFailed:
    return ExecutionFailed.of(ExecutionErrorCode.RUNTIME_ERROR, exc.message, exc.line)


class DatasetImporter:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def run(self, run: ExecutionRun) -> dict[str, Any]:
        services = self.services
        record = import_from_item(run.item)
        dataset = await services.repos.datasets.get(record.dataset_id)
        if dataset is None:
            raise ExecutionFailed.of(
                ExecutionErrorCode.INPUT_UNAVAILABLE, "The dataset was deleted"
            )
        with work_dir(services) as tmp:
            csv_path = Path(tmp) / "source.csv"
            out_dir = Path(tmp) / "parquet"
            out_dir.mkdir()
            size = await download_source(services, record, csv_path, run)
            await run.check_cancel()
            result = await self._ingest(run, record, csv_path, out_dir)
            if record.expected_columns is not None:
                expected = [ColumnSpec.from_item(c) for c in record.expected_columns]
                changes = diff_schemas(expected, result.columns)
                if changes:
                    names = ", ".join(f"{c.column_name} {c.change_type.value}" for c in changes)
                    raise ExecutionFailed.of(
                        ExecutionErrorCode.BAD_RESULT,
                        f"The file's columns changed since the re-import was "
                        f"planned ({names}); re-import with force",
                    )
            await run.check_cancel()
            outcome = {"rows_processed": result.row_count, "bytes_processed": size}
            published = await publish_files(
                services,
                dataset.id,
                out_dir,
                result.files,
                columns=result.columns,
                row_count=result.row_count,
                published_by=record.owner_id,
                run=run,
                result=outcome,
                version_key="result_version",
            )
        outcome["result_version"] = published.version
        await record_import_audit(services, run.item, outcome, columns=len(result.columns))
        return outcome

    async def cleanup(self, run: ExecutionRun) -> None:
        """An uploaded file is only a staging copy: remove it however the import ended."""
        record = import_from_item(run.item)
        if record.source.get("staging"):
            await self.services.objects.delete(str(record.source["key"]))

    async def _ingest(
        self, run: ExecutionRun, record: ImportRecord, csv_path: Path, out_dir: Path
    ) -> Any:
        loop = asyncio.get_running_loop()

        def on_progress(progress: IngestProgress) -> None:
            asyncio.run_coroutine_threadsafe(
                run.report(
                    progress=DOWNLOAD_SHARE + INGEST_SHARE * progress.fraction,
                    rows_processed=progress.rows_processed,
                    bytes_processed=progress.bytes_processed,
                ),
                loop,
            )

        try:
            return await asyncio.to_thread(
                ingest_csv,
                csv_path,
                out_dir,
                _options(self.services, record),
                on_progress=on_progress,
                should_cancel=lambda: run.cancel_requested,
            )
        except IngestFailed as exc:
            raise _ingest_failure(exc) from exc
        except IngestCancelled as exc:
            raise CancelledByUser from exc


async def record_import_audit(
    services: Services, item: dict[str, Any], outcome: dict[str, Any], *, columns: int
) -> None:
    """DATASET_IMPORTED, from the import's record and what it reports (also for an import
    the sweeper finds published after its worker died)."""
    record = import_from_item(item)
    await services.audit_recorder.record(
        AuditEventType.DATASET_IMPORTED,
        user_id=record.owner_id,
        target_type="dataset",
        target_id=record.dataset_id,
        details={
            "importId": record.id,
            "rows": outcome["rows_processed"],
            "version": outcome["result_version"],
            "bytes": outcome["bytes_processed"],
            "columns": columns,
        },
    )


async def plan_source_schema(services: Services, record: ImportRecord) -> dict[str, Any]:
    """The dry run of a re-import: the schema and row count the source would give now."""
    with work_dir(services) as tmp:
        path = Path(tmp) / "source.csv"
        try:
            await download_source(services, record, path)
            scan = await asyncio.to_thread(scan_csv, path, _options(services, record))
        except ExecutionFailed as exc:
            return {"error": exc.error.to_item()}
        except IngestFailed as exc:
            return {"error": _ingest_failure(exc).error.to_item()}
    return {"columns": [c.to_item() for c in scan.columns], "row_count": scan.row_count}
