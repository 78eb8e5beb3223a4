"""What every execution shares: its error type and the Execution interface."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.domain.executions import ExecutionError as ExecutionErrorRecord
from tilegraph.schema.enums import ExecutionErrorCode, ExecutionStatus
from tilegraph.schema.node import Node


@strawberry.type(description="Why an execution FAILED or was CANCELLED.")
class ExecutionError:
    code: ExecutionErrorCode = strawberry.field(description="The kind of failure.")
    message: str = strawberry.field(
        description="What went wrong, in words meant for the code's author (with the "
        "traceback of an exception in their code)."
    )
    line: int | None = strawberry.field(description="1-based line in the user's code, where known.")

    @classmethod
    def maybe(cls, record: ExecutionErrorRecord | None) -> ExecutionError | None:
        if record is None:
            return None
        return cls(code=record.code, message=record.message, line=record.line)


@strawberry.interface(
    description="Anything that is queued, runs and ends: a card run, a transform run, a "
    "dataset import or a delivery run."
)
class Execution(Node):
    status: ExecutionStatus = strawberry.field(
        description="QUEUED, then RUNNING, then one of SUCCEEDED, FAILED or CANCELLED."
    )
    progress: float | None = strawberry.field(description="0.0 .. 1.0 while RUNNING, where known.")
    error: ExecutionError | None = strawberry.field(
        description="Why the execution FAILED or was CANCELLED; null otherwise."
    )
    queued_at: datetime = strawberry.field(description="When it was asked for.")
    started_at: datetime | None = strawberry.field(
        description="When a worker started it; null while QUEUED."
    )
    finished_at: datetime | None = strawberry.field(
        description="When it reached its terminal state; null until then."
    )
