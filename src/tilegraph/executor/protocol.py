"""Length-prefixed JSON frames with file descriptors over Unix stream sockets.

Stdlib only: this module is imported both by the worker and, bound read-only, by the zygote and
its children inside the sandbox, where the tilegraph package is not visible.

A frame is ``!IH`` (payload length, number of fds) followed by a UTF-8 JSON object. The fds ride
as SCM_RIGHTS on the ``sendmsg`` that carries the frame's first bytes. The kernel never delivers a
later frame's fds before an earlier frame's, so the receiver keeps received fds in one FIFO and
each decoded frame takes its announced count from the front.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import os
import socket
import struct
from collections import deque
from typing import Any

HEADER = struct.Struct("!IH")
MAX_FDS_PER_FRAME = 250  # the kernel caps SCM_RIGHTS at 253 per message
RECV_CHUNK = 1 << 16
MAX_CONTROL_FRAME = 1 << 20  # zygote <-> worker messages, either way
_ANC_SPACE = socket.CMSG_SPACE(MAX_FDS_PER_FRAME * array.array("i").itemsize)

Message = dict[str, Any]

# In a card's output memfd the table (an Arrow IPC stream) starts at the first multiple of
# this after the HTML, so the worker maps its buffers aligned.
TABLE_ALIGNMENT = 64


def table_offset(html_length: int) -> int:
    """Where a card's table starts in its output memfd, after ``html_length`` bytes of HTML."""
    return -(-html_length // TABLE_ALIGNMENT) * TABLE_ALIGNMENT


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed frame (or too much of it)."""


class ChannelClosed(Exception):
    """The peer closed its end (or died)."""


def encode(message: Message, nfds: int = 0) -> bytes:
    """Serialise one frame; params are JSON from the API, so ``default=str`` is only a fallback."""
    payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return HEADER.pack(len(payload), nfds) + payload


def close_fds(fds: list[int]) -> None:
    """Close received descriptors nobody wants, ignoring ones already closed."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class FrameDecoder:
    """Reassembles frames from stream chunks and hands each one its fds."""

    def __init__(self, max_payload: int) -> None:
        self._buf = bytearray()
        self._fds: deque[int] = deque()
        self._max_payload = max_payload

    def feed(self, data: bytes, fds: list[int]) -> None:
        self._buf += data
        self._fds.extend(fds)

    def next(self) -> tuple[Message, list[int]] | None:
        """The next complete frame, or None if more bytes are needed."""
        if len(self._buf) < HEADER.size:
            return None
        length, nfds = HEADER.unpack_from(self._buf)
        if length > self._max_payload or nfds > MAX_FDS_PER_FRAME:
            raise ProtocolError(f"frame too large ({length} bytes, {nfds} fds)")
        end = HEADER.size + length
        if len(self._buf) < end:
            return None
        if len(self._fds) < nfds:
            raise ProtocolError("frame announced more fds than were received")
        payload = bytes(self._buf[HEADER.size : end])
        del self._buf[:end]
        fds = [self._fds.popleft() for _ in range(nfds)]
        try:
            message = json.loads(payload)
        except ValueError as exc:
            close_fds(fds)
            raise ProtocolError(f"frame is not JSON: {exc}") from None
        if not isinstance(message, dict):
            close_fds(fds)
            raise ProtocolError("frame is not a JSON object")
        return message, fds

    def discard(self) -> None:
        """Close fds that arrived but were never claimed by a frame."""
        close_fds(list(self._fds))
        self._fds.clear()
        self._buf.clear()


def recv_chunk(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One ``recvmsg``: bytes plus any fds that came with them (close-on-exec)."""
    data, ancdata, flags, _ = sock.recvmsg(RECV_CHUNK, _ANC_SPACE, socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, cdata in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            usable = len(cdata) - (len(cdata) % arr.itemsize)
            arr.frombytes(cdata[:usable])
            fds.extend(arr)
    if flags & socket.MSG_CTRUNC:
        close_fds(fds)
        raise ProtocolError("control data truncated (too many fds)")
    return data, fds


def send_blocking(sock: socket.socket, message: Message, fds: list[int] | None = None) -> None:
    """Send one frame on a blocking socket."""
    fds = fds or []
    data = encode(message, len(fds))
    sent = 0
    if fds:
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_blocking(sock: socket.socket, decoder: FrameDecoder) -> tuple[Message, list[int]]:
    """Block until one whole frame has arrived on a blocking socket."""
    while True:
        frame = decoder.next()
        if frame is not None:
            return frame
        data, fds = recv_chunk(sock)
        if not data:
            close_fds(fds)
            raise ChannelClosed("peer closed the channel")
        decoder.feed(data, fds)


def resolve_once(future: asyncio.Future[None]) -> None:
    """Reader/writer callback: wake the waiting coroutine once."""
    if not future.done():
        future.set_result(None)


class AsyncChannel:
    """Frames over a non-blocking socket on the worker's event loop (``recvmsg`` needs fds,
    which asyncio's stream API cannot carry)."""

    def __init__(self, sock: socket.socket, *, max_payload: int, max_queued: int = 1 << 16) -> None:
        self._sock = sock
        self._sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder(max_payload)
        self._queue: deque[tuple[Message, list[int]]] = deque()
        self._max_queued = max_queued
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @property
    def fileno(self) -> int:
        return self._sock.fileno()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        if not self._closed:
            self._loop.remove_reader(self._sock.fileno())
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _on_readable(self) -> None:
        try:
            data, fds = recv_chunk(self._sock)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ProtocolError) as exc:
            self._fail(ChannelClosed(str(exc)) if isinstance(exc, OSError) else exc)
            return
        if not data:
            close_fds(fds)
            self._fail(ChannelClosed("peer closed the channel"))
            return
        self._decoder.feed(data, fds)
        try:
            while (frame := self._decoder.next()) is not None:
                if len(self._queue) >= self._max_queued:
                    close_fds(frame[1])
                    raise ProtocolError("peer sent too many messages")
                self._queue.append(frame)
        except ProtocolError as exc:
            self._fail(exc)
        self._wake()

    async def recv(self) -> tuple[Message, list[int]]:
        """The next frame; raises ChannelClosed / ProtocolError once the stream is over."""
        while not self._queue:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ChannelClosed("channel closed")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def send(self, message: Message, fds: list[int] | None = None) -> None:
        """Send one frame; the first chunk carries the fds, the rest goes through the loop."""
        fds = fds or []
        data = encode(message, len(fds))
        sent = 0
        while True:
            try:
                if fds:
                    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                    sent = self._sock.sendmsg([data], anc)
                else:
                    sent = self._sock.send(data)
                break
            except (BlockingIOError, InterruptedError):
                await self._writable()
        if sent < len(data):
            await self._loop.sock_sendall(self._sock, data[sent:])

    async def _writable(self) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        fd = self._sock.fileno()
        self._loop.add_writer(fd, resolve_once, fut)
        try:
            await fut
        finally:
            self._loop.remove_writer(fd)

    def stop_reading(self) -> None:
        """Stop accepting frames (a job's child gets exactly one reply)."""
        if not self._closed and self._error is None:
            self._loop.remove_reader(self._sock.fileno())
            self._error = ChannelClosed("no longer reading")

    def close(self) -> None:
        if self._closed:
            return
        if self._error is None:
            self._loop.remove_reader(self._sock.fileno())
        self._closed = True
        for _, fds in self._queue:
            close_fds(fds)
        self._queue.clear()
        self._decoder.discard()
        self._sock.close()
        self._wake()
