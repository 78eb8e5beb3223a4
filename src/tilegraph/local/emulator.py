"""moto's server mode on loopback, with its state kept on disk so data survives restarts,
crashes included.

moto keeps everything in memory. We serve its WSGI app ourselves, one request at a time,
and append every request that may change state to a write-ahead log (`wal.py`), fsynced
before its response is sent: a write that was acknowledged is on disk, even after kill -9.
Snapshots compact the log without stopping requests: under the request lock we only start
a new log segment and fork(); the child pickles the copy-on-write image of the state and
writes the snapshot (temporary file, fsync, rename) while the parent keeps serving; once
it has succeeded, the segments it covers are deleted. On start the last snapshot is
loaded and the log records after it are replayed through moto.

Replay is deterministic where the app can see it: items and objects come back as written,
and a replayed CreateMultipartUpload keeps the upload id the client was given (moto would
pick a new one), so later UploadPart/Complete records, and clients still uploading, find
it. What moto generates itself (timestamps such as LastModified, request ids) takes the
replay's values.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import pickle
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tilegraph.local.moto_queries import patch_queries
from tilegraph.local.moto_transactions import patch_transactions
from tilegraph.local.wal import WriteAheadLog, fsync_dir, read_records

SNAPSHOT_LOG_BYTES = 64 << 20  # compact once the log has grown by this much...
SNAPSHOT_INTERVAL_SECONDS = 300.0  # ...or this long after the last snapshot, if written to
# Objects stay in memory rather than in moto's per-object temporary files: a forked
# snapshot child shares open file descriptions (and their offsets) with the parent, and
# memory pages it only reads are shared copy-on-write.
_KEY_BUFFER_BYTES = 1 << 62
_SNAPSHOT_FORMAT = 2
_READ_TARGETS = (
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "DescribeTable",
    "ListTables",
    "DescribeTimeToLive",
    "ListTagsOfResource",
    "DescribeContinuousBackups",
)
# What a replayed request needs from the original's environ (headers are all HTTP_*).
_ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
)
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")
_BUCKET = re.compile(rb"<Bucket>([^<]+)</Bucket>")


def _backends() -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    return {"dynamodb": dynamodb_backends, "s3": s3_backends}


def _s3_backends() -> Iterator[Any]:
    from moto.s3.models import s3_backends

    for per_account in list(s3_backends.values()):
        yield from list(per_account.values())


def _patch_moto() -> None:
    """moto gives a multipart object the composite checksum of its parts without the
    `-<parts>` suffix real S3 adds. botocore then checks it as a whole-object checksum on
    every GetObject and fails (FlexibleChecksumError), so imports of such files broke; with
    the suffix botocore knows it is composite and skips it, as against S3. Also keeps
    objects in memory (see _KEY_BUFFER_BYTES), including those loaded from a snapshot.
    TransactWriteItems backs up only the items it writes (moto_transactions.py), and a
    Query no longer lists and sorts the whole table (moto_queries.py)."""
    from moto.s3 import models

    patch_transactions()
    patch_queries()
    if getattr(models.FakeMultipart, "_tilegraph_patched", False):
        return
    original_complete = models.FakeMultipart.complete

    def complete(self: Any, *args: Any, **kwargs: Any) -> Any:
        total, etag, checksum = original_complete(self, *args, **kwargs)
        return total, etag, _composite(checksum, etag)

    original_setstate = models.FakeKey.__setstate__

    def setstate(self: Any, state: dict[str, Any]) -> None:
        state["_max_buffer_size"] = _KEY_BUFFER_BYTES
        original_setstate(self, state)

    models.FakeMultipart.complete = complete  # type: ignore[method-assign]
    models.FakeKey.__setstate__ = setstate  # type: ignore[method-assign]
    models.FakeMultipart._tilegraph_patched = True  # type: ignore[attr-defined]


def _composite(checksum: str | None, etag: str | None) -> str | None:
    if not checksum or not etag or "-" in checksum or "-" not in etag:
        return checksum
    parts = etag.strip('"').rsplit("-", 1)[1]
    return f"{checksum}-{parts}"


def _repair_multipart_checksums() -> None:
    """Objects saved before the fix above carry the unsuffixed checksum: add the suffix."""
    for backend in _s3_backends():
        for bucket in backend.buckets.values():
            for _, versions in bucket.keys.iterlists():
                for key in versions:
                    value = getattr(key, "checksum_value", None)
                    fixed = _composite(value, getattr(key, "_etag", None))
                    if fixed != value:
                        key.checksum_value = fixed


class StateStore:
    """The snapshot file: every backend as one pickle, with the last log sequence in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def log_dir(self) -> Path:
        return self.path.with_suffix(".wal")

    def load(self) -> int | None:
        """Restore the backends; returns the sequence the snapshot contains, None if none."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            saved: dict[str, Any] = pickle.load(handle)
        seq = 0
        if saved.get("format") == _SNAPSHOT_FORMAT:
            seq = int(saved["seq"])
            saved = saved["backends"]
        for name, backend_dict in _backends().items():
            if name in saved:
                backend_dict.clear()
                backend_dict.update(saved[name])
        _repair_multipart_checksums()
        return seq

    def save(self, seq: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        state = {"format": _SNAPSHOT_FORMAT, "seq": seq, "backends": dict(_backends())}
        with temporary.open("wb") as handle:
            pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        fsync_dir(self.path.parent)


def _may_write(environ: dict[str, Any]) -> bool:
    method = environ.get("REQUEST_METHOD", "GET")
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return not (target and target.rsplit(".", 1)[-1] in _READ_TARGETS)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, put back as a fresh stream for moto."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        body: bytes = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    return body


def _creates_upload(environ: dict[str, Any]) -> bool:
    query = environ.get("QUERY_STRING", "")
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and re.search(r"(^|&)uploads(=|&|$)", query) is not None
    )


class PersistingApp:
    """WSGI wrapper: one request at a time; writes are logged and on disk before replying."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        store: StateStore | None,
        wal: WriteAheadLog | None = None,
        snapshot_seq: int = 0,
    ) -> None:
        self.app = app
        self.store = store
        self.wal = wal
        self.lock = threading.Lock()
        self.snapshot_seq = snapshot_seq
        self.last_snapshot = time.monotonic()
        self.snapshot_stalls: list[float] = []
        self._child: int | None = None
        self._child_done = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        logged = self.wal is not None and _may_write(environ)
        record: dict[str, Any] | None = None
        if logged:
            body = _read_body(environ)
            record = {
                "environ": {
                    k: v for k, v in environ.items() if k in _ENVIRON_KEYS or k.startswith("HTTP_")
                },
                "body": body,
            }
        response: list[Any] = []

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Callable[..., Any]:
            response[:] = [status, headers]
            return lambda data: None

        # One request at a time even without a log: moto's conditional writes are not
        # atomic across threads, and DynamoDB's are.
        with self.lock:
            out = b"".join(self.app(environ, capture))
            seq = 0
            if self.wal is not None:
                if record is not None:
                    if _creates_upload(environ):
                        found = _UPLOAD_ID.search(out)
                        record["upload_id"] = found.group(1).decode() if found else None
                    seq = self.wal.append(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
                else:
                    # A read may have seen writes not yet on disk: answer once they are.
                    seq = self.wal.last_seq
        if self.wal is not None:
            self.wal.wait_durable(seq)
        start_response(*response)
        return [out]

    def replay(self, records: Iterable[tuple[int, bytes]], after: int) -> int:
        """Apply the logged requests after sequence `after` to the loaded state; returns the
        last sequence applied."""
        last = after
        for seq, payload in records:
            if seq <= after:
                continue
            record = pickle.loads(payload)
            body: bytes = record["body"]
            environ = dict(record["environ"])
            environ.update(
                {
                    "wsgi.input": io.BytesIO(body),
                    "wsgi.errors": sys.stderr,
                    "wsgi.url_scheme": "http",
                    "wsgi.version": (1, 0),
                    "wsgi.multithread": False,
                    "wsgi.multiprocess": False,
                    "wsgi.run_once": False,
                    "CONTENT_LENGTH": str(len(body)),
                }
            )
            out = b"".join(self.app(environ, lambda *args: lambda data: None))
            original = record.get("upload_id")
            if original:
                _keep_upload_id(out, original)
            last = seq
        return last

    # ------------------------------------------------------------------ snapshots

    def snapshot_in_background(self) -> bool:
        """Fork a child that writes a snapshot of this instant; False if one is running.
        Requests wait only for the log rotation and the fork."""
        if self.store is None or self.wal is None:
            return False
        with self._child_done:
            if self._child is not None:
                return False
            with self.lock:
                started = time.perf_counter()
                seq = self.wal.rotate()
                # What exists now moves out of the collector's sight until the child is
                # done (the gc docs' advice before fork): a full collection in the parent
                # would write to every object, copying the heap the child is reading.
                gc.freeze()
                pid = os.fork()
                if pid == 0:  # the child: no locks, no threads, no stdio buffers of ours
                    gc.disable()
                    os.nice(10)  # serving requests comes first
                    code = 1
                    try:
                        self.store.save(seq)
                        code = 0
                    except BaseException:
                        os.write(2, traceback.format_exc().encode())
                    finally:
                        os._exit(code)
                self.snapshot_stalls.append(time.perf_counter() - started)
            self._child = pid
        threading.Thread(target=self._reap, args=(pid, seq), daemon=True).start()
        return True

    def _reap(self, pid: int, seq: int) -> None:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        gc.unfreeze()  # the child is gone: garbage among the frozen objects may be collected
        assert self.wal is not None
        if code == 0:
            self.snapshot_seq = seq
            dropped = self.wal.drop_through(seq)
            print(
                f"aws-emulator: snapshot at {seq} written; {dropped} log segment(s) dropped; "
                f"requests paused {self.snapshot_stalls[-1] * 1000:.1f} ms",
                flush=True,
            )
        else:
            print(f"aws-emulator: snapshot failed (exit {code})", file=sys.stderr, flush=True)
        with self._child_done:
            self._child = None
            self.last_snapshot = time.monotonic()
            self._child_done.notify_all()

    def snapshot_due(self) -> bool:
        if self.wal is None:
            return False
        if self.wal.bytes_since_rotation >= SNAPSHOT_LOG_BYTES:
            return True
        elapsed = time.monotonic() - self.last_snapshot
        return self.wal.last_seq > self.snapshot_seq and elapsed >= SNAPSHOT_INTERVAL_SECONDS

    def close(self) -> None:
        """The final snapshot, in this process (no requests are served any more)."""
        if self.store is None or self.wal is None:
            return
        with self._child_done:
            while self._child is not None:
                self._child_done.wait()
        with self.lock:
            if self.wal.last_seq > self.snapshot_seq:
                seq = self.wal.rotate()
                self.store.save(seq)
                self.snapshot_seq = seq
                self.wal.drop_through(seq)
            self.wal.close()


def _keep_upload_id(response: bytes, original: str) -> None:
    """Give the multipart upload a replay just created the id the client was given."""
    found = _UPLOAD_ID.search(response)
    bucket_name = _BUCKET.search(response)
    if not found or not bucket_name:
        return
    new = found.group(1).decode()
    name = bucket_name.group(1).decode()
    for backend in _s3_backends():
        bucket = backend.buckets.get(name)
        if bucket is not None and new in bucket.multiparts:
            multipart = bucket.multiparts.pop(new)
            multipart.id = original
            bucket.multiparts[original] = multipart
            return


def serve(host: str, port: int, state_file: Path | None) -> None:
    os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(_KEY_BUFFER_BYTES)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class KeepAliveHandler(WSGIRequestHandler):
        """HTTP/1.1, so clients keep their connections: under HTTP/1.0 every request paid a
        new TCP connection and a new server thread."""

        protocol_version = "HTTP/1.1"

    _patch_moto()
    moto_app = DomainDispatcherApplication(create_backend_app)
    started = time.monotonic()
    if state_file is None:
        app = PersistingApp(moto_app, None)
    else:
        store = StateStore(state_file)
        loaded = store.load()
        if loaded is not None:
            print(f"aws-emulator: restored state from {state_file}", flush=True)
        snapshot_seq = loaded or 0
        app = PersistingApp(moto_app, store, snapshot_seq=snapshot_seq)
        last = app.replay(read_records(store.log_dir), snapshot_seq)
        if last > snapshot_seq:
            print(
                f"aws-emulator: replayed log records {snapshot_seq + 1}..{last} "
                f"in {time.monotonic() - started:.2f}s",
                flush=True,
            )
        app.wal = WriteAheadLog(store.log_dir, last + 1)
        app.wal.drop_through(snapshot_seq)
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    stop = threading.Event()
    forced = threading.Event()

    def snapshot_loop() -> None:
        while not stop.wait(0.2):
            try:
                due = forced.is_set() or app.snapshot_due()
                if due and app.snapshot_in_background():
                    forced.clear()
            except Exception as exc:  # keep serving; report and retry next tick
                print(f"aws-emulator: snapshot failed: {exc!r}", file=sys.stderr, flush=True)

    def shutdown(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    # `kill -USR1` takes a snapshot now (compacting the log).
    signal.signal(signal.SIGUSR1, lambda signum, frame: forced.set())
    saver = threading.Thread(target=snapshot_loop, daemon=True)
    saver.start()
    print(
        f"aws-emulator: listening on http://{host}:{server.server_port} "
        f"(ready {time.monotonic() - started:.2f}s after start)",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        stop.set()
        app.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tilegraph aws-emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.state_file)


if __name__ == "__main__":
    main()
