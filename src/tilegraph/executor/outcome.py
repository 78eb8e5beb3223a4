"""Why a run failed, as the user sees it: a child's wait status, CPU time, reported error,
deadline or cancellation turned into an :class:`ExecutionError` with the right code.

The child's own words are not trusted: an error it reports is clipped and its code checked.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode

from .jobs import CardOutput, TransformOutput
from .limits import SandboxLimits

Outcome = tuple[CardOutput | TransformOutput | None, ExecutionError | None]
"""What one run produced: exactly one of output and error is set."""

_MAX_MESSAGE_CHARS = 10000  # the child already clips to less; this is the backstop


def error(code: ExecutionErrorCode, message: str, line: int | None = None) -> ExecutionError:
    return ExecutionError(code=code, message=message, line=line)


def cancelled() -> ExecutionError:
    return error(ExecutionErrorCode.CANCELLED, "The run was cancelled.")


def wall_timeout(limits: SandboxLimits) -> ExecutionError:
    return error(
        ExecutionErrorCode.TIMEOUT,
        f"The code ran longer than its {limits.wall_seconds:g} s limit and was stopped.",
    )


def memory_limit(limits: SandboxLimits) -> ExecutionError:
    """The job's processes together went over its memory limit (memory_cap.py)."""
    return error(
        ExecutionErrorCode.MEMORY_LIMIT,
        f"The code used more than its {limits.memory_bytes / (1 << 30):g} GiB of memory "
        "(all its processes together) and was stopped.",
    )


def garbled_reply() -> ExecutionError:
    """The child's reply channel carried something that is not a frame."""
    return error(
        ExecutionErrorCode.BAD_RESULT,
        "The code wrote garbage into the sandbox's result channel.",
    )


def reported_error(reply: dict[str, Any]) -> ExecutionError:
    """The error a child reported for a failed run (``ok`` false), checked field by field."""
    reported = reply.get("error")
    if not isinstance(reported, dict):
        return error(ExecutionErrorCode.RUNTIME_ERROR, "Malformed sandbox reply.")
    try:
        code = ExecutionErrorCode(str(reported.get("code")))
    except ValueError:
        code = ExecutionErrorCode.RUNTIME_ERROR
    line = reported.get("line")
    return error(
        code,
        str(reported.get("message", ""))[:_MAX_MESSAGE_CHARS],
        line if isinstance(line, int) and not isinstance(line, bool) else None,
    )


def describe_death(exit_info: dict[str, Any], limits: SandboxLimits) -> ExecutionError:
    """Why a child died without replying, from its wait status and CPU time."""
    if exit_info.get("lost"):
        return error(
            ExecutionErrorCode.WORKER_LOST,
            "The sandbox restarted while this code was running; run it again.",
        )
    status = int(exit_info.get("status", 0))
    cpu = float(exit_info.get("cpu", 0.0))
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds - 0.05):
            return error(
                ExecutionErrorCode.TIMEOUT,
                f"The code used more than its {limits.cpu_seconds} s of CPU time and was stopped.",
            )
        if sig == signal.SIGKILL:
            return error(
                ExecutionErrorCode.MEMORY_LIMIT,
                "The code was killed by the system, most likely for using too much memory.",
            )
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return error(ExecutionErrorCode.RUNTIME_ERROR, f"The code crashed ({name}).")
    code = os.waitstatus_to_exitcode(status)
    return error(
        ExecutionErrorCode.RUNTIME_ERROR,
        f"The code ended the process (exit status {code}) before returning a result.",
    )
