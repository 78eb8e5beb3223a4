"""One memory and process budget per job, for the job's whole process tree.

RLIMIT_AS is per process and does not see memfd pages, so a job that forks, or that writes
into a memfd, could take far more of the host than its memory setting. Each sandbox slot
therefore gets its own control group, and the job's child is moved into it before it receives
its job, so everything it starts is counted together:

- **cgroup v2** where the worker's own cgroup lets it enable the memory and pids controllers
  for groups below it (systemd ``Delegate=yes``, or a container that owns its cgroup);
- **cgroup v1** where the host mounts the memory and pids hierarchies writable (many VMs and
  older hosts);
- otherwise a **watchdog** that sums the job's proportional set size plus its memfds every
  100 ms and kills the job above the limit. It is logged loudly at start: it cannot stop a
  burst between two samples.

The kernel counts memfd (shmem) pages against the group that faults them in, so they count.
Whatever reached the limit, the worker kills the whole job and reports MEMORY_LIMIT.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import signal
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger(__name__)

CapMode = Literal["auto", "cgroup2", "cgroup1", "watchdog", "off"]
CAP_MODES: tuple[CapMode, ...] = ("auto", "cgroup2", "cgroup1", "watchdog", "off")

CGROUP_ROOT = Path("/sys/fs/cgroup")
POLL_SECONDS = 0.1
_PREFIX = "tilegraph-w"
_names = itertools.count()
# How close to its limit a group that has already hit it counts as held at the limit.
_AT_LIMIT_SLACK = 8 << 20


class MemoryCapUnavailable(Exception):
    """The requested kind of cap cannot work on this host."""


class JobGroup(Protocol):
    """The budget of one slot, reused by the slot's jobs one after another."""

    def prepare(self, memory_bytes: int, max_processes: int) -> None:
        """Set the limits for the next job and forget what the previous one did."""

    def admit(self, pid: int) -> None:
        """Put the job's (still idle) child into the group; its descendants follow."""

    def breached(self) -> bool:
        """Whether the job has gone over its memory limit (checked every ``POLL_SECONDS``)."""

    def peak_bytes(self) -> int:
        """The most memory the job held at once, as far as this kind of cap can tell."""

    def kill_all(self) -> None:
        """SIGKILL every process still in the group."""

    def remove(self) -> None:
        """Delete the group (its processes are gone)."""


def host_pid(pidfd: int) -> int:
    """The pid, in the worker's PID namespace, of the process behind ``pidfd``."""
    text = Path(f"/proc/self/fdinfo/{pidfd}").read_text()
    match = re.search(r"^Pid:\s*(-?\d+)", text, re.MULTILINE)
    if match is None or int(match.group(1)) <= 0:
        raise ProcessLookupError("the process behind the pidfd has exited")
    return int(match.group(1))


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _pids_in(group: Path) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(line) for line in (group / "cgroup.procs").read_text().split()]
    return []


def _kill_members(groups: list[Path]) -> None:
    """Kill until empty: a process may fork between the read and the kill (pids.max bounds it)."""
    for _ in range(100):
        pids = {pid for group in groups for pid in _pids_in(group)}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in ``controller``'s v1 hierarchy, or in v2 for ``""``."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hierarchy, controllers, path = line.split(":", 2)
            if controller and controller in controllers.split(","):
                return path
            if not controller and hierarchy == "0" and not controllers:
                return path
    return None


def _mounted_dir(mount: Path, own: str | None) -> Path:
    """Where our own cgroup is under ``mount`` (a container may see its cgroup as the root)."""
    if own:
        candidate = mount / own.lstrip("/")
        if candidate.is_dir():
            return candidate
    return mount


def _sweep_stale(parent: Path) -> None:
    """Groups left by workers that died: kill what is left in them and remove them."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            match = re.match(rf"{_PREFIX}(\d+)-", entry.name)
            if match is None or not entry.is_dir() or Path(f"/proc/{match.group(1)}").exists():
                continue
            _kill_members([entry])
            with contextlib.suppress(OSError):
                entry.rmdir()


# -- cgroup v1 -------------------------------------------------------------------------------


@dataclass
class CgroupV1Group:
    """A slot's group in the v1 memory and pids hierarchies."""

    memory: Path
    pids: Path
    _oom_kills: int = 0

    def prepare(self, memory_bytes: int, max_processes: int) -> None:
        with contextlib.suppress(OSError):  # charges the last job left (page cache, tmpfs)
            usage = int((self.memory / "memory.usage_in_bytes").read_text())
            if usage > 32 << 20:
                _write(self.memory / "memory.force_empty", "0")
        self._set_memory_limit(memory_bytes)
        _write(self.pids / "pids.max", str(max_processes))
        _write(self.memory / "memory.max_usage_in_bytes", "0")
        _write(self.memory / "memory.failcnt", "0")
        self._oom_kills = self._read_oom_kills()

    def _set_memory_limit(self, limit: int) -> None:
        """memory+swap must stay >= memory, so the order depends on which way it moves."""
        memsw = self.memory / "memory.memsw.limit_in_bytes"
        files = [self.memory / "memory.limit_in_bytes"]
        if memsw.exists():
            current = int(memsw.read_text())
            files = [memsw, files[0]] if limit > current else [files[0], memsw]
        for path in files:
            _write(path, str(limit))

    def _read_oom_kills(self) -> int:
        """OOM kills in the group so far (kernels before 4.13 lack the counter: then a group
        that is at its limit with the OOM killer at work counts as one)."""
        text = (self.memory / "memory.oom_control").read_text()
        match = re.search(r"^oom_kill (\d+)", text, re.MULTILINE)
        if match:
            return int(match.group(1))
        return 1 if re.search(r"^under_oom 1", text, re.MULTILINE) else 0

    def admit(self, pid: int) -> None:
        _write(self.memory / "cgroup.procs", str(pid))
        _write(self.pids / "cgroup.procs", str(pid))

    def breached(self) -> bool:
        """An OOM kill in the group, or the group pinned at its limit: v1 reclaims the job's
        own file pages (its libraries) over and over before it declares OOM, which can slow
        a job at its limit to a crawl for seconds; a job held there has hit its limit."""
        try:
            if self._read_oom_kills() > self._oom_kills:
                return True
            if int((self.memory / "memory.failcnt").read_text()) == 0:
                return False
            limit = int((self.memory / "memory.limit_in_bytes").read_text())
            usage = int((self.memory / "memory.usage_in_bytes").read_text())
            return usage >= limit - _AT_LIMIT_SLACK
        except OSError:
            return False

    def peak_bytes(self) -> int:
        with contextlib.suppress(OSError):
            return int((self.memory / "memory.max_usage_in_bytes").read_text())
        return 0

    def kill_all(self) -> None:
        _kill_members([self.memory, self.pids])

    def remove(self) -> None:
        self.kill_all()
        for group in (self.memory, self.pids):
            with contextlib.suppress(OSError):
                group.rmdir()


def _v1_parents() -> tuple[Path, Path]:
    memory = CGROUP_ROOT / "memory"
    pids = CGROUP_ROOT / "pids"
    if not (memory / "memory.limit_in_bytes").exists() or not (pids / "cgroup.procs").exists():
        raise MemoryCapUnavailable("no cgroup v1 memory and pids hierarchies are mounted")
    return _mounted_dir(memory, _own_cgroup("memory")), _mounted_dir(pids, _own_cgroup("pids"))


def _make_v1(name: str) -> CgroupV1Group:
    memory_parent, pids_parent = _v1_parents()
    try:
        (memory_parent / name).mkdir()
        (pids_parent / name).mkdir()
    except OSError as exc:
        with contextlib.suppress(OSError):
            (memory_parent / name).rmdir()
        raise MemoryCapUnavailable(f"cannot create a cgroup v1 group: {exc}") from None
    return CgroupV1Group(memory_parent / name, pids_parent / name)


# -- cgroup v2 -------------------------------------------------------------------------------


@dataclass
class CgroupV2Group:
    """A slot's group in the unified hierarchy, killed as one when the OOM killer acts."""

    path: Path
    _oom_kills: int = 0
    _max_hits: int = 0

    def prepare(self, memory_bytes: int, max_processes: int) -> None:
        _write(self.path / "memory.max", str(memory_bytes))
        with contextlib.suppress(OSError):
            _write(self.path / "memory.swap.max", "0")
        with contextlib.suppress(OSError):
            _write(self.path / "memory.oom.group", "1")
        with contextlib.suppress(OSError):
            _write(self.path / "memory.peak", "reset")  # newer kernels allow a reset
        _write(self.path / "pids.max", str(max_processes))
        events = self._events()
        self._oom_kills, self._max_hits = events.get("oom_kill", 0), events.get("max", 0)

    def _events(self) -> dict[str, int]:
        events: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (self.path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                events[key] = int(value)
        return events

    def admit(self, pid: int) -> None:
        _write(self.path / "cgroup.procs", str(pid))

    def breached(self) -> bool:
        """As v1: an OOM kill, or the group held at ``memory.max`` after hitting it."""
        events = self._events()
        if events.get("oom_kill", 0) > self._oom_kills:
            return True
        if events.get("max", 0) <= self._max_hits:
            return False
        with contextlib.suppress(OSError, ValueError):
            limit = int((self.path / "memory.max").read_text())
            usage = int((self.path / "memory.current").read_text())
            return usage >= limit - _AT_LIMIT_SLACK
        return False

    def peak_bytes(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int((self.path / "memory.peak").read_text())
        return 0

    def kill_all(self) -> None:
        try:
            _write(self.path / "cgroup.kill", "1")
        except OSError:
            _kill_members([self.path])

    def remove(self) -> None:
        self.kill_all()
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _v2_parent() -> Path:
    """Our own v2 cgroup, if it may enable memory and pids below it."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        mount = CGROUP_ROOT
    elif (CGROUP_ROOT / "unified" / "cgroup.controllers").exists():
        mount = CGROUP_ROOT / "unified"
    else:
        raise MemoryCapUnavailable("no cgroup v2 hierarchy is mounted")
    parent = _mounted_dir(mount, _own_cgroup(""))
    controllers = (parent / "cgroup.controllers").read_text().split()
    if not {"memory", "pids"} <= set(controllers):
        raise MemoryCapUnavailable(
            f"the worker's cgroup {parent} has no memory and pids controllers to delegate"
        )
    enabled = (parent / "cgroup.subtree_control").read_text().split()
    if not {"memory", "pids"} <= set(enabled):
        try:
            _write(parent / "cgroup.subtree_control", "+memory +pids")
        except OSError as exc:  # EBUSY: processes live in our own group, not in a leaf
            raise MemoryCapUnavailable(
                f"cannot enable memory and pids below {parent}: {exc}"
            ) from None
    return parent


def _make_v2(name: str) -> CgroupV2Group:
    parent = _v2_parent()
    try:
        (parent / name).mkdir()
    except OSError as exc:
        raise MemoryCapUnavailable(f"cannot create a cgroup v2 group: {exc}") from None
    return CgroupV2Group(parent / name)


# -- watchdog --------------------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (orphans are reparented to the job's own init or
    subreaper, so they stay in the tree)."""
    seen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        seen.append(pid)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                    todo.extend(int(c) for c in children if int(c) not in seen)
    return seen


def job_memory_bytes(root: int) -> int:
    """Proportional set size of the job's processes plus every memfd they hold open (counted
    once, by inode): a conservative sum that sees forks and memfd pages."""
    total = 0
    memfds: dict[int, int] = {}
    for pid in _tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/memfd:"):
                        continue
                    info = os.stat(f"/proc/{pid}/fd/{fd}")
                    if stat.S_ISREG(info.st_mode):
                        memfds[info.st_ino] = info.st_blocks * 512
    return total + sum(memfds.values())


@dataclass
class WatchdogGroup:
    """No cgroup to use: sample the job's tree instead (see module docstring)."""

    root: int = 0
    limit: int = 0
    peak: int = 0

    def prepare(self, memory_bytes: int, max_processes: int) -> None:
        self.limit, self.peak, self.root = memory_bytes, 0, 0

    def admit(self, pid: int) -> None:
        self.root = pid

    def breached(self) -> bool:
        if not self.root:
            return False
        used = job_memory_bytes(self.root)
        self.peak = max(self.peak, used)
        return used > self.limit

    def peak_bytes(self) -> int:
        return self.peak

    def kill_all(self) -> None:
        for pid in reversed(_tree(self.root) if self.root else []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Nothing to delete."""


@dataclass
class NoGroup:
    """``off``: only the per-process rlimits apply."""

    def prepare(self, memory_bytes: int, max_processes: int) -> None:
        """Nothing to set."""

    def admit(self, pid: int) -> None:
        """Nothing to join."""

    def breached(self) -> bool:
        return False

    def peak_bytes(self) -> int:
        return 0

    def kill_all(self) -> None:
        """Nothing to kill beyond what the sandbox kills."""

    def remove(self) -> None:
        """Nothing to delete."""


# -- choosing --------------------------------------------------------------------------------


@dataclass
class MemoryCaps:
    """One group per slot, of the kind the host allows (see module docstring)."""

    kind: Literal["cgroup2", "cgroup1", "watchdog", "off"]
    groups: list[JobGroup]

    @classmethod
    def open(cls, mode: CapMode, slots: int) -> MemoryCaps:
        """Groups for ``slots`` slots; ``auto`` takes the first of v2, v1, watchdog that works."""
        if mode not in CAP_MODES:
            raise ValueError(f"unknown memory cap mode {mode!r}")
        if mode == "off":
            log.warning("sandbox memory cap is off: only per-process rlimits bound a job")
            return cls("off", [NoGroup() for _ in range(slots)])
        tried: list[str] = []
        for kind in ("cgroup2", "cgroup1"):
            if mode not in ("auto", kind):
                continue
            try:
                return cls(kind, cls._make(kind, slots))
            except (MemoryCapUnavailable, OSError) as exc:
                if mode == kind:
                    raise MemoryCapUnavailable(f"{kind}: {exc}") from None
                tried.append(f"{kind}: {exc}")
        if mode == "auto":
            log.warning(
                "SANDBOX MEMORY CAP FALLS BACK TO A WATCHDOG: no writable cgroup (%s). A job's "
                "memory is sampled every %g s and the job killed above its limit, so a fast "
                "burst can overshoot. Delegate a cgroup to the worker to close this.",
                "; ".join(tried),
                POLL_SECONDS,
            )
        return cls("watchdog", [WatchdogGroup() for _ in range(slots)])

    @staticmethod
    def _make(kind: str, slots: int) -> list[JobGroup]:
        if kind == "cgroup1":
            _sweep_stale(_v1_parents()[0])
            _sweep_stale(_v1_parents()[1])
        else:
            _sweep_stale(_v2_parent())
        base = f"{_PREFIX}{os.getpid()}-{next(_names)}"
        made: list[JobGroup] = []
        try:
            for slot in range(slots):
                name = f"{base}-slot{slot}"
                made.append(_make_v1(name) if kind == "cgroup1" else _make_v2(name))
            for group in made:  # prove the limits can be written, not just the directories
                group.prepare(1 << 30, 64)
        except BaseException:
            for group in made:
                group.remove()
            raise
        return made

    def close(self) -> None:
        for group in self.groups:
            group.remove()
