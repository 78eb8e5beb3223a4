"""Worker side of the sandbox: one job from slot to result.

Per job: take a slot (slots.py), take a pre-forked child from the zygote (zygote_client.py;
the zygote immediately forks a replacement), write each input table's Arrow IPC stream into a
memfd (transfer.py), send code + limits + memfds (and an empty output memfd) straight to the
child over its own socketpair, then wait for the first of: the reply, the child's death, the
wall-clock deadline, or cancellation; outcome.py says what a failure means to the user.
Timeouts and cancels SIGKILL the child through its pidfd; in its own PID namespace that takes
everything it started with it. Each slot has its own memory and pids budget for the job's
whole process tree (memory_cap.py); the child joins it before it gets its job, and a job over
it is killed as a whole and ends MEMORY_LIMIT. The slot (and its uid) is only reused once the
child is confirmed dead. A child acknowledges the job before any user code runs; one that dies
before that (killed while idle, say) is replaced and the job handed to a fresh child, so the
user is never blamed for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from . import outcome, transfer
from .jobs import CardJob, SandboxResult, TransformJob
from .limits import SandboxLimits
from .memory_cap import POLL_SECONDS, CapMode, JobGroup, MemoryCaps, host_pid
from .outcome import Outcome
from .protocol import ProtocolError, close_fds
from .slots import SlotPool
from .zygote_client import Child, Mode, NotStarted, SandboxError, ZygoteClient

__all__ = ["Mode", "Sandbox", "SandboxError"]

log = logging.getLogger(__name__)

_REPLY_GRACE = 2.0  # how long a reply may trail the child's exit notice
_ATTEMPTS = 3  # hand a job to a new child if the previous one died before acknowledging it


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
        memory_cap: CapMode = "auto",
    ) -> None:
        """``uid_base``: slot *n* runs as uid ``uid_base + n`` when the worker is root. By
        default each Sandbox claims a host-wide block of its own (see uids.py), so any number
        of workers can share a machine. ``job_namespaces=False`` forces the
        process-group + subreaper cleanup used where per-job PID namespaces are unavailable.
        ``memory_cap``: how a job's whole process tree is held to its memory limit
        (memory_cap.py); ``auto`` takes the best the host allows.
        """
        if mode not in ("bwrap", "process"):
            raise ValueError(f"unknown sandbox mode {mode!r}")
        self._slots = SlotPool(
            max(1, slots if slots is not None else (os.cpu_count() or 1)), uid_base
        )
        self._zygotes = ZygoteClient(
            mode=mode,
            prefork=max(0, prefork),
            uid_base=lambda: self._slots.uid_base,
            seccomp=seccomp,
            job_namespaces=job_namespaces,
            bwrap=bwrap,
            start_timeout=start_timeout,
        )
        self._current: dict[int, Child] = {}  # busy slot -> its child, for cleanup on cancel
        self._memory_cap: CapMode = memory_cap
        self._caps: MemoryCaps | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the zygote now rather than on the first run."""
        self._job_groups()
        await self._zygotes.ensure()

    def _job_groups(self) -> MemoryCaps:
        if self._caps is None:
            self._caps = MemoryCaps.open(self._memory_cap, self._slots.size)
            log.info("sandbox memory cap: %s", self._caps.kind)
        return self._caps

    @property
    def memory_cap(self) -> str:
        """The kind of per-job memory cap in force: cgroup2, cgroup1, watchdog or off."""
        return self._job_groups().kind

    @property
    def mode(self) -> Mode:
        return self._zygotes.mode

    @property
    def slots(self) -> int:
        """How many jobs may run at once."""
        return self._slots.size

    @property
    def prefork(self) -> int:
        """How many idle children the zygote keeps forked ahead of demand."""
        return self._zygotes.prefork

    @property
    def uid_base(self) -> int:
        """The first slot uid (slots use ``uid_base`` .. ``uid_base + slots - 1``)."""
        return self._slots.uid_base

    @property
    def features(self) -> dict[str, Any]:
        """What the running zygote reported: namespaces, uid switching, seccomp, network."""
        return self._zygotes.features

    @property
    def zygote_pid(self) -> int | None:
        """Host pid of the zygote's outermost process (bwrap, or the zygote in process mode)."""
        return self._zygotes.pid

    async def close(self) -> None:
        """Kill the zygote and every child; in-flight runs end with WORKER_LOST."""
        await self._zygotes.close()
        if self._caps is not None:
            self._caps.close()
        self._slots.close()

    # -- running a job ---------------------------------------------------------------------

    async def run(
        self,
        job: CardJob | TransformJob,
        limits: SandboxLimits,
        cancel: asyncio.Event | None = None,
    ) -> SandboxResult:
        """Run one job; every failure of the user's code comes back as ``result.error``."""
        if cancel is not None and cancel.is_set():
            return SandboxResult(None, outcome.cancelled(), 0.0)
        slot = await self._slots.acquire_unless(cancel)
        if slot is None:
            return SandboxResult(None, outcome.cancelled(), 0.0)
        started = time.perf_counter()
        group = self._job_groups().groups[slot]
        try:
            (output, error), child = await self._run_in_slot(job, limits, slot, cancel)
        except BaseException:  # cancelled as a coroutine, or the sandbox itself failed
            self._release_after_death(slot)
            raise
        peak = group.peak_bytes()
        self._finish_child(child, slot)
        duration = (time.perf_counter() - started) * 1000
        return SandboxResult(output, error, duration, peak_memory_bytes=peak)

    def _release_after_death(self, slot: int) -> None:
        """The run ended abnormally: kill its child; the slot frees once the child is gone."""
        child = self._current.pop(slot, None)
        group = self._job_groups().groups[slot]

        async def wait_then_release() -> None:
            try:
                group.kill_all()
                if child is not None:
                    child.kill()
                    with contextlib.suppress(TimeoutError):
                        await child.exit_notice()
                    child.dispose()
            finally:
                self._slots.release(slot)

        self._zygotes.in_background(wait_then_release())

    def _finish_child(self, child: Child | None, slot: int) -> None:
        self._current.pop(slot, None)
        if child is not None:
            child.dispose()
        self._slots.release(slot)

    async def _run_in_slot(
        self,
        job: CardJob | TransformJob,
        limits: SandboxLimits,
        slot: int,
        cancel: asyncio.Event | None,
    ) -> tuple[Outcome, Child | None]:
        header, tables = transfer.job_frame(job, limits, slot)
        input_fds = await transfer.write_inputs(tables)
        group = self._job_groups().groups[slot]
        try:
            for attempt in range(_ATTEMPTS):
                out_fd = transfer.output_memfd()
                try:
                    child = await self._zygotes.take_child()
                    self._current[slot] = child
                    self._admit(child, group, limits)
                    await child.send_job(header, [out_fd, *input_fds])
                    try:
                        result = await self._await_outcome(
                            child, header["kind"], limits, cancel, out_fd, group
                        )
                    except NotStarted:
                        child.abandon()
                        raise
                    return result, child
                except NotStarted:
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

    @staticmethod
    def _admit(child: Child, group: JobGroup, limits: SandboxLimits) -> None:
        """Into the slot's memory and pids budget while still idle, before any user code."""
        try:
            group.prepare(limits.memory_bytes, limits.max_processes)
            group.admit(host_pid(child.pidfd))
        except ProcessLookupError:
            child.abandon()
            raise NotStarted() from None

    @staticmethod
    async def _watch_memory(group: JobGroup) -> None:
        """Returns once the job has gone over its memory limit (never, while it stays under).
        Sampling, not waiting on an event: the watchdog has nothing to wait on, and the cgroup
        counters are a few small reads."""
        while True:
            if await asyncio.to_thread(group.breached):
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _await_outcome(
        self,
        child: Child,
        kind: str,
        limits: SandboxLimits,
        cancel: asyncio.Event | None,
        out_fd: int,
        group: JobGroup,
    ) -> Outcome:
        channel = child.channel
        assert channel is not None
        reply_task = asyncio.ensure_future(child.read_reply())
        cancel_task = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        memory_task = asyncio.ensure_future(self._watch_memory(group))
        waits: set[asyncio.Future[Any]] = {reply_task, child.exited, memory_task}
        if cancel_task is not None:
            waits.add(cancel_task)
        try:
            done, _ = await asyncio.wait(
                waits, timeout=limits.wall_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if memory_task in done or (not reply_task.done() and group.breached()):
                group.kill_all()
                child.kill()
                await self._zygotes.wait_exit(child)
                return None, outcome.memory_limit(limits)
            if cancel_task is not None and cancel_task in done:
                child.kill()
                await self._zygotes.wait_exit(child)
                return None, outcome.cancelled()
            if not done:
                child.kill()
                await self._zygotes.wait_exit(child)
                return None, outcome.wall_timeout(limits)
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
                    await self._zygotes.wait_exit(child)
                    return None, outcome.garbled_reply()
            if reply is None:
                exit_info = await self._zygotes.wait_exit(child)
                if not child.started:
                    raise NotStarted()
                if group.breached():
                    return None, outcome.memory_limit(limits)
                return None, outcome.describe_death(exit_info, limits)
            await self._zygotes.wait_gone(child)
            if group.breached():  # a process of the job was killed for memory, the job went on
                return None, outcome.memory_limit(limits)
            if not reply.get("ok"):
                return None, outcome.reported_error(reply)
            return transfer.read_output(reply, kind, out_fd, limits)
        finally:
            for task in (reply_task, cancel_task, memory_task):
                if task is not None and not task.done():
                    task.cancel()
            if reply_task.done() and not reply_task.cancelled():
                reply_task.exception()  # consumed: no "never retrieved" warnings
            channel.close()
