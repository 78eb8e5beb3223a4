"""Fan-out: how long after a card execution's terminal event is published each of its
subscribers receives it, for 1 subscriber and for N (default 1000).

Each subscriber is its own WebSocket connection (graphql-transport-ws) following the run
with ``Subscription.cardExecution``. The card sleeps in its sandbox (``--hold`` seconds,
long enough for every subscriber to attach while it runs), and the worker is warm and idle
meanwhile, so only the fan-out is measured. The terminal event's publication time is its
``seq`` (the publisher's wall clock in ns when it published), read by the bench from the
event's Redis channel; each subscriber's arrival is the wall clock when its SUCCEEDED state
is read.

    .venv/bin/python bench/bench_fanout.py [--subscribers 1000] [--hold 30]
        [--recheck-seconds 1.5]

``--recheck-seconds 0`` makes every subscriber check its token and access itself on every
event (no sharing), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import websockets
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cards import create_card, render  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

from common import (  # noqa: E402
    ADMIN,
    PRODUCTION,
    QUIET_API,
    TERMINAL,
    Subscriptions,
    admin_stack,
    bounded,
    create_user,
    load_line,
    open_api,
    percentile,
    upload_csv,
    work_dir,
)
from tilegraph.events.channels import execution_channel  # noqa: E402

EXECUTE = """mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) {
  execution { id status } } }"""
FOLLOW = """subscription($id: ID!) { cardExecution(id: $id) { id status finishedAt } }"""
OPENING = 50  # connections opened at a time
PY_SPY = ["py-spy", "record", "--rate", "500", "--format", "raw"]


class Subscriber:
    """One WebSocket connection following one execution."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def attach(cls, ws_url: str, token: str, execution_id: str) -> Subscriber:
        """Connected, subscribed, and holding the execution's current (QUEUED) state."""
        ws = await websockets.connect(
            ws_url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            open_timeout=60,
            max_size=1 << 20,
        )
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"WebSocket refused: {ack}")
        payload = {"query": FOLLOW, "variables": {"id": execution_id}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        first = json.loads(await ws.recv())
        state = first.get("payload", {}).get("data", {}).get("cardExecution") or {}
        if first.get("type") != "next" or state.get("status") not in ("QUEUED", "RUNNING"):
            raise RuntimeError(f"expected the run still going first (raise --hold): {first}")
        return cls(ws)

    async def terminal_arrival_ns(self) -> int:
        """The wall clock when the terminal state arrives."""
        async for raw in self.ws:
            message = json.loads(raw)
            if message.get("type") != "next":
                raise RuntimeError(f"the stream ended before a terminal state: {message}")
            if message["payload"]["data"]["cardExecution"]["status"] in TERMINAL:
                return time.time_ns()
        raise RuntimeError("the connection closed before a terminal state")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


async def terminal_seq(redis_url: str, execution_id: str, subscribed: asyncio.Event) -> int:
    """The `seq` (publication time, ns) of the execution's terminal event."""
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(execution_channel(execution_id))
        subscribed.set()
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            state = orjson.loads(message["data"])
            if state["status"] in TERMINAL:
                return int(state["seq"])
        raise RuntimeError("the channel closed before a terminal event")
    finally:
        await pubsub.aclose()
        await redis.aclose()


async def one_round(
    stack: Stack, api: Api, token: str, card_id: str, subscribers: int, profile: Profile | None
) -> list[float]:
    """Milliseconds from publication to arrival of the terminal event, per subscriber."""
    data = await api.ok(EXECUTE, {"id": card_id}, token=token)
    execution_id = data["executeCard"]["execution"]["id"]
    subscribed = asyncio.Event()
    published = asyncio.create_task(
        terminal_seq(stack.env["TILEGRAPH_REDIS_URL"], execution_id, subscribed)
    )
    await subscribed.wait()
    attached: list[Subscriber] = await bounded(
        OPENING,
        [Subscriber.attach(api.ws_url, token, execution_id) for _ in range(subscribers)],
    )
    profiler = profile.start() if profile is not None and subscribers > 1 else None
    try:
        arrivals = [asyncio.create_task(s.terminal_arrival_ns()) for s in attached]
        async with asyncio.timeout(300):
            seq = await published
            arrived = await asyncio.gather(*arrivals)
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes what it has so far
            await asyncio.to_thread(profiler.wait)
        await asyncio.gather(*(s.close() for s in attached))
    return [(at - seq) / 1e6 for at in arrived]


@dataclass
class Profile:
    """py-spy (not a dependency: installed by whoever profiles) on the API, from when every
    subscriber is attached until the terminal event has reached them all."""

    api_pid: int
    path: str

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*PY_SPY, "-p", str(self.api_pid), "-o", self.path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


async def measure(
    stack: Stack,
    url: str,
    ws_url: str,
    counts: list[tuple[int, int]],
    hold: float,
    profile: Profile | None,
) -> dict[int, list[float]]:
    """Samples per subscriber count, from `rounds` runs for each (count, rounds)."""
    api = await open_api(url, ws_url)
    try:
        admin = await api.login(*ADMIN)
        user = await create_user(api, admin, "fanout")
        token = user["token"]
        async with Subscriptions.open(api, token) as subs:
            final = await upload_csv(api, token, subs, "fanout", b"a,b\n1,2\n3,4\n")
        code = render(f"import time\ntime.sleep({hold})\nreturn 'ok'")
        card_id = await create_card(api, token, code, [final["dataset"]["id"]])
        figures: dict[int, list[float]] = {}
        for n, rounds in counts:
            for _ in range(rounds):
                samples = await one_round(stack, api, token, card_id, n, profile)
                figures.setdefault(n, []).extend(samples)
        return figures
    finally:
        await api.close()


def line(subscribers: int, samples: list[float]) -> str:
    return (
        f"{subscribers:>5} subscriber(s): p50 {percentile(samples, 0.5):8.1f} ms   "
        f"p99 {percentile(samples, 0.99):8.1f} ms   max {max(samples):8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--single-rounds", type=int, default=5, help="runs with 1 subscriber")
    parser.add_argument(
        "--hold", type=float, default=30.0, help="seconds the card runs (attach time)"
    )
    parser.add_argument(
        "--profile", help="write a py-spy raw profile of the API's fan-out to this file"
    )
    parser.add_argument(
        "--recheck-seconds",
        type=float,
        default=None,
        help="TILEGRAPH_RECHECK_SECONDS for the API (default: the setting's default)",
    )
    args = parser.parse_args()
    env = dict(QUIET_API)
    if args.recheck_seconds is not None:
        env["TILEGRAPH_RECHECK_SECONDS"] = str(args.recheck_seconds)
    print(load_line(), flush=True)
    with work_dir("bench_fanout_") as work, admin_stack(work) as stack:
        server = stack.start_api(env=env)
        stack.start_worker(env={**PRODUCTION, "TILEGRAPH_CARD_TIMEOUT_SECONDS": "600"})
        counts = [(1, args.single_rounds), (args.subscribers, 1)]
        profile = Profile(server.process.pid, args.profile) if args.profile else None
        figures = asyncio.run(measure(stack, server.url, server.ws_url, counts, args.hold, profile))
    print(load_line())
    one, many = figures[1], figures[args.subscribers]
    recheck = env.get("TILEGRAPH_RECHECK_SECONDS", "default")
    print(f"terminal event, publication -> arrival; recheck seconds: {recheck}")
    print(line(1, one) + f"   ({args.single_rounds} runs)")
    print(line(args.subscribers, many))
    print(
        f"ratio N={args.subscribers} / N=1: p50 {percentile(many, 0.5) / percentile(one, 0.5):.1f}x"
        f", p99 {percentile(many, 0.99) / percentile(one, 0.99):.1f}x"
    )


if __name__ == "__main__":
    main()
