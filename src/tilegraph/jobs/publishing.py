"""Publishing a new version of a dataset from Parquet files on local disk: upload under a
fresh version prefix, flip the published version forward with a conditional write, then
delete versions beyond the last three. Imports and transforms both publish this way, so
readers never see a partial result and caches keyed by version invalidate by themselves.

A run announces the version it is about to publish (with the result it will report) on its
own record first: a worker killed between the flip and the run's success is then recovered
by the sweeper as the success it was, not as a lost run whose output is live anyway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.datasets import ColumnSpec, DatasetRecord, data_prefix, versions_to_delete
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode
from tilegraph.jobs.lifecycle import ExecutionFailed, ExecutionRun
from tilegraph.services.registry import Services


async def publish_files(
    services: Services,
    dataset_id: str,
    out_dir: Path,
    files: list[str],
    *,
    columns: list[ColumnSpec],
    row_count: int,
    published_by: str | None,
    run: ExecutionRun,
    result: dict[str, Any],
    version_key: str,
    extra: dict[str, object] | None = None,
) -> DatasetRecord:
    """`result` is what the run reports on success; `version_key` names the published
    version in it."""
    version = await services.repos.datasets.reserve_version(dataset_id)
    await run.announce_publish(dataset_id, version, {**result, version_key: version})
    prefix = data_prefix(dataset_id, version)
    for name in files:
        await services.objects.upload_file(out_dir / name, prefix + name)
    published = await services.repos.datasets.publish_version(
        dataset_id,
        version,
        columns=columns,
        row_count=row_count,
        imported_at=to_iso(utcnow()),
        imported_by=published_by,
        extra=extra,
    )
    if published is None:
        await services.objects.delete_prefix(prefix)
        raise ExecutionFailed(
            ExecutionError(
                ExecutionErrorCode.INPUT_UNAVAILABLE,
                "The dataset was deleted or a newer version was published meanwhile",
            )
        )
    stale = versions_to_delete(published.published_versions)
    for old in stale:
        await services.objects.delete_prefix(data_prefix(dataset_id, old))
    if stale:
        await services.repos.datasets.forget_versions(dataset_id, stale)
    return published
