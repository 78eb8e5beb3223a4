"""Transforms (Python that turns datasets into a dataset), their runs, and schedule rules."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from croniter import CroniterBadCronError, croniter

from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus

# A transform reads at most this many input datasets.
MAX_TRANSFORM_INPUTS = 10


class TriggerType(StrEnum):
    MANUAL = "MANUAL"
    SCHEDULE = "SCHEDULE"


@dataclass(frozen=True)
class TransformRecord:
    id: str
    owner_id: str
    name: str
    input_dataset_ids: tuple[str, ...]
    code: str
    created_at: datetime
    updated_at: datetime
    schedule_cron: str | None = None
    schedule_enabled: bool = False
    next_run_at: datetime | None = None
    output_dataset_id: str | None = None
    running_execution_id: str | None = None
    params: dict[str, Any] | None = None
    # Matches the object with its files in a workspace directory; unique per owner.
    workspace_key: str | None = None
    version: int = 1

    def with_changes(self, **changes: Any) -> TransformRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class TransformRunRecord:
    id: str
    transform_id: str
    owner_id: str
    status: ExecutionStatus
    triggered_by: TriggerType
    queued_at: datetime
    started: str  # sort key: queued time + id
    triggered_by_user: str | None = None
    due_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float | None = None
    duration_ms: float | None = None
    output_row_count: int | None = None
    output_dataset_id: str | None = None
    output_version: int | None = None
    error: ExecutionError | None = None


def check_cron(expression: str, *, min_interval_seconds: int, field: str = "scheduleCron") -> str:
    """A valid cron (5 fields, or 6 with seconds) whose runs are at least the minimum
    interval apart; the message carries croniter's reason."""
    cleaned = " ".join(expression.split())
    if not cleaned:
        raise BadUserInput("The cron expression is empty", field=field)
    try:
        schedule = croniter(cleaned, datetime(2024, 1, 1, tzinfo=UTC))
        first = schedule.get_next(datetime)
        gaps = []
        previous = first
        for _ in range(24):
            current = schedule.get_next(datetime)
            gaps.append((current - previous).total_seconds())
            previous = current
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise BadUserInput(f"Invalid cron expression {cleaned!r}: {exc}", field=field) from exc
    shortest = min(gaps)
    if shortest < min_interval_seconds:
        raise BadUserInput(
            f"The schedule runs every {shortest:.0f} s; the minimum interval is "
            f"{min_interval_seconds} s",
            field=field,
        )
    return cleaned


def next_fire(expression: str, after: datetime) -> datetime:
    """The first scheduled moment strictly after `after` (UTC)."""
    moment: datetime = croniter(expression, after.astimezone(UTC)).get_next(datetime)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def plan_due_run(
    expression: str, stored_next: datetime, now: datetime
) -> tuple[datetime, datetime] | None:
    """(due time, next run) when a run is due by `now`, else None. However many runs were
    missed while nothing ticked, the transform is caught up once: the next run is the
    first scheduled moment after `now`."""
    if stored_next > now:
        return None
    return stored_next, next_fire(expression, now)


def started_key(queued_at: datetime, run_id: str) -> str:
    return f"{queued_at.astimezone(UTC).isoformat(timespec='microseconds')}#{run_id}"


def queued_run_fields(
    run_id: str,
    owner_id: str,
    trigger: TriggerType,
    user_id: str | None,
    due_at: datetime | None,
    queued_at: datetime,
) -> dict[str, Any]:
    """What a new run of a scheduled object (a transform, a delivery) starts with."""
    return {
        "id": run_id,
        "owner_id": owner_id,
        "status": ExecutionStatus.QUEUED,
        "triggered_by": trigger,
        "queued_at": queued_at,
        "started": started_key(queued_at, run_id),
        "triggered_by_user": user_id,
        "due_at": due_at,
    }


def skipped_run_error(running_id: str) -> ExecutionError:
    return ExecutionError(
        ExecutionErrorCode.CANCELLED,
        f"Skipped: the previous run ({running_id}) of this transform was still running",
    )
