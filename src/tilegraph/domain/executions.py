"""Execution states and errors shared by imports, card runs and transform runs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ExecutionStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)


class ExecutionErrorCode(StrEnum):
    """Why a run failed (contract enum ExecutionErrorCode)."""

    SYNTAX_ERROR = "SYNTAX_ERROR"
    MISSING_ENTRY_POINT = "MISSING_ENTRY_POINT"
    FORBIDDEN_OPERATION = "FORBIDDEN_OPERATION"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    BAD_RESULT = "BAD_RESULT"
    TIMEOUT = "TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
    INPUT_UNAVAILABLE = "INPUT_UNAVAILABLE"
    WORKER_LOST = "WORKER_LOST"
    CANCELLED = "CANCELLED"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"


@dataclass(frozen=True)
class ExecutionError:
    """A failure a user can act on: a code, a readable message, and the line in their code."""

    code: ExecutionErrorCode
    message: str
    line: int | None = None

    def to_item(self) -> dict[str, object]:
        item: dict[str, object] = {"code": self.code.value, "message": self.message}
        if self.line is not None:
            item["line"] = self.line
        return item

    @classmethod
    def from_item(cls, item: dict[str, object]) -> ExecutionError:
        line = item.get("line")
        return cls(
            code=ExecutionErrorCode(str(item["code"])),
            message=str(item["message"]),
            line=int(line) if line is not None else None,  # type: ignore[call-overload]
        )
