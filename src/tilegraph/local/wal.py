"""The emulator's write-ahead log: numbered records in segment files, fsynced in groups.

A record is appended under the emulator's request lock (so log order is apply order) and
reaches the page cache only; `wait_durable` then fsyncs outside the lock, and one fsync
serves every writer waiting at that moment (group commit), so concurrent writers share
the disk's latency instead of queueing behind it. Segments are named by their first
sequence number; a snapshot that contains everything up to sequence S lets every segment
that starts at or before S (other than the one being written) be deleted.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

_HEADER = struct.Struct("<4sQII")  # magic, sequence, payload length, crc32 of the payload
_MAGIC = b"TGW1"
_SUFFIX = ".wal"


def _segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"{first_seq:020d}{_SUFFIX}"


def _segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"*{_SUFFIX}"):
        if path.stem.isdigit():
            found.append((int(path.stem), path))
    return sorted(found)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(directory: Path) -> Iterator[tuple[int, bytes]]:
    """Every intact record in order. The log ends at the first torn, corrupt or out-of-order
    record (a crash mid-append): that segment is cut there and later ones are deleted, since
    nothing after it was ever acknowledged (an acknowledgement waits for every earlier
    record's fsync)."""
    if not directory.exists():
        return
    expected: int | None = None
    segments = _segments(directory)
    for index, (_, path) in enumerate(segments):
        data = path.read_bytes()
        offset = 0
        intact = True
        while offset < len(data):
            if offset + _HEADER.size > len(data):
                intact = False
                break
            magic, seq, length, crc = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            end = start + length
            if (
                magic != _MAGIC
                or end > len(data)
                or (expected is not None and seq != expected)
                or zlib.crc32(data[start:end]) != crc
            ):
                intact = False
                break
            yield seq, data[start:end]
            expected = seq + 1
            offset = end
        if not intact:
            with path.open("r+b") as handle:
                handle.truncate(offset)
            for _, later in segments[index + 1 :]:
                later.unlink()
            return


class WriteAheadLog:
    def __init__(self, directory: Path, next_seq: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.last_seq = next_seq - 1
        self.synced_seq = self.last_seq
        self.bytes_since_rotation = 0
        self._cv = threading.Condition()
        self._syncing = False
        self._retired: list[int] = []  # rotated segments' fds awaiting their last fsync
        self._dir_dirty = False
        self._fd = self._open(next_seq)

    def _open(self, first_seq: int) -> int:
        path = _segment_path(self.directory, first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._dir_dirty = True
        return fd

    def append(self, payload: bytes) -> int:
        """Write one record (caller holds the request lock); durable after `wait_durable`."""
        seq = self.last_seq + 1
        header = _HEADER.pack(_MAGIC, seq, len(payload), zlib.crc32(payload))
        written = os.writev(self._fd, [header, payload])
        if written < len(header) + len(payload):  # a short write: finish it
            rest = memoryview(header + payload)[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        self.last_seq = seq
        self.bytes_since_rotation += len(header) + len(payload)
        return seq

    def rotate(self) -> int:
        """Start a new segment (caller holds the request lock, so no append runs); returns
        the last sequence in the older segments. Costs an open(), not an fsync: the old
        segment's fd is synced by the next group commit."""
        with self._cv:
            self._retired.append(self._fd)
            self._fd = self._open(self.last_seq + 1)
        self.bytes_since_rotation = 0
        return self.last_seq

    def wait_durable(self, seq: int) -> None:
        """Return once every record up to `seq` is on disk. One waiter fsyncs for all."""
        with self._cv:
            while self.synced_seq < seq:
                if self._syncing:
                    self._cv.wait()
                    continue
                self._syncing = True
                target = self.last_seq
                fds = [*self._retired, self._fd]
                sync_dir, self._dir_dirty = self._dir_dirty, False
                synced = False
                self._cv.release()
                try:
                    for fd in fds:
                        os.fsync(fd)
                    if sync_dir:
                        fsync_dir(self.directory)
                    synced = True
                finally:
                    self._cv.acquire()
                    self._syncing = False
                    if synced:
                        for fd in fds[:-1]:
                            self._retired.remove(fd)
                            os.close(fd)
                        self.synced_seq = max(self.synced_seq, target)
                    else:
                        self._dir_dirty = self._dir_dirty or sync_dir
                    self._cv.notify_all()

    def drop_through(self, seq: int) -> int:
        """Delete the segments a snapshot at `seq` made redundant (all their records are at
        or before it); the segment being written is never one. Returns how many."""
        segments = _segments(self.directory)
        dropped = 0
        for (_, path), (next_first, _) in itertools.pairwise(segments):
            if next_first <= seq + 1:
                path.unlink(missing_ok=True)
                dropped += 1
        return dropped

    def close(self) -> None:
        self.wait_durable(self.last_seq)
        with self._cv:
            for fd in [*self._retired, self._fd]:
                os.close(fd)
            self._retired.clear()
