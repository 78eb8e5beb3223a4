"""Small helpers for supervising child processes and waiting on ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports (held open together while chosen, so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (nothing bound to it, here or on a
    wildcard address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn and redis do: a port left in TIME_WAIT by a stopped server counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode} before listening"
            )
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 15.0) -> int | None:
    """SIGTERM the child's process group, then SIGKILL it if it does not exit in time."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(5)


@dataclass
class _Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None
    started_at: float
    stop_timeout: float = 15.0
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Keeps child processes running: one that exits is started again after a backoff that
    doubles with each quick exit (up to `backoff_max`), with a message saying so, so one
    crashed child never takes the rest of the product down with it."""

    def __init__(
        self,
        *,
        backoff_first: float = 1.0,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
        out: TextIO | None = None,
    ) -> None:
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.out = out
        self.children: list[_Child] = []

    def add(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[bytes]],
        *,
        stop_timeout: float = 15.0,
    ) -> subprocess.Popen[bytes]:
        """Starts a child; `stop_timeout`: how long it may take to stop before SIGKILL."""
        process = start()
        self.children.append(_Child(name, start, process, time.monotonic(), stop_timeout))
        return process

    def check(self) -> None:
        """Restarts what exited, once its backoff has passed."""
        now = time.monotonic()
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                code = child.process.returncode
                child.process = None
                ran = now - child.started_at
                child.failures = 1 if ran >= self.stable_after else child.failures + 1
                delay = min(self.backoff_max, self.backoff_first * 2 ** (child.failures - 1))
                child.restart_at = now + delay
                self._say(f"{child.name} exited with {code}; restarting in {delay:.1f}s")
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.started_at = now
                try:
                    child.process = child.start()
                except OSError as exc:
                    child.process = None
                    child.restart_at = now + self.backoff_max
                    self._say(f"{child.name} could not be restarted ({exc}); trying again")
                    continue
                self._say(f"{child.name} restarted (pid {child.process.pid})")

    def stop_all(self) -> None:
        """Stops every child, the last started first."""
        for child in reversed(self.children):
            if child.process is not None:
                stop_process(child.process, timeout=child.stop_timeout)
                child.process = None
            child.restart_at = None

    def _say(self, message: str) -> None:
        print(f"tilegraph dev: {message}", file=self.out or sys.stderr, flush=True)
