"""The pre-forked child: serves exactly one job, then exits.

Forked from the zygote ahead of time. While idle it holds only its own socket to the worker. When
the job arrives it locks itself down (private /tmp, rlimits, unprivileged uid, no capabilities,
no new privileges, seccomp), loads the Arrow inputs from memfds, runs the user's code through
:mod:`runner`, writes the size-capped output into the worker's output memfd and replies.
Stdlib + the data libraries only: it runs inside the sandbox.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from . import linux, protocol, runner, seccomp
from .plotly_asset import point_plotly_at

MAX_JOB_FRAME = 256 * 1024 * 1024
MAX_REPLY_JSON = 512 * 1024
TMP = "/tmp"


@dataclass(frozen=True)
class ChildConfig:
    """How this child isolates itself; decided once by the zygote's probes."""

    job_namespaces: bool  # own PID, mount, IPC, UTS and network namespace per job
    drop_uid: bool  # running as root: switch to uid_base + slot
    uid_base: int
    use_seccomp: bool
    fallback_tmp_root: str  # where per-job temp dirs go without a mount namespace
    pdeathsig: bool
    forbidden_loaded: tuple[str, ...]  # forbidden modules the zygote has in sys.modules
    renice: bool  # idle children run niced; restore normal priority for the job (CAP_SYS_NICE)


def _reset_process_state(job_fd: int) -> None:
    """Signals back to defaults, stdio to /dev/null, every other fd closed."""
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        if devnull != fd:
            os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    if job_fd > 3:
        os.closerange(3, job_fd)
    os.closerange(job_fd + 1, 1 << 20)


def _enter_job_namespaces() -> None:
    """Own mount/IPC/UTS/network namespaces plus a /proc that shows only this PID namespace."""
    linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS | linux.CLONE_NEWNET)
    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE, None)
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    linux.mount("proc", "/proc", "proc", flags, None)


def prepare(job_sock: socket.socket, config: ChildConfig) -> None:
    """Idle-time setup, done ahead of the job so the hot path stays short."""
    _reset_process_state(job_sock.fileno())
    if config.pdeathsig:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if config.job_namespaces:
        _enter_job_namespaces()
    else:
        os.setsid()  # own process group, which the zygote kills when the job ends
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)  # orphans stay ours until we exit
    # Nothing below needs a fresh import of a forbidden module, so guard now, off the hot path.
    runner.install_import_guard(list(config.forbidden_loaded))
    runner.rehearse()


def _python_under_tmp() -> list[str]:
    """The interpreter's own directories that live under /tmp (a checkout or venv there, or
    the staged runner modules in process mode): the private /tmp must not hide them, or a
    library that reads its package data lazily (plotly's JavaScript) fails mid-job."""
    prefix = TMP.rstrip("/") + "/"
    candidates = {sys.prefix, sys.base_prefix, *(p for p in sys.path if p)}
    inside = sorted(
        {
            os.path.realpath(p)
            for p in candidates
            if os.path.realpath(p).startswith(prefix) and os.path.isdir(p)
        }
    )
    return [p for p in inside if not any(p.startswith(q.rstrip("/") + "/") for q in inside)]


def _mount_private_tmp(uid: int, gid: int, size: int) -> None:
    """With a mount namespace: a fresh tmpfs on /tmp (and /dev/shm) that no other job can see.
    Done while still privileged; it dies with the namespace."""
    opts = f"size={size},nr_inodes=16384,mode=0700,uid={uid},gid={gid}"
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC  # nothing dropped there may run
    keep = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in _python_under_tmp()}
    linux.mount("tmpfs", TMP, "tmpfs", flags, opts)
    for path, fd in keep.items():  # bind the held directories back at their old paths
        os.makedirs(path, mode=0o755, exist_ok=True)
        linux.mount(f"/proc/self/fd/{fd}", path, None, linux.MS_BIND | linux.MS_REC, None)
        os.close(fd)
    if os.path.isdir("/dev/shm"):
        linux.mount("tmpfs", "/dev/shm", "tmpfs", flags, opts)


def _fallback_tmp(config: ChildConfig) -> str:
    """Without a mount namespace: a 0700 dir made *after* the uid switch, so it is owned by
    the job's uid (the sticky, world-writable root stops others from removing it)."""
    path = os.path.join(config.fallback_tmp_root, f"job-{os.getpid()}")
    os.mkdir(path, 0o700)
    return path


def _apply_limits(limits: dict[str, Any]) -> None:
    cpu = max(1, int(limits["cpu_seconds"]))
    file_bytes = int(limits["max_file_bytes"])
    output_room = int(limits["max_output_bytes"]) + int(limits["max_table_bytes"]) + (1 << 20)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU first, SIGKILL a second later
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, max(file_bytes, output_room)))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nofile = int(limits["max_open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    nproc = int(limits["max_processes"])
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    memory = int(limits["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _drop_privileges(config: ChildConfig, uid: int, gid: int) -> None:
    if config.drop_uid:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    linux.drop_all_capabilities()
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    if config.use_seccomp:
        seccomp.install()


def _on_sigxcpu(signum: int, frame: object) -> None:
    raise runner.CpuTimeExceeded()


def _load_frame(fd: int) -> Any:
    """One input memfd as a pandas DataFrame, sharing memory with it where possible.

    The stream is mapped copy-on-write (MAP_PRIVATE): Arrow reads it without copying, and
    null-free numeric columns become numpy arrays *over the mapping*, so a 1M x 10 float table
    costs ~1 ms instead of a ~70 ms ``to_pandas`` copy. The user may still modify them: writes
    land in private pages and never reach the worker's memfd. Other columns go through pyarrow.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    size = os.fstat(fd).st_size
    try:
        view = mmap.mmap(fd, size, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError as exc:
        if exc.errno == errno.ENOMEM:  # RLIMIT_AS refused the mapping
            raise MemoryError("no address space left to map the input") from None
        raise
    finally:
        os.close(fd)
    base = pa.py_buffer(view)
    table = pa.ipc.open_stream(base).read_all()
    columns: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        shareable = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if shareable and column.num_chunks == 1 and len(column) and column.null_count == 0:
            chunk = column.chunk(0)
            dtype = np.dtype(kind.to_pandas_dtype())
            offset = chunk.buffers()[1].address - base.address + chunk.offset * dtype.itemsize
            columns[name] = np.frombuffer(view, dtype=dtype, count=len(chunk), offset=offset)
        else:
            columns[name] = column.to_pandas()
    if len(columns) != table.num_columns:  # duplicate names: keep pyarrow's own handling
        return table.to_pandas()
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows), copy=False)


def _write_all(fd: int, data: bytes | memoryview) -> int:
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.write(fd, view[written:])
    return written


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size} bytes"


def _too_large(what: str, size: int, limit: int) -> runner.JobError:
    return runner.JobError(
        runner.OUTPUT_TOO_LARGE,
        f"The {what} is {_human(size)}; the limit is {_human(limit)}.",
    )


def _ipc_size(table: Any) -> int:
    import pyarrow as pa

    counter = pa.MockOutputStream()
    with pa.ipc.new_stream(counter, table.schema) as writer:
        writer.write_table(table)
    return int(counter.size())


def _write_ipc(out_fd: int, table: Any) -> None:
    import pyarrow as pa

    with (
        os.fdopen(out_fd, "wb", buffering=0, closefd=False) as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table)


def _write_card(
    out_fd: int, result: runner.CardResult, limit: int, table_limit: int
) -> dict[str, Any]:
    """The HTML, then (aligned) the table as an Arrow IPC stream; metrics go in the reply."""
    data = result.html.encode("utf-8", "replace")
    if len(data) > limit:
        raise _too_large("card's HTML", len(data), limit)
    table_length = None
    if result.table is not None:
        table_length = _ipc_size(result.table)
        if table_length > table_limit:
            raise _too_large("card's table (HTMLResult.table)", table_length, table_limit)
    length = _write_all(out_fd, data)
    if result.table is not None:
        _write_all(out_fd, b"\0" * (protocol.table_offset(length) - length))
        _write_ipc(out_fd, result.table)
    reply = {
        "ok": True,
        "kind": "card",
        "length": length,
        "used_columns": result.used_columns,
        "filter_applicable": result.filter_applicable,
        "metrics": result.metrics,
        "table_length": table_length,
    }
    if len(protocol.encode(reply)) > MAX_REPLY_JSON:
        raise runner.JobError(runner.BAD_RESULT, "used_columns / filter_applicable are too long")
    return reply


def _write_transform(out_fd: int, table: Any, limit: int) -> dict[str, Any]:
    size = _ipc_size(table)
    if size > limit:
        raise _too_large("transform's result", size, limit)
    _write_ipc(out_fd, table)
    return {"ok": True, "kind": "transform", "length": size, "rows": table.num_rows}


def _run(job: dict[str, Any], fds: list[int], config: ChildConfig) -> dict[str, Any]:
    """Everything between receiving the job and replying; raises JobError on failure."""
    limits = job["limits"]
    kind = job["kind"]
    slot = int(job["slot"])
    out_fd, input_fds = fds[0], fds[1:]
    if len(input_fds) != len(job["inputs"]):
        raise runner.JobError(runner.RUNTIME_ERROR, "internal error: input count mismatch")
    if config.renice:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    uid = gid = config.uid_base + slot if config.drop_uid else os.getuid()
    if not config.drop_uid:
        gid = os.getgid()
    if config.job_namespaces:
        _mount_private_tmp(uid, gid, max(int(limits["max_file_bytes"]), 1 << 20))
    _apply_limits(limits)
    _drop_privileges(config, uid, gid)
    tmp = TMP if config.job_namespaces else _fallback_tmp(config)
    os.chdir(tmp)  # only the job's uid may enter it
    os.environ.clear()
    os.environ.update(
        {"HOME": tmp, "TMPDIR": tmp, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}
    )
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the cap fail with EFBIG instead

    params = job.get("params") or {}
    try:
        frames = [_load_frame(fd) for fd in input_fds]
    except MemoryError:
        raise runner.JobError(
            runner.MEMORY_LIMIT,
            f"The input data does not fit in the {int(limits['memory_bytes']) >> 20} MiB "
            "memory limit.",
        ) from None

    my_pid = os.getpid()
    result: Any
    try:
        if kind == "card":
            import pandas as pd

            dataset = frames[0] if frames else pd.DataFrame()
            result = runner.run_card(
                job["code"], dataset, dict(job.get("filters") or {}), params, limits
            )
            if job.get("plotly_src"):  # before the size check: the bundle is 4.8 MB
                html = point_plotly_at(result.html, str(job["plotly_src"]))
                result = replace(result, html=html)
        else:
            named = dict(zip(job["inputs"], frames, strict=True))
            result = runner.run_transform(job["code"], named, params, limits)
    finally:
        if os.getpid() != my_pid:  # a fork of the user's code fell through to here
            os._exit(0)
    del frames

    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room for the output memfd
    cap = int(limits["max_output_bytes"])
    if kind == "card":
        return _write_card(out_fd, result, cap, int(limits["max_table_bytes"]))
    return _write_transform(out_fd, result, cap)


def _guard(
    fn: Callable[[], dict[str, Any]], limits: dict[str, Any], filename: str
) -> dict[str, Any]:
    try:
        return fn()
    except runner.JobError as exc:
        return {"ok": False, "error": exc.to_dict()}
    except BaseException as exc:
        return {"ok": False, "error": runner.describe_exception(exc, filename, limits).to_dict()}


def serve(job_sock: socket.socket, config: ChildConfig) -> NoReturn:
    """Wait for the job, run it, reply, exit. Never returns."""
    code = 0
    try:
        job_sock.setblocking(True)
        try:
            job, fds = protocol.recv_blocking(job_sock, protocol.FrameDecoder(MAX_JOB_FRAME))
        except (protocol.ChannelClosed, protocol.ProtocolError, OSError):
            os._exit(0)  # the worker no longer wants us (shutdown, restart)
        protocol.send_blocking(job_sock, {"op": "started"})  # from here on, user code may run
        my_pid = os.getpid()
        limits = job.get("limits") or {}
        filename = runner.CARD_FILENAME if job.get("kind") == "card" else runner.TRANSFORM_FILENAME
        reply = _guard(lambda: _run(job, fds, config), limits, filename)
        if os.getpid() != my_pid:
            os._exit(0)
        try:
            protocol.send_blocking(job_sock, reply)
        except OSError:
            code = 3
    except BaseException:
        code = 70
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
    os._exit(code)
