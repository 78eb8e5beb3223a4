"""The sandboxed runner cannot import the tilegraph package, so it spells the error codes out;
this keeps its spelling and the contract enum from drifting apart."""

from __future__ import annotations

from tilegraph.domain.executions import ExecutionErrorCode
from tilegraph.executor import runner


def test_every_code_the_runner_names_is_a_contract_code() -> None:
    named = {
        name: value
        for name, value in vars(runner).items()
        if name.isupper() and isinstance(value, str) and name == value
    }
    assert named, "the runner names no error codes"
    for name, value in named.items():
        assert ExecutionErrorCode(value).name == name


def test_the_runner_names_every_code_user_code_can_cause() -> None:
    from_user_code = {
        ExecutionErrorCode.SYNTAX_ERROR,
        ExecutionErrorCode.MISSING_ENTRY_POINT,
        ExecutionErrorCode.FORBIDDEN_OPERATION,
        ExecutionErrorCode.RUNTIME_ERROR,
        ExecutionErrorCode.BAD_RESULT,
        ExecutionErrorCode.TIMEOUT,
        ExecutionErrorCode.MEMORY_LIMIT,
        ExecutionErrorCode.OUTPUT_TOO_LARGE,
    }
    for code in from_user_code:
        assert getattr(runner, code.name) == code.value
