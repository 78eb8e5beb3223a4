"""A small GraphQL client over HTTP and a real WebSocket (graphql-transport-ws)."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

_ip_counter = itertools.count(1)


def fresh_ip() -> str:
    """A distinct client address per caller, so per-IP login limits never leak across tests."""
    n = next(_ip_counter) + random.randint(0, 1 << 16) * 1000
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class GraphQLErrorResponse(AssertionError):
    pass


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    headers: httpx.Headers

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    @property
    def error(self) -> dict[str, Any]:
        assert self.errors, f"expected an error, got {self.body}"
        return self.errors[0]

    @property
    def code(self) -> str | None:
        return self.error.get("extensions", {}).get("code")


class Api:
    def __init__(
        self, base_url: str, ws_url: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """`transport`: how HTTP reaches the API (into an in-process app); by default over
        the network to `base_url`. WebSockets always go over the network to `ws_url`."""
        self.base_url = base_url
        self.ws_url = ws_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=60, transport=transport)

    async def close(self) -> None:
        await self.http.aclose()

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        ip: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = {"X-Forwarded-For": ip or fresh_ip(), **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        response = await self.http.post("/graphql", json=payload, headers=all_headers)
        return Response(response.status_code, response.json(), response.headers)

    async def ok(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        ip: str | None = None,
    ) -> Any:
        response = await self.post(query, variables, token=token, ip=ip)
        if response.errors:
            raise GraphQLErrorResponse(json.dumps(response.errors, indent=2))
        return response.data

    async def fail(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        ip: str | None = None,
    ) -> Response:
        response = await self.post(query, variables, token=token, ip=ip)
        assert response.errors, f"expected an error, got {response.body}"
        return response

    async def login(self, email: str, password: str) -> str:
        data = await self.ok(
            "mutation($i: LoginInput!) { login(input: $i) { token } }",
            {"i": {"email": email, "password": password}},
        )
        return str(data["login"]["token"])

    @asynccontextmanager
    async def websocket(
        self, connection_params: dict[str, Any] | None, subprotocol: str = "graphql-transport-ws"
    ) -> AsyncIterator[WebSocketSession]:
        async with websockets.connect(
            self.ws_url,
            subprotocols=[subprotocol],  # type: ignore[list-item]
            open_timeout=10,
            close_timeout=5,
            max_size=32 << 20,
        ) as ws:
            session = WebSocketSession(ws)
            if connection_params is not None:
                await ws.send(json.dumps({"type": "connection_init", "payload": connection_params}))
            yield session


class WebSocketSession:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def receive(self, timeout: float = 30) -> dict[str, Any]:
        import asyncio

        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(raw)  # type: ignore[no-any-return]

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        await self.ws.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        return op_id

    async def messages(self, op_id: str, timeout: float = 60) -> AsyncIterator[dict[str, Any]]:
        """`next` payloads of one operation until it completes (or errors)."""
        while True:
            message = await self.receive(timeout)
            if message.get("id") != op_id:
                continue
            if message["type"] == "next":
                yield message["payload"]
            elif message["type"] == "error":
                yield {"errors": message["payload"]}
                return
            elif message["type"] == "complete":
                return


@dataclass
class UnderAttack:
    """What a probe of `/healthz` saw while attackers kept the API busy."""

    health_seconds: list[float]
    attack_seconds: list[float]  # each attack request, start to response
    attacks_during_probe: int

    def health_percentile(self, fraction: float) -> float:
        ordered = sorted(self.health_seconds)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def health_under_attack(
    base_url: str,
    attack: Callable[[httpx.Client], None],
    *,
    attackers: int = 4,
    samples: int = 600,
    deadline_seconds: float = 120,
) -> UnderAttack:
    """Samples `/healthz` one request after another from its own client while `attackers`
    threads, each with a client of its own, call `attack` back to back. Blocking: call it
    in a thread (asyncio.to_thread) so the test's event loop is not held."""
    stop = threading.Event()
    first_attack_done = threading.Event()
    attack_seconds: list[float] = []
    failures: list[BaseException] = []

    def attacker() -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    attack(client)
                except BaseException as exc:  # reported by the caller's thread
                    failures.append(exc)
                    first_attack_done.set()
                    return
                attack_seconds.append(time.perf_counter() - started)
                first_attack_done.set()

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(attackers)]
    for thread in threads:
        thread.start()
    health: list[float] = []
    try:
        assert first_attack_done.wait(deadline_seconds), "no attack request finished"
        before = len(attack_seconds)
        finish_by = time.monotonic() + deadline_seconds
        with httpx.Client(base_url=base_url, timeout=30) as probe:
            while len(health) < samples and time.monotonic() < finish_by and not failures:
                started = time.perf_counter()
                response = probe.get("/healthz")
                health.append(time.perf_counter() - started)
                assert response.status_code == 200
        during = len(attack_seconds) - before
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=deadline_seconds)
    if failures:
        raise failures[0]
    return UnderAttack(health, list(attack_seconds), during)
