"""The worker's end of the zygote: starting it (under bubblewrap, or directly in ``process``
mode), keeping pre-forked children on order, handing them out, and restarting it when it
dies or stops answering.

The conversation: the zygote says ``ready`` with its features, then for each ``spawn`` request
sends one ``child`` message per fork (the child's socket and pidfd) and later an ``exit``
notice with its wait status and CPU time. Each child gets one ``job`` frame (with memfds) on
its own socket, answers ``started`` before any user code runs, then sends one reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import tempfile
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import bwrap as bwrap_cmd
from .protocol import (
    MAX_CONTROL_FRAME,
    AsyncChannel,
    ChannelClosed,
    ProtocolError,
    close_fds,
    resolve_once,
)

log = logging.getLogger(__name__)

Mode = Literal["bwrap", "process"]

_MAX_REPLY_FRAME = 1 << 20
_EXIT_GRACE = 5.0  # how long a killed child may take to be reported dead
_CHILD_TIMEOUT = 30.0  # how long to wait for the zygote to fork a child before replacing it


class SandboxError(Exception):
    """The sandbox itself could not run (not the user's code failing)."""


class NotStarted(Exception):
    """The child died before acknowledging its job."""


@dataclass(eq=False)
class Child:
    """One pre-forked child as the worker sees it."""

    id: int
    sock: socket.socket
    pidfd: int
    exited: asyncio.Future[dict[str, Any]]
    zygote: Zygote
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

    def abandon(self) -> None:
        """Kill it and let go of it; for a child that never ran user code."""
        self.kill()
        self.dispose()

    async def exit_notice(self) -> dict[str, Any]:
        """The zygote's exit notice for this child; TimeoutError if it takes too long."""
        return await asyncio.wait_for(asyncio.shield(self.exited), _EXIT_GRACE)

    async def send_job(self, header: dict[str, Any], fds: list[int]) -> None:
        """Hand the child its job; NotStarted when the idle child died under us."""
        channel = AsyncChannel(self.sock, max_payload=_MAX_REPLY_FRAME, max_queued=2)
        try:
            await channel.send(header, fds)
        except (OSError, ChannelClosed) as exc:
            channel.stop_reading()
            self.abandon()
            raise NotStarted from exc
        self.channel = channel

    async def read_reply(self) -> tuple[dict[str, Any], list[int]]:
        """The child acknowledges the job first (so we know user code may have run), then
        sends its one reply."""
        channel = self.channel
        assert channel is not None
        message, fds = await channel.recv()
        if message.get("op") == "started" and not self.started:
            close_fds(fds)
            self.started = True
            message, fds = await channel.recv()
        return message, fds


@dataclass(eq=False)
class Zygote:
    """A running zygote and what it has handed us."""

    process: asyncio.subprocess.Process
    control: AsyncChannel
    staging: Path
    features: dict[str, Any] = field(default_factory=dict)
    ready: deque[Child] = field(default_factory=deque)
    waiters: deque[asyncio.Future[Child]] = field(default_factory=deque)
    children: dict[int, Child] = field(default_factory=dict)
    pending: int = 0
    dead: bool = False
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ZygoteClient:
    """One zygote at a time, started on demand and replaced when it dies."""

    def __init__(
        self,
        *,
        mode: Mode,
        prefork: int,
        uid_base: Callable[[], int],
        seccomp: bool,
        job_namespaces: bool,
        bwrap: str,
        start_timeout: float,
    ) -> None:
        """``uid_base`` is asked when a zygote starts (the slot uids may be claimed lazily)."""
        self.mode: Mode = mode
        self.prefork = prefork
        self._uid_base = uid_base
        self._seccomp = seccomp
        self._job_namespaces = job_namespaces
        self._bwrap = bwrap
        self._start_timeout = start_timeout
        self._layout = bwrap_cmd.PythonLayout.of_current()
        self._zygote: Zygote | None = None
        self._start_lock = asyncio.Lock()
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()

    @property
    def features(self) -> dict[str, Any]:
        """What the running zygote reported: namespaces, uid switching, seccomp, network."""
        return dict(self._zygote.features) if self._zygote else {}

    @property
    def pid(self) -> int | None:
        """Host pid of the zygote's outermost process (bwrap, or the zygote in process mode)."""
        return self._zygote.process.pid if self._zygote and not self._zygote.dead else None

    async def close(self) -> None:
        """Kill the zygote and every child, and end all background work."""
        self._closed = True
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            await self._destroy(zygote)

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on its own, keeping a reference until it ends (the loop keeps none);
        ``close`` cancels it."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def ensure(self) -> Zygote:
        """The running zygote, started (or restarted) if need be."""
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
            started = await self._start()
            if self._closed:  # closed while it was starting
                await self._destroy(started)
                raise SandboxError("the sandbox is closed")
            self._zygote = started
            return started

    async def _start(self) -> Zygote:
        staging = Path(tempfile.mkdtemp(prefix="tilegraph-sandbox-"))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process: asyncio.subprocess.Process | None = None
        try:
            bwrap_cmd.stage_runtime(staging)
            config: dict[str, object] = {
                "control_fd": theirs.fileno(),
                "mode": self.mode,
                "uid_base": self._uid_base(),
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
        control = AsyncChannel(ours, max_payload=MAX_CONTROL_FRAME)
        zygote = Zygote(process=process, control=control, staging=staging)
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

    async def _drain_stderr(self, zygote: Zygote) -> None:
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

    async def _read_control(self, zygote: Zygote) -> None:
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
                await self.ensure()
            except (SandboxError, OSError) as exc:
                log.error("sandbox zygote restart failed: %s", exc)

        self.in_background(restart())

    def _add_child(self, zygote: Zygote, child_id: int, fds: list[int]) -> None:
        loop = asyncio.get_running_loop()
        child = Child(
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

    def _mark_dead(self, zygote: Zygote) -> None:
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

    async def _destroy(self, zygote: Zygote) -> None:
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

    async def _replace(self, zygote: Zygote) -> None:
        """Throw away a zygote that is alive but wedged; the next ``ensure`` starts another."""
        if self._zygote is zygote:
            self._zygote = None
        await self._destroy(zygote)

    async def _request_children(self, zygote: Zygote) -> None:
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

    def _spawn_soon(self, zygote: Zygote) -> None:
        self.in_background(self._request_children(zygote))

    async def take_child(self) -> Child:
        """A live pre-forked child (the zygote is asked for a replacement right away)."""
        for _ in range(5):
            zygote = await self.ensure()
            if zygote.ready:
                child = zygote.ready.popleft()
            else:
                waiter: asyncio.Future[Child] = asyncio.get_running_loop().create_future()
                zygote.waiters.append(waiter)
                self._spawn_soon(zygote)
                try:
                    child = await asyncio.wait_for(waiter, _CHILD_TIMEOUT)
                except ChannelClosed:
                    continue
                except TimeoutError:  # alive but not forking (stopped, wedged): replace it
                    log.error("sandbox zygote forked no child in %s s; restarting", _CHILD_TIMEOUT)
                    await self._replace(zygote)
                    continue
            self._spawn_soon(zygote)
            if child.is_dead():
                zygote.children.pop(child.id, None)
                child.dispose()
                continue
            return child
        raise SandboxError("could not get a sandbox child process")

    async def wait_gone(self, child: Child) -> None:
        """After a reply: wait until nothing of the job is left.

        With per-job PID namespaces the child's pidfd turns readable only once the kernel has
        killed and reaped everything in its namespace, so that is enough (and skips a hop
        through the zygote). Without them, the zygote's exit notice comes after its sweep.
        """
        if not child.zygote.features.get("job_namespaces"):
            await self.wait_exit(child)
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
            await self.wait_exit(child)
        finally:
            loop.remove_reader(child.pidfd)

    async def wait_exit(self, child: Child) -> dict[str, Any]:
        """Wait for the zygote's exit notice (wait status, CPU time) for this child."""
        try:
            return await child.exit_notice()
        except TimeoutError:
            pass
        child.kill()
        try:
            return await child.exit_notice()
        except TimeoutError:
            # The zygote stopped answering: restart it, which kills everything it forked.
            log.error("sandbox zygote unresponsive; restarting it")
            await self._replace(child.zygote)
            return {"lost": True}
