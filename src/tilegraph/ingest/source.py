"""The file as a stream of UTF-8 bytes for pyarrow's CSV reader.

Three jobs, all about reading the source file once, front to back:

- Transcoding: any encoding other than UTF-8 is decoded strictly and re-encoded as UTF-8, so an
  undecodable byte anywhere in the file fails with its line and byte offset (pyarrow's own
  transcoding knows neither).
- Counting: how many source bytes were consumed, for progress reports.
- Throttling: pyarrow's streaming reader reads ahead on its I/O thread as fast as the disk
  allows (measured with 8 MB blocks: 170 MB of buffered blocks for a 200 MB file, 290 MB for a
  400 MB one), so memory grew with the file. Reads here wait while ``max_ahead`` blocks are
  ahead of the consumer, which keeps memory flat whatever the file size.
"""

from __future__ import annotations

import codecs
import io
import threading
import time
from pathlib import Path

from tilegraph.ingest.encoding import decode_error, is_utf8, is_wide
from tilegraph.ingest.errors import IngestFailed

#: If the consumer has waited this long for a block while reads are held back, let them go:
#: the parser needs more than ``max_ahead`` blocks for one batch (a huge multi-line record).
_STARVATION_SECONDS = 0.2
_MIN_READ = 1 << 20
_MAX_CARRY = 16 << 20
_STATEFUL = ("iso2022", "hz", "utf_7")


def needs_transcoding(encoding: str) -> bool:
    """pyarrow reads UTF-8 (and skips its byte-order mark) itself; anything else we decode."""
    return not is_utf8(encoding)


class SourceStream(io.RawIOBase):
    """A read-only, forward-only byte stream over ``path`` that yields UTF-8.

    ``transcode=False`` passes the bytes through unchanged (the file is UTF-8 already).
    ``max_ahead=None`` disables throttling (for the error-locating scans, which have no consumer).
    """

    def __init__(
        self, path: Path, encoding: str, *, transcode: bool, max_ahead: int | None = None
    ) -> None:
        super().__init__()
        self.encoding = encoding
        self.bytes_read = 0
        self.error: IngestFailed | None = None
        self._file = path.open("rb", buffering=0)
        self._transcode = transcode
        self._decoder = codecs.getincrementaldecoder(encoding)("strict") if transcode else None
        # A LF byte ends a character in ASCII-compatible encodings, so decoding whole lines
        # keeps error offsets exact and lets lines be counted on the raw bytes.
        self._line_aligned = not is_wide(encoding) and not encoding.replace("-", "_").startswith(
            _STATEFUL
        )
        self._carry = b""
        self._carry_offset = 0
        self._lines_before_carry = 0
        self._out = bytearray()
        self._eof = False
        self._max_ahead = max_ahead
        self._cond = threading.Condition()
        self._reads = 0
        self._consumed = 0
        self._waiting_since: float | None = None
        self._consumer: int | None = None
        self._stopped = False
        self._io_lock = threading.Lock()
        self._first_text = True

    # -- consumer side -------------------------------------------------------------------------

    def set_consumer(self) -> None:
        """Mark the calling thread as the consumer: its own reads are never held back."""
        self._consumer = threading.get_ident()

    def consumer_waiting(self, waiting: bool) -> None:
        """The consumer is (no longer) blocked waiting for the parser's next batch."""
        with self._cond:
            self._waiting_since = time.monotonic() if waiting else None
            self._cond.notify_all()

    def advance(self) -> None:
        """The consumer took one more batch: one more block may be read ahead."""
        with self._cond:
            self._consumed += 1
            self._cond.notify_all()

    def stop(self) -> None:
        """Release any held-back read and make all further reads return end-of-file."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # -- io.RawIOBase --------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = _MIN_READ
        self._throttle()
        with self._io_lock:
            if self._stopped:
                return b""
            if not self._transcode:
                data = self._file.read(size) or b""
                self.bytes_read += len(data)
                return data
            while len(self._out) < size and not self._eof:
                self._fill(max(size, _MIN_READ))
            data = bytes(self._out[:size])
            del self._out[:size]
            return data

    def close(self) -> None:
        self.stop()
        with self._io_lock:  # not under a read still running on pyarrow's I/O thread
            self._file.close()
        super().close()

    # -- internals -----------------------------------------------------------------------------

    def _throttle(self) -> None:
        if self._max_ahead is None or threading.get_ident() == self._consumer:
            return
        with self._cond:
            while not self._stopped and self._reads - self._consumed >= self._max_ahead:
                waiting = self._waiting_since
                if waiting is not None and time.monotonic() - waiting > _STARVATION_SECONDS:
                    break
                self._cond.wait(0.05)
            self._reads += 1

    def _fill(self, size: int) -> None:
        """Decode at least one more chunk of the file into the UTF-8 output buffer."""
        raw = self._file.read(size) or b""
        self.bytes_read += len(raw)
        self._eof = not raw
        if self._line_aligned:
            data = self._carry + raw
            cut = len(data) if self._eof else data.rfind(b"\n") + 1
            if cut == 0 and len(data) > _MAX_CARRY:  # no line break for ages: stop aligning
                cut = len(data)
            part, self._carry = data[:cut], data[cut:]
            text = self._decode(part, final=self._eof)
            self._carry_offset += len(part)
            self._lines_before_carry += part.count(b"\n")
        else:
            text = self._decode(raw, final=self._eof)
        if self._first_text and text:
            # A byte-order mark the codec kept (e.g. a forced "utf-16-le") is not data.
            text = text.removeprefix("\ufeff")
            self._first_text = False
        self._out += text.encode("utf-8")

    def _decode(self, data: bytes, *, final: bool) -> str:
        assert self._decoder is not None
        pending = len(self._decoder.getstate()[0]) if not self._line_aligned else 0
        try:
            return self._decoder.decode(data, final=final)
        except UnicodeDecodeError as e:
            base = self._carry_offset if self._line_aligned else self.bytes_read - len(data)
            self.error = decode_error(
                self.encoding,
                data,
                max(e.start - pending, 0),
                max(e.end - pending, 0),
                base=base,
                lines_before=self._lines_before_carry,
            )
            raise self.error from None


def locate_decode_error(path: Path, encoding: str) -> IngestFailed | None:
    """Scan the whole file for the first bytes ``encoding`` cannot decode (error path only)."""
    stream = SourceStream(path, encoding, transcode=True)
    try:
        while stream.read(8 << 20):
            pass
    except IngestFailed as e:
        return e
    finally:
        stream.close()
    return None
