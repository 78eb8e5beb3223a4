"""Host-wide uid blocks for sandbox slots.

Jobs run as an unprivileged uid per slot, and RLIMIT_NPROC counts processes per uid across
the whole host, so two worker processes on one machine must never share slot uids (a fork
bomb in one would starve the other, and a per-uid sweep would kill the other's jobs). Each
Sandbox claims a block with an exclusive flock on a per-block file; the kernel drops the
lock when the process dies, so a crashed worker never leaks its block."""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

UID_FLOOR = 64000
BLOCK_SIZE = 64
BLOCK_COUNT = 256


def _lock_dir() -> Path:
    for candidate in (
        Path("/run/tilegraph-sandbox"),
        Path(tempfile.gettempdir()) / "tilegraph-sandbox",
    ):
        try:
            candidate.mkdir(mode=0o700, parents=True, exist_ok=True)
            return candidate
        except OSError:
            continue
    raise OSError("no writable directory for sandbox uid locks")


@dataclass
class UidBlock:
    base: int
    _handle: IO[bytes] | None

    @classmethod
    def claim(cls, slots: int) -> UidBlock:
        if slots > BLOCK_SIZE:
            raise ValueError(f"at most {BLOCK_SIZE} sandbox slots per worker")
        directory = _lock_dir()
        for index in range(BLOCK_COUNT):
            handle = (directory / f"block-{index}.lock").open("ab")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            os.set_inheritable(handle.fileno(), False)
            return cls(UID_FLOOR + index * BLOCK_SIZE, handle)
        raise OSError(f"all {BLOCK_COUNT} sandbox uid blocks are in use on this host")

    @classmethod
    def fixed(cls, base: int) -> UidBlock:
        """A caller-chosen base (no lock): for callers that manage uids themselves."""
        return cls(base, None)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
