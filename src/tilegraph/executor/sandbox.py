"""Worker side of the sandbox: the zygote process, the pool of pre-forked children, slots,
deadlines, kills and restarts.

Per job: take a pre-forked child (the zygote immediately forks a replacement), write each input
table's Arrow IPC stream into a memfd, send code + limits + memfds (and an empty output memfd)
straight to the child over its own socketpair, then wait for the first of: the reply, the
child's death, the wall-clock deadline, or cancellation. Timeouts and cancels SIGKILL the child
through its pidfd; in its own PID namespace that takes everything it started with it. The slot
(and its uid) is only reused once the child is confirmed dead. A child acknowledges the job
before any user code runs; one that dies before that (killed while idle, say) is replaced and
the job handed to a fresh child, so the user is never blamed for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import select
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode

from . import bwrap as bwrap_cmd
from .jobs import (
    CardJob,
    CardOutput,
    SandboxResult,
    TransformJob,
    TransformOutput,
    filters_to_wire,
)
from .limits import SandboxLimits
from .protocol import AsyncChannel, ChannelClosed, ProtocolError, close_fds, resolve_once
from .uids import UidBlock

log = logging.getLogger(__name__)

Mode = Literal["bwrap", "process"]

_MAX_REPLY_FRAME = 1 << 20
_MAX_CONTROL_FRAME = 1 << 20
_THREAD_WRITE_BYTES = 4 * 1024 * 1024  # serialise inputs bigger than this off the event loop
_EXIT_GRACE = 5.0  # how long a killed child may take to be reported dead
_REPLY_GRACE = 2.0  # how long a reply may trail the child's exit notice
_CHILD_TIMEOUT = 30.0  # how long to wait for the zygote to fork a child before replacing it
_ATTEMPTS = 3  # hand a job to a new child if the previous one died before acknowledging it


class _NotStarted(Exception):
    """The child died before acknowledging its job."""


class SandboxError(Exception):
    """The sandbox itself could not run (not the user's code failing)."""


@dataclass(eq=False)
class _Child:
    """One pre-forked child as the worker sees it."""

    id: int
    sock: socket.socket
    pidfd: int
    exited: asyncio.Future[dict[str, Any]]
    zygote: _Zygote
    channel: AsyncChannel | None = None
    started: bool = False  # acknowledged the job: user code may have run

    def is_dead(self) -> bool:
        readable, _, _ = select.select([self.pidfd], [], [], 0)
        return bool(readable)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def dispose(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            os.close(self.pidfd)
        self.pidfd = -1


@dataclass(eq=False)
class _Zygote:
    """A running zygote and what it has handed us."""

    process: asyncio.subprocess.Process
    control: AsyncChannel
    staging: Path
    features: dict[str, Any] = field(default_factory=dict)
    ready: deque[_Child] = field(default_factory=deque)
    waiters: deque[asyncio.Future[_Child]] = field(default_factory=deque)
    children: dict[int, _Child] = field(default_factory=dict)
    pending: int = 0
    dead: bool = False
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _SlotPool:
    """At most ``n`` jobs at once, handed out strictly first come, first served."""

    def __init__(self, n: int) -> None:
        self._free: deque[int] = deque(range(n))
        self._waiters: deque[asyncio.Future[int]] = deque()

    async def acquire(self) -> int:
        if self._free and not self._waiters:
            return self._free.popleft()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(future.result())
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
            raise

    def release(self, slot: int) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._free.append(slot)


def _error(code: ExecutionErrorCode, message: str, line: int | None = None) -> ExecutionError:
    return ExecutionError(code=code, message=message, line=line)


def _write_ipc(table: pa.Table) -> int:
    """One input table as an Arrow IPC stream in a fresh memfd."""
    fd = os.memfd_create("tilegraph-input", os.MFD_CLOEXEC)
    try:
        with (
            os.fdopen(fd, "wb", buffering=0, closefd=False) as sink,
            pa.ipc.new_stream(sink, table.schema) as writer,
        ):
            writer.write_table(table)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_inputs(tables: list[pa.Table]) -> list[int]:
    fds: list[int] = []
    try:
        for table in tables:
            fds.append(_write_ipc(table))
    except BaseException:
        close_fds(fds)
        raise
    return fds


_ALLOWED = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_boolean,
    pa.types.is_date,
    pa.types.is_timestamp,
    pa.types.is_string,
    pa.types.is_large_string,
)


def _read_card_html(fd: int, length: int) -> str:
    chunks: list[bytes] = []
    offset = 0
    while offset < length:
        chunk = os.pread(fd, length - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _read_transform_table(fd: int, length: int) -> pa.Table:
    """Zero-copy: the table's buffers point into a read-only map of the memfd.

    The bytes come from an untrusted process, so the table is fully validated (offsets,
    UTF-8, lengths) before anything in the worker touches its values.
    """
    if length == 0:
        raise ValueError("empty result stream")
    view = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ)
    table = pa.ipc.open_stream(pa.py_buffer(view)).read_all()
    table.validate(full=True)
    for column in table.schema:
        if not any(check(column.type) for check in _ALLOWED):
            raise ValueError(f"column {column.name!r} has unsupported type {column.type}")
    return table


def _describe_death(exit_info: dict[str, Any], limits: SandboxLimits) -> ExecutionError:
    """Why a child died without replying, from its wait status and CPU time."""
    if exit_info.get("lost"):
        return _error(
            ExecutionErrorCode.WORKER_LOST,
            "The sandbox restarted while this code was running; run it again.",
        )
    status = int(exit_info.get("status", 0))
    cpu = float(exit_info.get("cpu", 0.0))
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds - 0.05):
            return _error(
                ExecutionErrorCode.TIMEOUT,
                f"The code used more than its {limits.cpu_seconds} s of CPU time and was stopped.",
            )
        if sig == signal.SIGKILL:
            return _error(
                ExecutionErrorCode.MEMORY_LIMIT,
                "The code was killed by the system, most likely for using too much memory.",
            )
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return _error(ExecutionErrorCode.RUNTIME_ERROR, f"The code crashed ({name}).")
    code = os.waitstatus_to_exitcode(status)
    return _error(
        ExecutionErrorCode.RUNTIME_ERROR,
        f"The code ended the process (exit status {code}) before returning a result.",
    )


class Sandbox:
    """Runs cards and transforms in a bubblewrap sandbox (or plain processes in ``process``
    mode), from a warm zygote with pre-forked children. See the module docstring."""

    def __init__(
        self,
        *,
        mode: Mode = "bwrap",
        slots: int | None = None,
        prefork: int = 2,
        uid_base: int | None = None,
        seccomp: bool = True,
        job_namespaces: bool = True,
        bwrap: str = "bwrap",
        start_timeout: float = 120.0,
    ) -> None:
        """``uid_base``: slot *n* runs as uid ``uid_base + n`` when the worker is root. By
        default each Sandbox claims a host-wide block of its own (see uids.py), so any number
        of workers can share a machine. ``job_namespaces=False`` forces the
        process-group + subreaper cleanup used where per-job PID namespaces are unavailable.
        """
        if mode not in ("bwrap", "process"):
            raise ValueError(f"unknown sandbox mode {mode!r}")
        self.mode: Mode = mode
        self.slots = max(1, slots if slots is not None else (os.cpu_count() or 1))
        self.prefork = max(0, prefork)
        self._uids = UidBlock.fixed(uid_base) if uid_base is not None else None
        self._seccomp = seccomp
        self._job_namespaces = job_namespaces
        self._bwrap = bwrap
        self._start_timeout = start_timeout
        self._layout = bwrap_cmd.PythonLayout.of_current()
        self._zygote: _Zygote | None = None
        self._start_lock = asyncio.Lock()
        self._slot_pool = _SlotPool(self.slots)
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self._current: dict[int, _Child] = {}  # busy slot -> its child, for cleanup on cancel

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the zygote now rather than on the first run."""
        await self._ensure_zygote()

    @property
    def uid_base(self) -> int:
        """The first slot uid (slots use ``uid_base`` .. ``uid_base + slots - 1``)."""
        if self._uids is None:
            self._uids = UidBlock.claim(self.slots)
        return self._uids.base

    @property
    def features(self) -> dict[str, Any]:
        """What the running zygote reported: namespaces, uid switching, seccomp, network."""
        return dict(self._zygote.features) if self._zygote else {}

    @property
    def zygote_pid(self) -> int | None:
        """Host pid of the zygote's outermost process (bwrap, or the zygote in process mode)."""
        return self._zygote.process.pid if self._zygote and not self._zygote.dead else None

    async def close(self) -> None:
        """Kill the zygote and every child; in-flight runs end with WORKER_LOST."""
        self._closed = True
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            await self._destroy(zygote)
        if self._uids is not None:
            self._uids.release()

    async def _ensure_zygote(self) -> _Zygote:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        zygote = self._zygote
        if zygote is not None and not zygote.dead:
            return zygote
        async with self._start_lock:
            zygote = self._zygote
            if zygote is not None and not zygote.dead:
                return zygote
            if zygote is not None:
                log.warning("sandbox zygote died; restarting it")
                await self._destroy(zygote)
            started = await self._start_zygote()
            if self._closed:  # closed while it was starting
                await self._destroy(started)
                raise SandboxError("the sandbox is closed")
            self._zygote = started
            return started

    async def _start_zygote(self) -> _Zygote:
        staging = Path(tempfile.mkdtemp(prefix="tilegraph-sandbox-"))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process: asyncio.subprocess.Process | None = None
        try:
            bwrap_cmd.stage_runtime(staging)
            config: dict[str, object] = {
                "control_fd": theirs.fileno(),
                "mode": self.mode,
                "uid_base": self.uid_base,
                "seccomp": self._seccomp,
                "job_namespaces": self._job_namespaces,
                "tmp_root": "/tmp" if self.mode == "bwrap" else str(staging / "tmp"),
                "stash_root": str(staging),
                "expose": [self._layout.prefix, *self._layout.site_packages],
            }
            env = {"PATH": "/usr/bin:/bin"}
            if self.mode == "bwrap":
                command = bwrap_cmd.bwrap_command(self._layout, staging, config, bwrap=self._bwrap)
            else:
                command = bwrap_cmd.process_command(self._layout, staging, config)
                env = dict(bwrap_cmd.BASE_ENV, HOME=str(staging / "tmp"))
                env["TMPDIR"] = str(staging / "tmp")
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env=env,
                cwd=str(staging),
            )
        except BaseException:
            ours.close()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            theirs.close()
        control = AsyncChannel(ours, max_payload=_MAX_CONTROL_FRAME)
        zygote = _Zygote(process=process, control=control, staging=staging)
        zygote.tasks.append(asyncio.create_task(self._drain_stderr(zygote)))
        try:
            message, fds = await asyncio.wait_for(control.recv(), self._start_timeout)
            close_fds(fds)
            if message.get("op") != "ready":
                raise ProtocolError(f"unexpected first message {message.get('op')!r}")
        except (TimeoutError, ChannelClosed, ProtocolError) as exc:
            await self._destroy(zygote)
            tail = "\n".join(zygote.stderr_tail)
            raise SandboxError(f"the sandbox zygote failed to start ({exc}): {tail}") from None
        except BaseException:  # cancelled while waiting: never leave a zygote behind
            await self._destroy(zygote)
            raise
        zygote.features = {k: v for k, v in message.items() if k != "op"}
        zygote.tasks.append(asyncio.create_task(self._read_control(zygote)))
        log.info("sandbox zygote ready (%s): %s", self.mode, zygote.features)
        if self.mode == "process":
            log.warning(
                "sandbox in process mode: no bubblewrap, so user code can read the host's "
                "world-readable files (namespaces, uid, rlimits and seccomp still apply)"
            )
        await self._request_children(zygote)
        return zygote

    async def _drain_stderr(self, zygote: _Zygote) -> None:
        stream = zygote.process.stderr
        if stream is None:
            return
        while True:
            line = await stream.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            zygote.stderr_tail.append(text)
            log.warning("sandbox zygote: %s", text)  # it only writes there when something fails

    async def _read_control(self, zygote: _Zygote) -> None:
        try:
            while True:
                message, fds = await zygote.control.recv()
                op = message.get("op")
                if op == "child" and len(fds) == 2:
                    zygote.pending = max(0, zygote.pending - 1)
                    self._add_child(zygote, int(message["id"]), fds)
                elif op == "exit":
                    close_fds(fds)
                    child = zygote.children.pop(int(message["id"]), None)
                    if child is not None and not child.exited.done():
                        child.exited.set_result(message)
                else:
                    close_fds(fds)
        except (ChannelClosed, ProtocolError, KeyError, ValueError, TypeError):
            pass
        finally:
            self._mark_dead(zygote)
            if not self._closed and self._zygote is zygote:
                self._restart_soon()

    def _restart_soon(self) -> None:
        """A zygote died on its own: bring up the next one now, not on the next run."""

        async def restart() -> None:
            try:
                await self._ensure_zygote()
            except (SandboxError, OSError) as exc:
                log.error("sandbox zygote restart failed: %s", exc)

        self._in_background(restart())

    def _add_child(self, zygote: _Zygote, child_id: int, fds: list[int]) -> None:
        loop = asyncio.get_running_loop()
        child = _Child(
            id=child_id,
            sock=socket.socket(fileno=fds[0]),
            pidfd=fds[1],
            exited=loop.create_future(),
            zygote=zygote,
        )
        zygote.children[child_id] = child
        while zygote.waiters:
            waiter = zygote.waiters.popleft()
            if not waiter.done():
                waiter.set_result(child)
                return
        zygote.ready.append(child)

    def _mark_dead(self, zygote: _Zygote) -> None:
        if zygote.dead:
            return
        zygote.dead = True
        for child in zygote.children.values():
            if not child.exited.done():
                child.exited.set_result({"lost": True})
        zygote.children.clear()
        for child in zygote.ready:
            child.dispose()
        zygote.ready.clear()
        while zygote.waiters:
            waiter = zygote.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ChannelClosed("zygote died"))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(zygote.process.pid, signal.SIGKILL)

    async def _destroy(self, zygote: _Zygote) -> None:
        if not zygote.dead:
            # Closing the control channel asks the zygote to kill and sweep its children
            # itself; give it a moment before the whole process group goes.
            zygote.control.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(zygote.process.wait(), _EXIT_GRACE)
        self._mark_dead(zygote)
        zygote.control.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(zygote.process.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(zygote.process.wait(), 10)
        current = asyncio.current_task()
        for task in zygote.tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in zygote.tasks if t is not current), return_exceptions=True)
        shutil.rmtree(zygote.staging, ignore_errors=True)

    async def _request_children(self, zygote: _Zygote) -> None:
        """Keep ``prefork`` idle children (plus one per waiting job) on order."""
        want = max(self.prefork, 1) + len(zygote.waiters) - len(zygote.ready) - zygote.pending
        if want <= 0 or zygote.dead:
            return
        zygote.pending += want
        try:
            async with zygote.send_lock:
                await zygote.control.send({"op": "spawn", "count": want})
        except (ChannelClosed, OSError):
            self._mark_dead(zygote)

    def _spawn_soon(self, zygote: _Zygote) -> None:
        self._in_background(self._request_children(zygote))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on its own, keeping a reference until it ends (the loop keeps none)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _take_child(self) -> _Child:
        for _ in range(5):
            zygote = await self._ensure_zygote()
            if zygote.ready:
                child = zygote.ready.popleft()
            else:
                waiter: asyncio.Future[_Child] = asyncio.get_running_loop().create_future()
                zygote.waiters.append(waiter)
                self._spawn_soon(zygote)
                try:
                    child = await asyncio.wait_for(waiter, _CHILD_TIMEOUT)
                except ChannelClosed:
                    continue
                except TimeoutError:  # alive but not forking (stopped, wedged): replace it
                    log.error("sandbox zygote forked no child in %s s; restarting", _CHILD_TIMEOUT)
                    if self._zygote is zygote:
                        self._zygote = None
                    await self._destroy(zygote)
                    continue
            self._spawn_soon(zygote)
            if child.is_dead():
                zygote.children.pop(child.id, None)
                child.dispose()
                continue
            return child
        raise SandboxError("could not get a sandbox child process")

    # -- running a job ---------------------------------------------------------------------

    async def run(
        self,
        job: CardJob | TransformJob,
        limits: SandboxLimits,
        cancel: asyncio.Event | None = None,
    ) -> SandboxResult:
        """Run one job; every failure of the user's code comes back as ``result.error``."""
        if cancel is not None and cancel.is_set():
            return SandboxResult(None, _cancelled(), 0.0)
        slot = await self._acquire_slot(cancel)
        if slot is None:
            return SandboxResult(None, _cancelled(), 0.0)
        started = time.perf_counter()
        try:
            outcome, child = await self._run_in_slot(job, limits, slot, cancel)
        except BaseException:  # cancelled as a coroutine, or the sandbox itself failed
            self._release_after_death(slot)
            raise
        self._finish_child(child, slot)
        return SandboxResult(outcome[0], outcome[1], (time.perf_counter() - started) * 1000)

    async def _acquire_slot(self, cancel: asyncio.Event | None) -> int | None:
        if cancel is None:
            return await self._slot_pool.acquire()
        acquire = asyncio.ensure_future(self._slot_pool.acquire())
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            await asyncio.wait({acquire, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if not acquire.done():
                acquire.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquire
        if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
            slot = acquire.result()
            if cancel.is_set():
                self._slot_pool.release(slot)
                return None
            return slot
        return None

    def _release_after_death(self, slot: int) -> None:
        """The run ended abnormally: kill its child; the slot frees once the child is gone."""
        child = self._current.pop(slot, None)

        async def wait_then_release() -> None:
            try:
                if child is not None:
                    child.kill()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(child.exited), _EXIT_GRACE)
                    child.dispose()
            finally:
                self._slot_pool.release(slot)

        self._in_background(wait_then_release())

    def _finish_child(self, child: _Child | None, slot: int) -> None:
        self._current.pop(slot, None)
        if child is not None:
            child.dispose()
        self._slot_pool.release(slot)

    async def _run_in_slot(
        self,
        job: CardJob | TransformJob,
        limits: SandboxLimits,
        slot: int,
        cancel: asyncio.Event | None,
    ) -> tuple[tuple[CardOutput | TransformOutput | None, ExecutionError | None], _Child | None]:
        if isinstance(job, CardJob):
            kind, tables, names = (
                "card",
                list(job.inputs),
                [f"input_{i}" for i in range(len(job.inputs))],
            )
            filters = filters_to_wire(job.filters)
        else:
            kind, tables, names = (
                "transform",
                [t for _, t in job.inputs],
                [n for n, _ in job.inputs],
            )
            filters = []
        header = {
            "op": "job",
            "kind": kind,
            "code": job.code,
            "params": job.params,
            "filters": filters,
            "slot": slot,
            "limits": limits.to_wire(),
            "inputs": names,
        }
        if sum(t.nbytes for t in tables) > _THREAD_WRITE_BYTES:
            input_fds = await asyncio.to_thread(_write_inputs, tables)
        else:
            input_fds = _write_inputs(tables)
        try:
            for attempt in range(_ATTEMPTS):
                out_fd = os.memfd_create("tilegraph-output", os.MFD_CLOEXEC)
                try:
                    child = await self._send_job(header, [out_fd, *input_fds], slot)
                    try:
                        return await self._await_outcome(child, kind, limits, cancel, out_fd), child
                    except _NotStarted:
                        child.kill()
                        child.dispose()
                        raise
                except _NotStarted:
                    # Died before taking or acknowledging the job (its zygote was killed,
                    # say): no user code ran, so hand the job to a fresh child.
                    log.warning("sandbox child died before starting; retrying the job")
                    self._current.pop(slot, None)
                    if attempt == _ATTEMPTS - 1:
                        raise SandboxError("sandbox children keep dying") from None
                finally:
                    os.close(out_fd)
            raise AssertionError("unreachable")
        finally:
            close_fds(input_fds)

    async def _send_job(self, header: dict[str, Any], fds: list[int], slot: int) -> _Child:
        """A child holding the job; _NotStarted when the idle child died under us."""
        child = await self._take_child()
        self._current[slot] = child
        channel = AsyncChannel(child.sock, max_payload=_MAX_REPLY_FRAME, max_queued=2)
        try:
            await channel.send(header, fds)
        except (OSError, ChannelClosed) as exc:
            channel.stop_reading()
            child.kill()
            child.dispose()
            raise _NotStarted from exc
        child.channel = channel
        return child

    async def _await_outcome(
        self,
        child: _Child,
        kind: str,
        limits: SandboxLimits,
        cancel: asyncio.Event | None,
        out_fd: int,
    ) -> tuple[CardOutput | TransformOutput | None, ExecutionError | None]:
        channel = child.channel
        assert channel is not None
        reply_task = asyncio.ensure_future(self._read_reply(child, channel))
        cancel_task = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        waits: set[asyncio.Future[Any]] = {reply_task, child.exited}
        if cancel_task is not None:
            waits.add(cancel_task)
        try:
            done, _ = await asyncio.wait(
                waits, timeout=limits.wall_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if cancel_task is not None and cancel_task in done:
                child.kill()
                await self._wait_exit(child)
                return None, _cancelled()
            if not done:
                child.kill()
                await self._wait_exit(child)
                return None, _error(
                    ExecutionErrorCode.TIMEOUT,
                    f"The code ran longer than its {limits.wall_seconds:g} s limit and was "
                    "stopped.",
                )
            if reply_task not in done:
                # Died first; a reply written just before death is still in the socket.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait({reply_task}, timeout=_REPLY_GRACE)
            reply: dict[str, Any] | None = None
            if reply_task.done() and not reply_task.cancelled():
                failure = reply_task.exception()
                if failure is None:
                    reply, fds = reply_task.result()
                    close_fds(fds)
                elif isinstance(failure, ProtocolError):
                    child.kill()
                    await self._wait_exit(child)
                    return None, _error(
                        ExecutionErrorCode.BAD_RESULT,
                        "The code wrote garbage into the sandbox's result channel.",
                    )
            if reply is None:
                exit_info = await self._wait_exit(child)
                if not child.started:
                    raise _NotStarted()
                return None, _describe_death(exit_info, limits)
            await self._wait_gone(child)
            return self._parse_reply(reply, kind, out_fd, limits)
        finally:
            for task in (reply_task, cancel_task):
                if task is not None and not task.done():
                    task.cancel()
            if reply_task.done() and not reply_task.cancelled():
                reply_task.exception()  # consumed: no "never retrieved" warnings
            channel.close()

    @staticmethod
    async def _read_reply(child: _Child, channel: AsyncChannel) -> tuple[dict[str, Any], list[int]]:
        """The child acknowledges the job first (so we know user code may have run), then
        sends its one reply."""
        message, fds = await channel.recv()
        if message.get("op") == "started" and not child.started:
            close_fds(fds)
            child.started = True
            message, fds = await channel.recv()
        return message, fds

    async def _wait_gone(self, child: _Child) -> None:
        """After a reply: wait until nothing of the job is left.

        With per-job PID namespaces the child's pidfd turns readable only once the kernel has
        killed and reaped everything in its namespace, so that is enough (and skips a hop
        through the zygote). Without them, the zygote's exit notice comes after its sweep.
        """
        if not child.zygote.features.get("job_namespaces"):
            await self._wait_exit(child)
            return
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()
        loop.add_reader(child.pidfd, resolve_once, gone)
        try:
            try:
                await asyncio.wait_for(gone, _EXIT_GRACE)
                return
            except TimeoutError:
                child.kill()
            await self._wait_exit(child)
        finally:
            loop.remove_reader(child.pidfd)

    async def _wait_exit(self, child: _Child) -> dict[str, Any]:
        """Wait for the zygote's exit notice (wait status, CPU time) for this child."""
        try:
            return await asyncio.wait_for(asyncio.shield(child.exited), _EXIT_GRACE)
        except TimeoutError:
            pass
        child.kill()
        try:
            return await asyncio.wait_for(asyncio.shield(child.exited), _EXIT_GRACE)
        except TimeoutError:
            # The zygote stopped answering: restart it, which kills everything it forked.
            log.error("sandbox zygote unresponsive; restarting it")
            zygote = child.zygote
            if self._zygote is zygote:
                self._zygote = None
            await self._destroy(zygote)
            return {"lost": True}

    def _parse_reply(
        self, reply: dict[str, Any], kind: str, out_fd: int, limits: SandboxLimits
    ) -> tuple[CardOutput | TransformOutput | None, ExecutionError | None]:
        """Turn the child's reply into a result, trusting none of it."""
        if not reply.get("ok"):
            error = reply.get("error")
            if not isinstance(error, dict):
                return None, _error(ExecutionErrorCode.RUNTIME_ERROR, "Malformed sandbox reply.")
            try:
                code = ExecutionErrorCode(str(error.get("code")))
            except ValueError:
                code = ExecutionErrorCode.RUNTIME_ERROR
            line = error.get("line")
            return None, _error(
                code,
                str(error.get("message", ""))[:10000],
                line if isinstance(line, int) and not isinstance(line, bool) else None,
            )
        length = reply.get("length")
        size = os.fstat(out_fd).st_size
        if reply.get("kind") != kind or not isinstance(length, int) or not 0 <= length <= size:
            return None, _error(
                ExecutionErrorCode.BAD_RESULT, "The sandbox returned no usable result."
            )
        if length > limits.max_output_bytes:
            return None, _error(
                ExecutionErrorCode.OUTPUT_TOO_LARGE,
                f"The result is {length} bytes; the limit is {limits.max_output_bytes}.",
            )
        if kind == "card":
            used = reply.get("used_columns") or []
            applicable = reply.get("filter_applicable") or []
            if not (_is_str_list(used) and _is_str_list(applicable)):
                return None, _error(ExecutionErrorCode.BAD_RESULT, "Malformed column lists.")
            return CardOutput(_read_card_html(out_fd, length), list(used), list(applicable)), None
        try:
            table = _read_transform_table(out_fd, length)
        except (ValueError, OSError, pa.ArrowException) as exc:
            return None, _error(ExecutionErrorCode.BAD_RESULT, f"Unreadable result table: {exc}")
        return TransformOutput(table), None


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _cancelled() -> ExecutionError:
    return _error(ExecutionErrorCode.CANCELLED, "The run was cancelled.")
