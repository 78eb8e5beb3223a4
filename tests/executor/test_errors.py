"""Every error code, produced by real failing code in a real sandbox."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pyarrow as pa
import pytest

from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode
from tilegraph.executor import Sandbox, SandboxResult, TransformJob

from .support import (
    LIMITS,
    GiB,
    MiB,
    assert_serves,
    card,
    limits,
    processes_named,
    set_name,
    wait_until,
)

Code = ExecutionErrorCode
TABLE = pa.table({"a": [1, 2, 3]})


def error_of(result: SandboxResult, code: ExecutionErrorCode) -> ExecutionError:
    assert result.output is None, result.output
    assert result.error is not None
    assert result.error.code == code, result.error
    assert result.error.message
    return result.error


async def test_syntax_error_reports_the_line(sandbox: Sandbox) -> None:
    code = "def render(dataset, filters, params):\n    x = 1\n    return (x +\n"
    error = error_of(await sandbox.run(card(code), LIMITS), Code.SYNTAX_ERROR)
    assert error.line == 3
    assert "never closed" in error.message


async def test_indentation_error_is_a_syntax_error(bwrap_sandbox: Sandbox) -> None:
    code = "def render(dataset, filters, params):\nreturn 1\n"
    error = error_of(await bwrap_sandbox.run(card(code), LIMITS), Code.SYNTAX_ERROR)
    assert error.line == 2 and "IndentationError" in error.message


async def test_card_without_render_is_missing_its_entry_point(bwrap_sandbox: Sandbox) -> None:
    error = error_of(
        await bwrap_sandbox.run(card("def draw(dataset):\n    return ''\n"), LIMITS),
        Code.MISSING_ENTRY_POINT,
    )
    assert "render" in error.message


async def test_transform_without_transform_or_result(bwrap_sandbox: Sandbox) -> None:
    job = TransformJob("output = df_0\n", None, [("ds", TABLE)])
    error = error_of(await bwrap_sandbox.run(job, LIMITS), Code.MISSING_ENTRY_POINT)
    assert "transform" in error.message and "result" in error.message


@pytest.mark.parametrize(
    "statement",
    [
        "import ctypes",
        "import subprocess",
        "import socket",
        "import multiprocessing",
        "import _posixsubprocess",
        "import pty",
        "from multiprocessing import Pool",
        "__import__('ctypes')",
        "import importlib; importlib.import_module('socket')",
        "import http.client",  # needs socket underneath
    ],
)
async def test_forbidden_imports(bwrap_sandbox: Sandbox, statement: str) -> None:
    code = f"def render(dataset, filters, params):\n    {statement}\n    return 'escaped'\n"
    error = error_of(await bwrap_sandbox.run(card(code), LIMITS), Code.FORBIDDEN_OPERATION)
    assert error.line == 2
    assert "not allowed" in error.message


async def test_forbidden_import_in_process_mode(process_sandbox: Sandbox) -> None:
    error = error_of(
        await process_sandbox.run(card("import subprocess\n"), LIMITS), Code.FORBIDDEN_OPERATION
    )
    assert error.line == 1


async def test_runtime_error_shows_only_user_frames(sandbox: Sandbox) -> None:
    code = (
        "def helper(frame):\n"
        "    return frame['missing']\n"
        "\n"
        "def render(dataset, filters, params):\n"
        "    return helper(dataset)\n"
    )
    error = error_of(await sandbox.run(card(code, TABLE), LIMITS), Code.RUNTIME_ERROR)
    assert error.message.startswith("KeyError: 'missing'")
    assert 'File "<card>", line 5, in render' in error.message
    assert 'File "<card>", line 2, in helper' in error.message
    assert error.line == 2
    for internal in ("runner.py", "child.py", "tgexec", "pandas", "site-packages"):
        assert internal not in error.message


async def test_runtime_error_at_module_level(bwrap_sandbox: Sandbox) -> None:
    error = error_of(
        await bwrap_sandbox.run(card("x = 1\ny = x / 0\n"), LIMITS), Code.RUNTIME_ERROR
    )
    assert error.message.startswith("ZeroDivisionError: division by zero")
    assert error.line == 2


async def test_transform_runtime_error(bwrap_sandbox: Sandbox) -> None:
    code = "def transform(inputs, params):\n    raise ValueError('bad input ' + params['k'])\n"
    job = TransformJob(code, {"k": "v"}, [("ds", TABLE)])
    error = error_of(await bwrap_sandbox.run(job, LIMITS), Code.RUNTIME_ERROR)
    assert error.message.startswith("ValueError: bad input v") and error.line == 2


async def test_crash_and_exit_are_runtime_errors(bwrap_sandbox: Sandbox) -> None:
    segfault = (
        "import numpy\n"
        "def render(dataset, filters, params):\n"
        "    c = numpy._core._internal.ctypes  # ctypes, smuggled past the import guard\n"
        "    return str(c.cast(8, c.POINTER(c.c_int))[0])\n"
    )
    error = error_of(await bwrap_sandbox.run(card(segfault), LIMITS), Code.RUNTIME_ERROR)
    assert "SIGSEGV" in error.message
    exits = "import os\ndef render(dataset, filters, params):\n    os._exit(3)\n"
    error = error_of(await bwrap_sandbox.run(card(exits), LIMITS), Code.RUNTIME_ERROR)
    assert "exit status 3" in error.message
    await assert_serves(bwrap_sandbox)


async def test_card_bad_result(bwrap_sandbox: Sandbox) -> None:
    error = error_of(
        await bwrap_sandbox.run(
            card("def render(dataset, filters, params):\n    return 42\n"), LIMITS
        ),
        Code.BAD_RESULT,
    )
    assert "int" in error.message and "HTMLResult" in error.message
    code = "def render(dataset, filters, params):\n    return HTMLResult('<p>', used_columns='a')\n"
    error_of(await bwrap_sandbox.run(card(code), LIMITS), Code.BAD_RESULT)


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("result = [1, 2, 3]\n", "not list"),
        ("result = df_0['a']\n", "Series"),
        ("result = pd.DataFrame({'ok': [1, 2], 'mixed': [1, 'two']})\n", "Column 'mixed'"),
        ("result = pd.DataFrame({'nested': [[1, 2], [3]]})\n", "Column 'nested'"),
        (
            "import decimal\nresult = pd.DataFrame({'dec': [decimal.Decimal('1.5')]})\n",
            "Column 'dec'",
        ),
        ("result = pd.DataFrame({'obj': [object(), object()]})\n", "Column 'obj'"),
        ("result = pd.DataFrame([[1, 2]], columns=['x', 'x'])\n", "more than once"),
    ],
)
async def test_transform_bad_result(bwrap_sandbox: Sandbox, code: str, fragment: str) -> None:
    job = TransformJob(code, None, [("ds", TABLE)])
    error = error_of(await bwrap_sandbox.run(job, LIMITS), Code.BAD_RESULT)
    assert fragment in error.message


async def test_wall_clock_timeout(sandbox: Sandbox) -> None:
    started = time.monotonic()
    result = await sandbox.run(
        card("def render(dataset, filters, params):\n    while True:\n        pass\n"),
        limits(wall_seconds=2.0, cpu_seconds=60),
    )
    elapsed = time.monotonic() - started
    error = error_of(result, Code.TIMEOUT)
    assert "2 s" in error.message
    assert 1.9 <= elapsed < 5.0
    await assert_serves(sandbox)


async def test_cpu_limit_is_a_timeout(bwrap_sandbox: Sandbox) -> None:
    code = "def render(dataset, filters, params):\n    n = 0\n    while True:\n        n += 1\n"
    result = await bwrap_sandbox.run(card(code), limits(wall_seconds=20.0, cpu_seconds=1))
    error = error_of(result, Code.TIMEOUT)
    assert "CPU" in error.message
    assert result.duration_ms < 5000


async def test_cpu_limit_in_native_code_is_a_timeout(bwrap_sandbox: Sandbox) -> None:
    """SIGXCPU cannot interrupt a C loop; the hard limit's SIGKILL still ends it as TIMEOUT."""
    code = (
        "import re\n"
        "def render(dataset, filters, params):\n"
        "    re.match(r'(a+)+$', 'a' * 64 + 'b')  # catastrophic backtracking, all in C\n"
    )
    result = await bwrap_sandbox.run(card(code), limits(wall_seconds=20.0, cpu_seconds=1))
    assert "CPU" in error_of(result, Code.TIMEOUT).message


async def test_memory_limit(sandbox: Sandbox) -> None:
    for allocation in ("bytearray(20 * 1024**3)", "np.ones(20 * 1024**3 // 8)"):
        code = f"def render(dataset, filters, params):\n    x = {allocation}\n    return 'fits'\n"
        error = error_of(await sandbox.run(card(code), LIMITS), Code.MEMORY_LIMIT)
        assert error.line == 2 and "3072 MiB" in error.message
    await assert_serves(sandbox)


async def test_card_output_too_large(sandbox: Sandbox) -> None:
    code = "def render(dataset, filters, params):\n    return 'x' * (5 * 1024 * 1024 + 1)\n"
    error = error_of(await sandbox.run(card(code), LIMITS), Code.OUTPUT_TOO_LARGE)
    assert "5.0 MiB" in error.message


async def test_transform_output_too_large(bwrap_sandbox: Sandbox) -> None:
    code = "result = pd.DataFrame({'x': np.arange(1_000_000)})\n"  # ~8 MB of int64
    job = TransformJob(code, None, [])
    error_of(await bwrap_sandbox.run(job, limits(max_output_bytes=4 * MiB)), Code.OUTPUT_TOO_LARGE)
    result = await bwrap_sandbox.run(job, limits(max_output_bytes=16 * MiB))
    assert result.error is None and result.output is not None


async def test_cancel_running_job(sandbox: Sandbox) -> None:
    marker = f"tg-cancel-{sandbox.mode[:4]}"
    code = (
        "import time, numpy\n"
        "def render(dataset, filters, params):\n"
        f"    {set_name(marker)}\n"
        "    time.sleep(60)\n"
    )
    cancel = asyncio.Event()
    run = asyncio.create_task(sandbox.run(card(code), LIMITS, cancel=cancel))
    await wait_until(lambda: bool(processes_named(marker)))
    started = time.monotonic()
    cancel.set()
    result = await run
    assert time.monotonic() - started < 2.0
    error_of(result, Code.CANCELLED)
    assert processes_named(marker) == []
    await assert_serves(sandbox)


async def test_cancel_before_start(bwrap_sandbox: Sandbox) -> None:
    cancel = asyncio.Event()
    cancel.set()
    error_of(await bwrap_sandbox.run(card("x = 1\n"), LIMITS, cancel=cancel), Code.CANCELLED)


async def test_memory_limit_applies_to_the_input_data(bwrap_sandbox: Sandbox) -> None:
    table = pa.table({"x": np.arange(40_000_000, dtype=np.int64)})  # 320 MB
    code = "def render(dataset, filters, params):\n    return 'loaded'\n"
    # The preloaded libraries already map ~1.4 GiB; this leaves less room than the data needs.
    result = await bwrap_sandbox.run(card(code, table), limits(memory_bytes=int(1.6 * GiB)))
    assert "memory" in error_of(result, Code.MEMORY_LIMIT).message
