"""Concurrency slots: at most ``n`` jobs at once, and slot *n* runs as uid ``uid_base + n``.

A slot is both a place in the queue and an unprivileged uid on the host, so it is only handed
to the next job once the previous job's child is confirmed dead (the caller releases it then).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from .uids import UidBlock


class SlotPool:
    """At most ``n`` jobs at once, handed out strictly first come, first served."""

    def __init__(self, n: int, uid_base: int | None = None) -> None:
        """``uid_base``: a caller-chosen first uid; by default a host-wide block is claimed on
        first use (see uids.py), so any number of workers can share a machine."""
        self.size = n
        self._uids = UidBlock.fixed(uid_base) if uid_base is not None else None
        self._free: deque[int] = deque(range(n))
        self._waiters: deque[asyncio.Future[int]] = deque()

    @property
    def uid_base(self) -> int:
        """The first slot uid (slots use ``uid_base`` .. ``uid_base + size - 1``)."""
        if self._uids is None:
            self._uids = UidBlock.claim(self.size)
        return self._uids.base

    def close(self) -> None:
        """Give the uid block back to the host (only once no job of ours can be running)."""
        if self._uids is not None:
            self._uids.release()

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

    async def acquire_unless(self, cancel: asyncio.Event | None) -> int | None:
        """A slot, or None if ``cancel`` is set before (or just as) one frees up."""
        if cancel is None:
            return await self.acquire()
        acquire = asyncio.ensure_future(self.acquire())
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
                self.release(slot)
                return None
            return slot
        return None

    def release(self, slot: int) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._free.append(slot)
