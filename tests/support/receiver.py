"""A real HTTP server on loopback (the standard library's, in a thread) standing in for a
webhook or Slack receiver: it records every request and answers from a script.

Tests wait for requests on a condition, never by sleeping."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes


# An answer that never comes (until the receiver stops): for send timeouts.
HANG = -1
# One scripted answer: a status, a status and the body to send with it, or HANG.
Answer = int | tuple[int, bytes]


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for `host` and its key (openssl), to serve https on loopback."""
    cert, key = directory / f"{host}.crt", directory / f"{host}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}"),
            *("-addext", f"subjectAltName=DNS:{host}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (a refused certificate, a timeout) is no test failure


class HttpReceiver:
    """ThreadingHTTPServer on 127.0.0.1 at a free port; `requests` in the order received.
    With `tls` (a certificate and its key), it serves https."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.requests: list[Request] = []
        self._script: list[Answer] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self.port = int(self._server.server_address[1])
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        # serve_forever's poll interval is how long stop() takes.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> HttpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def respond(self, answers: Iterable[Answer]) -> None:
        """The next answers, in order (e.g. [503, 503, 200]); 200 once the script is used up.
        A 3xx answer carries a Location on this same server; HANG answers only at stop."""
        with self._changed:
            self._script = list(answers)

    def _next(self, request: Request) -> tuple[int, bytes]:
        with self._changed:
            self.requests.append(request)
            answer = self._script.pop(0) if self._script else 200
            self._changed.notify_all()
        if answer == HANG:
            self._stopping.wait(60)
            return 503, b"stopped"
        if isinstance(answer, int):
            return answer, b"ok" if answer < 300 else f"scripted {answer}".encode()
        return answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.command, self.path, headers, body)
                status, payload = receiver._next(request)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"{receiver.url}/redirected")
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: requests are asserted on, not logged

        return Handler

    def _wait(self, count: int, timeout: float) -> list[Request]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.requests)} of {count} requests arrived in {timeout}s"
                )
            return list(self.requests)

    async def wait_for(self, count: int, timeout: float = 10) -> list[Request]:
        """Every request received, once there are at least `count`; TimeoutError otherwise."""
        return await asyncio.to_thread(self._wait, count, timeout)
