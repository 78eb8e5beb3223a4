"""A real loopback HTTP/1.1 server speaking the OpenAI chat-completions streaming format.

It stands in for an LLM server (none can run here): httpx talks to it over TCP exactly as
it would to OpenAI or vLLM. It records every request and can be told to misbehave (drop
connections, fail with a status, cut or stall the stream). Shared with bench/bench_chat.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Script:
    """How the server answers the next requests."""

    tokens: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "!"])
    status: int = 200
    error_body: dict[str, Any] | None = None
    drop_connections: int = 0  # close this many connections after reading the request
    cut_after: int | None = None  # close the connection mid-stream after N tokens
    stall_after: int | None = None  # stop sending (but keep the connection) after N tokens
    delay: float = 0.0  # seconds between tokens
    send_done: bool = True  # the final "data: [DONE]"
    finish_reason: str | None = "stop"
    stream_error: str | None = None  # an {"error": ...} event after the tokens
    json_response: bool = False  # answer with a non-streamed JSON body


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class OpenAIStub:
    """`async with OpenAIStub() as server:`; `server.base_url` ends in /v1."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.requests: list[Request] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> OpenAIStub:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if number <= self.script.drop_connections:
                    return  # no response at all: the client sees the connection closed
                if not await self._respond(writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # the server is shutting down (we cancelled it); end quietly
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        script = self.script
        if script.status != 200:
            body = json.dumps(script.error_body or {"error": {"message": "failure"}}).encode()
            writer.write(_head(script.status, "application/json", len(body)) + body)
            await writer.drain()
            return True
        if script.json_response:
            body = json.dumps(
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(script.tokens)},
                            "finish_reason": "stop",
                        }
                    ]
                }
            ).encode()
            writer.write(_head(200, "application/json", len(body)) + body)
            await writer.drain()
            return True
        writer.write(_head(200, "text/event-stream", None))
        writer.write(_chunk(_event({"role": "assistant", "content": ""}, None)))
        for index, token in enumerate(script.tokens):
            if script.cut_after is not None and index == script.cut_after:
                await writer.drain()
                return False  # closed without the terminating chunk
            if script.stall_after is not None and index == script.stall_after:
                await writer.drain()
                await asyncio.sleep(3600)
            if script.delay:
                await asyncio.sleep(script.delay)
            writer.write(_chunk(_event({"content": token}, None)))
            await writer.drain()
        if script.stream_error is not None:
            writer.write(
                _chunk(
                    f"data: {json.dumps({'error': {'message': script.stream_error}})}\n\n".encode()
                )
            )
        elif script.finish_reason is not None:
            writer.write(_chunk(_event({}, script.finish_reason)))
        if script.send_done:
            writer.write(_chunk(b"data: [DONE]\n\n"))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, target, headers, body)


def _head(status: int, content_type: str, length: int | None) -> bytes:
    reason = {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        429: "Too Many Requests",
    }.get(status, "Error")
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()
    )


def _event(delta: dict[str, Any], finish_reason: str | None) -> bytes:
    chunk = {
        "id": "chatcmpl-loopback",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "loopback",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
