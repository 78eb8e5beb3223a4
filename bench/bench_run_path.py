"""The run path's costs, each beside a baseline measured in the same run.

(a) A cached 20-card ``executeDashboard`` beside ``{ me { id } }``, both sent one after the
other on the same keep-alive HTTP connection: p50 of each and the ratio (target <= 6x).
(b) 100 concurrent users (each its own connection and token, all VIEWERs of one dashboard)
opening that cached dashboard with ``executeDashboard`` for a fixed time: calls/s, p50/p99
(target >= 50 calls/s).
(c) DynamoDB and Redis requests of one cached ``executeDashboard`` of 1, 20 and 100 cards,
as the API counts them (``extensions.dynamodbRequests`` / ``redisRequests``).
(d) A no-op card end to end: ``executeCard(useCache: false)`` until the terminal event
arrives over one reused WebSocket: p50/p95 (target p50 <= 60 ms).

    .venv/bin/python bench/bench_run_path.py [--samples 200] [--users 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.support.client import Api  # noqa: E402

from common import (  # noqa: E402
    ADMIN,
    PRODUCTION,
    QUIET_API,
    Subscriptions,
    admin_stack,
    bounded,
    create_user,
    open_api,
    percentile,
    upload_csv,
    work_dir,
)

NOOP = "def render(dataset, filters, params):\n    return 'ok'\n"
CREATE_CARD = """mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }"""
CREATE_DASHBOARD = """mutation($i: CreateDashboardInput!) { createDashboard(input: $i) {
  dashboard { id } } }"""
SHARE = """mutation($i: ShareDashboardInput!) { shareDashboard(input: $i) { share { id } } }"""
EXECUTE_CARD = """mutation($i: ExecuteCardInput!) { executeCard(input: $i) { execution {
  id status result { cached html } } } }"""
FOLLOW = """subscription($id: ID!) { cardExecution(id: $id) { id status
  result { cached html } error { code message } } }"""
OPEN = """mutation($id: ID!) { executeDashboard(input: {id: $id}) {
  executions { id status result { cached html } } } }"""
ME = "{ me { id } }"


async def build(api: Api, token: str, dataset_id: str, sizes: list[int]) -> dict[int, str]:
    """Dashboards of each size, over cards that share one code and dataset (one cache key),
    warmed by one run, so every later open is all cache hits."""
    cards = [
        (
            await api.ok(
                CREATE_CARD,
                {"i": {"name": f"c{i}", "code": NOOP, "datasetIds": [dataset_id]}},
                token=token,
            )
        )["createCard"]["card"]["id"]
        for i in range(max(sizes))
    ]
    dashboards = {}
    for size in sizes:
        items = [
            {"cardId": c, "x": 0, "y": 2 * i, "w": 6, "h": 2} for i, c in enumerate(cards[:size])
        ]
        data = await api.ok(
            CREATE_DASHBOARD, {"i": {"name": f"d{size}", "layout": {"items": items}}}, token=token
        )
        dashboards[size] = data["createDashboard"]["dashboard"]["id"]
    warm = await api.ok(EXECUTE_CARD, {"i": {"id": cards[0]}}, token=token)
    async with Subscriptions.open(api, token) as subs:
        await subs.follow(FOLLOW, {"id": warm["executeCard"]["execution"]["id"]}, "cardExecution")
    return dashboards


async def post(http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body


def progress(part: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} measuring {part}", file=sys.stderr, flush=True)


def cached(body: Any) -> bool:
    executions = body["data"]["executeDashboard"]["executions"]
    return all(e["result"] and e["result"]["cached"] for e in executions)


async def part_a(url: str, token: str, dash: str, samples: int) -> tuple[list[float], list[float]]:
    me, dashboard = [], []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(20):  # warm-up
            await post(http, token, ME, {})
            await post(http, token, OPEN, {"id": dash})
        for _ in range(samples):
            started = time.perf_counter()
            await post(http, token, ME, {})
            me.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            body = await post(http, token, OPEN, {"id": dash})
            dashboard.append((time.perf_counter() - started) * 1000)
            if not cached(body):
                raise RuntimeError("a dashboard open was not all cache hits")
    return me, dashboard


async def part_b(url: str, tokens: list[str], dash: str, seconds: float) -> tuple[int, list[float]]:
    """Every user opens the dashboard once (connects, warms up), then all of them keep
    opening it for `seconds`: calls completed in that window per second, and latencies."""
    latencies: list[float] = []
    clients = [httpx.AsyncClient(base_url=url, timeout=300) for _ in tokens]
    try:
        await asyncio.gather(
            *(post(c, t, OPEN, {"id": dash}) for c, t in zip(clients, tokens, strict=True))
        )
        deadline = time.perf_counter() + seconds

        async def user(http: httpx.AsyncClient, token: str) -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                body = await post(http, token, OPEN, {"id": dash})
                if time.perf_counter() <= deadline:
                    latencies.append((time.perf_counter() - started) * 1000)
                if not cached(body):
                    raise RuntimeError("a dashboard open was not all cache hits")

        await asyncio.gather(*(user(c, t) for c, t in zip(clients, tokens, strict=True)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return round(len(latencies) / seconds), latencies


async def part_c(url: str, token: str, dashboards: dict[int, str]) -> dict[int, tuple[int, int]]:
    counts = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for size, dash in dashboards.items():
            body = await post(http, token, OPEN, {"id": dash})
            if not cached(body):
                raise RuntimeError("a dashboard open was not all cache hits")
            extensions = body["extensions"]
            counts[size] = (extensions["dynamodbRequests"], extensions["redisRequests"])
    return counts


async def part_d(api: Api, token: str, card_id: str, samples: int) -> list[float]:
    times = []
    async with Subscriptions.open(api, token) as subs:
        for index in range(samples + 10):
            started = time.perf_counter()
            data = await api.ok(
                EXECUTE_CARD, {"i": {"id": card_id, "useCache": False}}, token=token
            )
            execution = data["executeCard"]["execution"]
            state, seen = await subs.follow(FOLLOW, {"id": execution["id"]}, "cardExecution")
            if state["status"] != "SUCCEEDED":
                raise RuntimeError(f"no-op card ended {state}")
            if index >= 10:  # warm-up
                times.append((seen - started) * 1000)
    return times


async def drive(url: str, ws_url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    api = await open_api(url, ws_url)
    try:
        admin = await api.login(*ADMIN)
        owner = await create_user(api, admin, "owner")
        async with Subscriptions.open(api, owner["token"]) as subs:
            imported = await upload_csv(api, owner["token"], subs, "tiny", b"a,b\n1,2\n3,4\n")
        dataset_id = imported["dataset"]["id"]
        dashboards = await build(api, owner["token"], dataset_id, [1, 20, 100])
        viewers = await bounded(
            8, [create_user(api, admin, f"viewer{i}") for i in range(args.users)]
        )
        for viewer in viewers:
            share = {
                "dashboardId": dashboards[20],
                "targetType": "USER",
                "targetId": viewer["id"],
                "permission": "VIEWER",
            }
            await api.ok(SHARE, {"i": share}, token=owner["token"])
        out: dict[str, Any] = {}
        progress("(a)")
        out["me"], out["dashboard"] = await part_a(
            url, owner["token"], dashboards[20], args.samples
        )
        progress("(b)")
        out["rate"], out["crowd"] = await part_b(
            url, [v["token"] for v in viewers], dashboards[20], args.seconds
        )
        progress("(c)")
        out["counts"] = await part_c(url, owner["token"], dashboards)
        progress("(d)")
        card = await api.ok(
            CREATE_CARD,
            {"i": {"name": "noop", "code": NOOP, "datasetIds": [dataset_id]}},
            token=owner["token"],
        )
        out["noop"] = await part_d(
            api, owner["token"], card["createCard"]["card"]["id"], args.samples
        )
        return out
    finally:
        await api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="samples in (a) and (d)")
    parser.add_argument("--users", type=int, default=100, help="concurrent users in (b)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of (b)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with work_dir("bench_run_path_") as work, admin_stack(work) as stack:
        server = stack.start_api(env=QUIET_API)
        worker = stack.start_worker(env=PRODUCTION)
        print(
            f"pids: api {server.process.pid}, worker {worker.pid}, "
            f"emulator {stack.processes[0].pid} (for a profiler)",
            flush=True,
        )
        out = asyncio.run(drive(server.url, server.ws_url, args, work))
    load_after = os.getloadavg()
    med = statistics.median
    print(
        f"\n{os.cpu_count()} cores; load average {load_before[0]:.2f} -> {load_after[0]:.2f}; "
        "one API and one worker (bwrap)\n"
    )
    me, dash = out["me"], out["dashboard"]
    print("(a) one keep-alive connection, alternating requests")
    for label, samples in (("{ me { id } }", me), ("cached 20-card executeDashboard", dash)):
        p50, p95 = med(samples), percentile(samples, 0.95)
        print(f"  {label:<32} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
    print(f"  ratio of p50s: {med(dash) / med(me):.1f}x (target <= 6x)")
    crowd = out["crowd"]
    print(
        f"\n(b) {args.users} concurrent users opening the cached 20-card dashboard, "
        f"{args.seconds:.0f} s"
    )
    print(
        f"  {out['rate']} calls/s (target >= 50); p50 {percentile(crowd, 0.5):.0f} ms, "
        f"p99 {percentile(crowd, 0.99):.0f} ms; {len(crowd)} calls"
    )
    print("\n(c) requests of one cached executeDashboard")
    for size, (dynamodb, redis) in out["counts"].items():
        print(f"  {size:>3} cards: DynamoDB {dynamodb}, Redis {redis}")
    noop = out["noop"]
    print("\n(d) no-op card, executeCard(useCache: false) -> terminal event over WebSocket")
    print(
        f"  p50 {med(noop):.1f} ms, p95 {percentile(noop, 0.95):.1f} ms (target p50 <= 60 ms); "
        f"{len(noop)} runs"
    )


if __name__ == "__main__":
    main()
