"""Helpers for the executor tests: small limits, job builders, and a view of the host's
process table from outside the sandbox."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from tilegraph.executor import CardJob, Sandbox, SandboxLimits, SandboxResult

MiB = 1024 * 1024
GiB = 1024 * MiB

LIMITS = SandboxLimits(
    wall_seconds=20.0,
    cpu_seconds=20,
    memory_bytes=3 * GiB,
    max_processes=32,
    max_file_bytes=16 * MiB,
    max_open_files=64,
    max_output_bytes=5 * MiB,
)


def limits(**changes: Any) -> SandboxLimits:
    values = {name: getattr(LIMITS, name) for name in LIMITS.__dataclass_fields__}
    values.update(changes)
    return SandboxLimits(**values)


def card(code: str, *tables: pa.Table, params: dict[str, Any] | None = None) -> CardJob:
    return CardJob(code=code, params=params, filters=[], inputs=list(tables))


def html(result: SandboxResult) -> str:
    """The card's HTML, failing the test with the sandbox's error message otherwise."""
    assert result.error is None, result.error
    assert result.output is not None
    return result.output.html  # type: ignore[union-attr]


async def assert_serves(sandbox: Sandbox) -> None:
    """The sandbox still runs an ordinary job correctly."""
    table = pa.table({"x": [1, 2, 3]})
    result = await sandbox.run(
        card("def render(dataset, filters, params):\n    return str(dataset.x.sum())\n", table),
        LIMITS,
    )
    assert html(result) == "6"


def host_read(path: str) -> str:
    """Read a file on the host (outside any sandbox)."""
    with open(path) as handle:
        return handle.read()


def host_exists(path: str) -> bool:
    return os.path.exists(path)


def set_name(marker: str) -> str:
    """A statement that names the calling process ``marker`` (visible in the host's /proc).

    Jobs are non-dumpable, so /proc/self/comm is not writable; prctl(PR_SET_NAME) through the
    ctypes module numpy keeps a reference to (smuggled past the import guard) still works.
    """
    return f"numpy._core._internal.ctypes.CDLL(None).prctl(15, b'{marker}', 0, 0, 0)"


def processes_named(comm: str) -> list[int]:
    """Live host pids named ``comm`` (the tests run as root and see every process).

    Zombies are left out: an exited process lingers as one until its parent's wait().
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state = stat[stat.rindex(")") + 2 :].split()[0]
        if name == comm and state not in ("Z", "X"):
            found.append(int(entry))
    return found


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll a condition on the host (not a sleep standing in for synchronisation)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def daemon_code(marker: str, then: str) -> str:
    """Double-fork + setsid a sleeper named ``marker``, wait until it is up, then ``then``."""
    return (
        "import os, time, numpy\n"
        "def render(dataset, filters, params):\n"
        "    r, w = os.pipe()\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        f"            {set_name(marker)}\n"
        "            os.write(w, b'up')\n"
        "            while True:\n"
        "                time.sleep(0.05)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "    assert os.read(r, 2) == b'up'\n"
        f"    {then}\n"
    )


def available_memory() -> int:
    """The host's MemAvailable, in bytes."""
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


@contextmanager
def memory_drop() -> Iterator[list[int]]:
    """Samples the host's available memory every 10 ms while the block runs; the yielded
    list holds, afterwards, the largest drop below the level at the start."""
    start = available_memory()
    lowest = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            lowest[0] = min(lowest[0], available_memory())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    drop = [0]
    try:
        yield drop
    finally:
        done.set()
        sampler.join()
        drop[0] = start - lowest[0]


FORKED_MEMORY_HOG = """
import os, mmap, time
def render(dataset, filters, params):
    children = []
    for _ in range(int(params.get("children", 7))):
        pid = os.fork()
        if pid == 0:
            block = mmap.mmap(-1, 1 << 30)
            for offset in range(0, 1 << 30, 4096):
                block[offset] = 1
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return "all children survived"
"""
"""Seven children that each touch 1 GiB: far over a card's limit together, under it alone."""

MEMFD_HOG = """
import os
def render(dataset, filters, params):
    chunk = b"x" * (60 << 20)
    held = []
    for _ in range(100):
        fd = os.memfd_create("hog")
        os.write(fd, chunk)
        held.append(fd)
    return "held 6 GB in memfds"
"""
"""6 GB in memfds, each under the file-size limit: pages RLIMIT_AS never sees."""
