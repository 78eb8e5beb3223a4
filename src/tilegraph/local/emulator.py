"""moto's server mode on loopback, with its state kept in a file so data survives restarts.

moto keeps everything in memory. We serve its WSGI app ourselves and, after any request
that may have changed state, snapshot the DynamoDB and S3 backends with pickle into the
data dir (debounced; written to a temporary file then renamed, so a crash mid-write never
corrupts the previous snapshot). A final snapshot is written on SIGTERM/SIGINT. Requests
and snapshots take one lock, so a snapshot is always a consistent point in time.
"""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SNAPSHOT_DEBOUNCE_SECONDS = 1.0
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


def _backends() -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    return {"dynamodb": dynamodb_backends, "s3": s3_backends}


class StateStore:
    """Loads and saves the emulator's backends as one pickle file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> bool:
        if not self.path.exists():
            return False
        with self.path.open("rb") as handle:
            saved: dict[str, Any] = pickle.load(handle)
        for name, backend_dict in _backends().items():
            if name in saved:
                backend_dict.clear()
                backend_dict.update(saved[name])
        return True

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            pickle.dump(dict(_backends()), handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


class PersistingApp:
    """WSGI wrapper: one request at a time with snapshots, marks state dirty on writes."""

    def __init__(self, app: Callable[..., Iterable[bytes]], store: StateStore | None) -> None:
        self.app = app
        self.store = store
        self.lock = threading.Lock()
        self.dirty = False
        self.last_change = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # One request at a time even without snapshots: moto's conditional writes are not
        # atomic across threads, and DynamoDB's are.
        with self.lock:
            body = b"".join(self.app(environ, start_response))
            if self.store is not None and self._may_write(environ):
                self.dirty = True
                self.last_change = time.monotonic()
        return [body]

    @staticmethod
    def _may_write(environ: dict[str, Any]) -> bool:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            return False
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        return not (target and target.rsplit(".", 1)[-1] in _READ_TARGETS)

    def snapshot_if_dirty(self, *, force: bool = False) -> None:
        if self.store is None:
            return
        with self.lock:
            settled = time.monotonic() - self.last_change >= SNAPSHOT_DEBOUNCE_SECONDS
            if self.dirty and (settled or force):
                self.store.save()
                self.dirty = False


def serve(host: str, port: int, state_file: Path | None) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class KeepAliveHandler(WSGIRequestHandler):
        """HTTP/1.1, so clients keep their connections: under HTTP/1.0 every request paid a
        new TCP connection and a new server thread."""

        protocol_version = "HTTP/1.1"

    store = StateStore(state_file) if state_file else None
    if store is not None and store.load():
        print(f"aws-emulator: restored state from {state_file}", flush=True)
    app = PersistingApp(DomainDispatcherApplication(create_backend_app), store)
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    stop = threading.Event()

    def snapshot_loop() -> None:
        while not stop.wait(0.5):
            try:
                app.snapshot_if_dirty()
            except Exception as exc:  # keep serving; report and retry next tick
                print(f"aws-emulator: snapshot failed: {exc!r}", file=sys.stderr, flush=True)

    def shutdown(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    saver = threading.Thread(target=snapshot_loop, daemon=True)
    saver.start()
    print(f"aws-emulator: listening on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        stop.set()
        app.snapshot_if_dirty(force=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tilegraph aws-emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.state_file)


if __name__ == "__main__":
    main()
