"""A dataset import: one run of parse, type, write Parquet, publish a version."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tilegraph.domain.executions import ExecutionError, ExecutionStatus


@dataclass(frozen=True)
class ImportRecord:
    id: str
    dataset_id: str
    owner_id: str
    status: ExecutionStatus
    queued_at: datetime
    source: dict[str, Any]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float | None = None
    rows_processed: int | None = None
    bytes_processed: int | None = None
    error: ExecutionError | None = None
    heartbeat_at: datetime | None = None
    # The schema the dry run saw; a re-import without force fails when the file differs.
    expected_columns: list[dict[str, Any]] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    result_version: int | None = None

    def with_changes(self, **changes: Any) -> ImportRecord:
        return replace(self, **changes)
