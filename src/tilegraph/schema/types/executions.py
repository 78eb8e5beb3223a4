"""What every execution shares: its error type."""

from __future__ import annotations

import strawberry

from tilegraph.domain.executions import ExecutionError as ExecutionErrorRecord
from tilegraph.schema.enums import ExecutionErrorCode


@strawberry.type
class ExecutionError:
    code: ExecutionErrorCode
    message: str
    line: int | None = strawberry.field(description="1-based line in the user's code, where known.")

    @classmethod
    def maybe(cls, record: ExecutionErrorRecord | None) -> ExecutionError | None:
        if record is None:
            return None
        return cls(code=record.code, message=record.message, line=record.line)
