"""Slots, queueing, cancellation, and a zygote that dies or is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tilegraph.domain.executions import ExecutionErrorCode
from tilegraph.executor import Sandbox, SandboxError, bwrap_available

from .support import (
    LIMITS,
    assert_serves,
    card,
    host_exists,
    html,
    processes_named,
    set_name,
    wait_until,
)

TIMED_JOB = (
    "import time, json\n"
    "def render(dataset, filters, params):\n"
    "    start = time.time()\n"
    "    time.sleep(params['seconds'])\n"
    "    return json.dumps([start, time.time()])\n"
)


async def _timed(sandbox: Sandbox, seconds: float) -> tuple[float, float]:
    start, end = json.loads(
        html(await sandbox.run(card(TIMED_JOB, params={"seconds": seconds}), LIMITS))
    )
    return start, end


async def test_slots_limit_concurrency_and_queue_in_order(bwrap_sandbox: Sandbox) -> None:
    """Two slots: A and B run at once; C and D queue. A ends first, so its slot must go to C
    (queued first), and D must wait for B even though it is the shorter job."""
    assert bwrap_sandbox.slots == 2
    a = asyncio.create_task(_timed(bwrap_sandbox, 0.6))
    b = asyncio.create_task(_timed(bwrap_sandbox, 1.5))
    c = asyncio.create_task(_timed(bwrap_sandbox, 1.5))
    d = asyncio.create_task(_timed(bwrap_sandbox, 0.1))
    (a_start, a_end), (b_start, b_end), (c_start, _), (d_start, _) = await asyncio.gather(
        a, b, c, d
    )
    assert b_start < a_end and a_start < b_end  # the first two ran side by side
    assert a_end - 0.05 <= c_start < b_end  # C took A's slot as soon as it was free
    assert d_start >= b_end - 0.05  # D, queued after C, waited for the next free slot


async def test_cancelling_the_coroutine_kills_the_job(sandbox: Sandbox) -> None:
    marker = f"tg-abandon-{sandbox.mode[:4]}"
    code = (
        "import time, numpy\n"
        "def render(dataset, filters, params):\n"
        f"    {set_name(marker)}\n"
        "    time.sleep(60)\n"
    )
    task = asyncio.create_task(sandbox.run(card(code), LIMITS))
    await wait_until(lambda: bool(processes_named(marker)))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: not processes_named(marker), timeout=5.0)
    await assert_serves(sandbox)


def _zygote_python(outer_pid: int) -> int:
    """The host pid of the zygote's Python process under ``outer_pid`` (bwrap or itself)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    queue = [outer_pid]
    while queue:
        pid = queue.pop(0)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"tgexec.zygote_main" in cmdline and b"bwrap" not in cmdline.split(b"\0")[0]:
            return pid
        queue.extend(children.get(pid, []))
    raise AssertionError("zygote process not found")


@pytest.fixture(params=["bwrap", "process"])
async def own_sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(mode=request.param, slots=2, prefork=1)
    await sandbox.start()
    yield sandbox
    await sandbox.close()


async def test_zygote_killed_from_outside_is_restarted(own_sandbox: Sandbox) -> None:
    await assert_serves(own_sandbox)
    outer = own_sandbox.zygote_pid
    assert outer is not None
    marker = f"tg-orphan-{own_sandbox.mode[:4]}"
    code = (
        "import time, numpy\n"
        "def render(dataset, filters, params):\n"
        f"    {set_name(marker)}\n"
        "    time.sleep(60)\n"
    )
    running = asyncio.create_task(own_sandbox.run(card(code), LIMITS))
    await wait_until(lambda: bool(processes_named(marker)))
    os.kill(_zygote_python(outer), signal.SIGKILL)
    result = await running  # the job in flight is lost with its zygote, and says so
    assert result.error is not None and result.error.code == ExecutionErrorCode.WORKER_LOST
    await wait_until(lambda: not processes_named(marker), timeout=5.0)
    await assert_serves(own_sandbox)  # transparently restarted
    restarted = own_sandbox.zygote_pid
    assert restarted not in (None, outer)

    # And once more while idle, taking bwrap (or the zygote) and its whole group down. A job
    # handed over in the very instant of the kill would be lost with it (WORKER_LOST), so the
    # next run is the first one after the worker has seen the death.
    assert restarted is not None
    os.killpg(restarted, signal.SIGKILL)
    await wait_until(lambda: own_sandbox.zygote_pid != restarted)
    await assert_serves(own_sandbox)
    assert own_sandbox.zygote_pid not in (None, restarted)


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


async def test_killed_idle_children_are_replaced(sandbox: Sandbox) -> None:
    """Pre-forked children killed from outside: the next job still runs (on a fresh child),
    and is not blamed for the death."""
    outer = sandbox.zygote_pid
    assert outer is not None
    zygote = _zygote_python(outer)
    await wait_until(lambda: len(_children_of(zygote)) >= sandbox.prefork)
    for pid in _children_of(zygote):
        os.kill(pid, signal.SIGKILL)
    await assert_serves(sandbox)
    await assert_serves(sandbox)
    assert sandbox.zygote_pid == outer


async def test_close_kills_everything_and_refuses_new_runs() -> None:
    sandbox = Sandbox(mode="bwrap", slots=1, prefork=2)
    await sandbox.start()
    outer = sandbox.zygote_pid
    assert outer is not None
    zygote = _zygote_python(outer)
    await sandbox.close()
    assert not host_exists(f"/proc/{outer}")
    # The kernel empties the zygote's PID namespace on its own time; it must empty it.
    await wait_until(lambda: not host_exists(f"/proc/{zygote}"))
    with pytest.raises(SandboxError):
        await sandbox.run(card("x = 1\n"), LIMITS)


def test_bwrap_is_available_here() -> None:
    assert bwrap_available()
    assert not bwrap_available("/nonexistent/bwrap")


async def test_sandbox_reports_its_isolation(
    bwrap_sandbox: Sandbox, process_sandbox: Sandbox
) -> None:
    for sandbox in (bwrap_sandbox, process_sandbox):
        features = sandbox.features
        assert features["job_namespaces"] and features["drop_uid"] and features["seccomp"]
        assert features["network_isolated"]
