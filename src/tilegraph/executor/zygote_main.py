"""The zygote: runs inside the sandbox, imports the data libraries once, forks job children.

It never runs user code and never sees job data. On the worker's ``spawn`` request it forks a
child (in its own PID namespace when the kernel lets us), hands the worker one end of a fresh
socketpair plus a pidfd for the child, and keeps nothing of the pair itself. When a child exits
it reaps it, sweeps up anything the job left behind (only needed without a PID namespace) and
reports ``exit`` with the wait status and CPU time. Stdlib + data libraries only.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Any, NoReturn

from . import child, linux, protocol, runner, seccomp

BACKGROUND_NICE = 10
_JOB_FLAGS = linux.CLONE_NEWNS | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS | linux.CLONE_NEWNET


def _probe_job_namespaces() -> str | None:
    """Find out, in throwaway processes, how (or whether) children get their own namespaces.

    Returns "setns" (unshare the PID namespace for one fork, then setns back), "intermediate"
    (a helper process unshares and forks the child) or None.
    """
    pid = os.fork()
    if pid == 0:
        code = 10
        try:
            own_ns = os.open("/proc/self/ns/pid", os.O_RDONLY)
            linux.unshare(linux.CLONE_NEWPID)
            inner = os.fork()
            if inner == 0:
                try:
                    linux.unshare(_JOB_FLAGS)
                    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE, None)
                    linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV, None)
                    linux.mount("tmpfs", "/tmp", "tmpfs", linux.MS_NOSUID, "size=65536,mode=0700")
                    os._exit(0 if os.getpid() == 1 else 11)
                except BaseException:
                    os._exit(11)
            try:
                linux.setns(own_ns, linux.CLONE_NEWPID)
                setns_ok = True
            except OSError:
                setns_ok = False
            _, status = os.waitpid(inner, 0)
            mounts_ok = os.waitstatus_to_exitcode(status) == 0
            code = (0 if setns_ok else 1) if mounts_ok else 11
        except BaseException:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {0: "setns", 1: "intermediate"}.get(os.waitstatus_to_exitcode(status))


def _blocked_ancestor(path: str) -> str | None:
    """The topmost directory on ``path`` that other users cannot traverse, if any."""
    current = "/"
    for part in os.path.normpath(path).strip("/").split("/"):
        current = os.path.join(current, part)
        try:
            if not os.stat(current).st_mode & 0o001:
                return current
        except OSError:
            return None
    return None


def _expose_interpreter(paths: list[str], stash_root: str) -> None:
    """Process mode as root: make the interpreter readable to per-slot uids.

    The pyenv prefix lives under /root (0700). In a private mount namespace for the zygote
    (inherited by every child) we cover that ancestor with an empty 0755 tmpfs -- which also
    hides the rest of it from jobs -- and bind just the needed directories back at their paths.
    """
    blocked = {p: a for p in paths if (a := _blocked_ancestor(p)) is not None}
    if not blocked:
        return
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE, None)
    stashes: dict[str, str] = {}
    for index, path in enumerate(blocked):
        stash = os.path.join(stash_root, f"expose-{index}")
        os.mkdir(stash, 0o755)
        linux.mount(path, stash, None, linux.MS_BIND | linux.MS_REC, None)
        stashes[path] = stash
    for ancestor in sorted(set(blocked.values()), key=len):
        linux.mount("tmpfs", ancestor, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755")
    for path, stash in stashes.items():
        os.makedirs(path, mode=0o755, exist_ok=True)
        linux.mount(stash, path, None, linux.MS_BIND | linux.MS_REC, None)
        flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
        linux.mount("none", path, None, flags, None)


def _isolate_network() -> bool:
    """Process mode only: give the zygote (and so every job) an empty network namespace."""
    try:
        linux.unshare(linux.CLONE_NEWNET | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS)
        return True
    except OSError:
        return False


class Zygote:
    """The fork server loop."""

    def __init__(self, control: socket.socket, config: dict[str, Any], ns_method: str | None):
        self.control = control
        self.config = config
        self.ns_method = ns_method
        drop_uid = os.geteuid() == 0 and linux.has_capability(linux.CAP_SETUID)
        self.child_config = child.ChildConfig(
            job_namespaces=ns_method is not None,
            drop_uid=drop_uid,
            uid_base=int(config.get("uid_base", 64000)),
            use_seccomp=bool(config.get("seccomp", True)) and seccomp.supported(),
            fallback_tmp_root=str(config.get("tmp_root", "/tmp")),
            pdeathsig=ns_method != "intermediate",
            forbidden_loaded=tuple(runner.loaded_forbidden_modules()),
            renice=linux.has_capability(linux.CAP_SYS_NICE),
        )
        self.children: dict[int, int] = {}  # pid -> child id
        self.next_id = 1
        self.decoder = protocol.FrameDecoder(protocol.MAX_CONTROL_FRAME)
        self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector = selectors.DefaultSelector()

    # -- forking -----------------------------------------------------------------------------

    def _become_child(self, job_sock: socket.socket) -> None:
        """In the fork: drop every zygote resource, then serve one job. Never returns."""
        try:
            self.selector.close()
            self.control.detach()
            child.prepare(job_sock, self.child_config)
            child.serve(job_sock, self.child_config)
        except BaseException:
            pass
        os._exit(71)

    def _fork_child(self, job_sock: socket.socket, worker_sock: socket.socket) -> int:
        if self.ns_method == "setns":
            linux.unshare(linux.CLONE_NEWPID)
            try:
                pid = os.fork()
            except BaseException:
                linux.setns(self.pidns_fd, linux.CLONE_NEWPID)
                raise
            if pid == 0:
                worker_sock.detach()
                self._become_child(job_sock)
            linux.setns(self.pidns_fd, linux.CLONE_NEWPID)
            return pid
        if self.ns_method == "intermediate":
            read_end, write_end = os.pipe()
            helper = os.fork()
            if helper == 0:
                try:
                    os.close(read_end)
                    linux.unshare(linux.CLONE_NEWPID)
                    pid = os.fork()
                    if pid == 0:
                        os.close(write_end)
                        worker_sock.detach()
                        self._become_child(job_sock)
                    os.write(write_end, struct.pack("=i", pid))
                finally:
                    os._exit(0)
            os.close(write_end)
            data = os.read(read_end, 4)
            os.close(read_end)
            os.waitpid(helper, 0)
            if len(data) != 4:
                raise OSError("namespace helper failed")
            return int(struct.unpack("=i", data)[0])
        pid = os.fork()
        if pid == 0:
            worker_sock.detach()
            self._become_child(job_sock)
        return pid

    def spawn(self) -> None:
        worker_sock, job_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = self._fork_child(job_sock, worker_sock)
        finally:
            job_sock.close()
        child_id = self.next_id
        self.next_id += 1
        self.children[pid] = child_id
        pidfd = os.pidfd_open(pid)
        try:
            self._send({"op": "child", "id": child_id, "pid": pid}, [worker_sock.fileno(), pidfd])
        finally:
            worker_sock.close()
            os.close(pidfd)

    # -- reaping -----------------------------------------------------------------------------

    def _my_children(self) -> set[int]:
        found: set[int] = set()
        task_dir = f"/proc/{os.getpid()}/task"
        try:
            for tid in os.listdir(task_dir):
                with open(f"{task_dir}/{tid}/children") as handle:
                    found.update(int(p) for p in handle.read().split())
            return found
        except OSError:
            pass
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me:
                    found.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
        return found

    def _sweep(self, pid: int) -> None:
        """Without a per-job PID namespace: kill the job's process group, then every orphan
        that was reparented to us (we are a child subreaper) until none is left."""
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        for _ in range(1000):
            strays = self._my_children() - set(self.children)
            if not strays:
                break
            for stray in strays:
                with contextlib.suppress(OSError):
                    os.kill(stray, signal.SIGKILL)
            for stray in strays:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(stray, 0)
        self._remove_job_tmp(os.path.join(self.child_config.fallback_tmp_root, f"job-{pid}"))

    def _remove_job_tmp(self, path: str) -> None:
        """Delete a fallback temp dir as its owner: the zygote has no CAP_DAC_OVERRIDE."""
        try:
            owner = os.lstat(path).st_uid
        except OSError:
            return
        helper = os.fork()
        if helper == 0:
            try:
                import shutil

                if owner != os.geteuid():
                    os.setresgid(owner, owner, owner)
                    os.setresuid(owner, owner, owner)
                shutil.rmtree(path, ignore_errors=True)
            finally:
                os._exit(0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(helper, 0)

    def reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child_id = self.children.pop(pid, None)
            if child_id is None:
                continue  # an orphan adopted as subreaper, or a namespace helper
            if not self.child_config.job_namespaces:
                self._sweep(pid)
            cpu = usage.ru_utime + usage.ru_stime
            self._send({"op": "exit", "id": child_id, "status": status, "cpu": cpu})

    # -- main loop ---------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        protocol.close_fds(fds)
        if message.get("op") == "spawn":
            for _ in range(max(0, min(int(message.get("count", 1)), 64))):
                self.spawn()

    def _send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        """Report to the worker; if it has gone away, shut down (and take the children)."""
        try:
            protocol.send_blocking(self.control, message, fds)
        except OSError:
            self._shutdown()

    def _shutdown(self) -> NoReturn:
        """The worker is gone or closing: kill every child and, without per-job namespaces,
        everything they left behind (orphans come to us as the subreaper)."""
        children = list(self.children)
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.children.clear()
        if not self.child_config.job_namespaces:
            for pid in children:
                self._sweep(pid)
        os._exit(0)

    def serve(self, features: dict[str, Any]) -> None:
        if self.child_config.renice:
            # Forking and preparing spare children is background work: let running jobs win
            # the CPU. Each child returns to normal priority when its job starts.
            os.nice(BACKGROUND_NICE)
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.control.setblocking(True)
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        protocol.send_blocking(self.control, {"op": "ready", "pid": os.getpid(), **features})
        while True:
            for key, _ in self.selector.select():
                if key.data == "signal":
                    try:
                        while os.read(self.wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self.reap()
                    continue
                try:
                    data, fds = protocol.recv_chunk(self.control)
                except (OSError, protocol.ProtocolError):
                    self._shutdown()
                if not data:
                    self._shutdown()
                self.decoder.feed(data, fds)
                while (frame := self.decoder.next()) is not None:
                    self._handle(*frame)
            self.reap()


def main(config_json: str) -> None:
    """Entry point, called by the bootstrap the worker passes to ``python -c``."""
    started = time.monotonic()
    config = json.loads(config_json)
    sys.dont_write_bytecode = True
    control = socket.socket(fileno=int(config["control_fd"]))
    os.set_inheritable(control.fileno(), False)
    ns_method = _probe_job_namespaces() if config.get("job_namespaces", True) else None
    network_isolated = config.get("mode") == "bwrap" or _isolate_network()
    if config.get("mode") == "process" and os.geteuid() == 0:
        try:
            _expose_interpreter(list(config.get("expose", [])), str(config["stash_root"]))
        except OSError as exc:
            print(f"tilegraph sandbox: cannot expose the interpreter: {exc}", file=sys.stderr)

    runner.warm_up()
    zygote = Zygote(control, config, ns_method)
    gc.collect()
    gc.freeze()  # children's collections then skip (and don't copy-on-write) inherited objects
    features = {
        "job_namespaces": ns_method is not None,
        "ns_method": ns_method,
        "drop_uid": zygote.child_config.drop_uid,
        "seccomp": zygote.child_config.use_seccomp,
        "network_isolated": network_isolated,
        "startup_seconds": time.monotonic() - started,
    }
    zygote.serve(features)
