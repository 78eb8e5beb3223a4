"""A mixed soak: does anything grow or fail when the product is simply used for a while?

20 clients (each its own user, token and WebSocket) loop over what people do: ``me``, the
dashboard list, a cached ``executeDashboard`` of their 5-card dashboard, an uncached card
run with one of 50 params (so distinct results keep arriving) followed to its end over the
subscription, and now and then a small CSV upload followed to its end. Every 30 s the RSS of
the API, the worker (with its sandbox zygote and runs) and the AWS emulator is sampled.
Prints, per process, the first and last sample and the growth per hour (least-squares slope
over the samples after the first, which is warm-up), plus operations done and errors by code.

    .venv/bin/python bench/bench_soak.py [--minutes 10] [--clients 20] [--sample-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.dashboards import create_dashboard  # noqa: E402

from common import (  # noqa: E402
    ADMIN,
    PRODUCTION,
    QUIET_API,
    Subscriptions,
    admin_stack,
    bounded,
    create_user,
    load_line,
    open_api,
    start_upload,
    tree_rss_bytes,
    work_dir,
)

CREATE_CARD = """mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }"""
EXECUTE_CARD = """mutation($i: ExecuteCardInput!) { executeCard(input: $i) {
  execution { id status } } }"""
EXECUTE_DASHBOARD = """mutation($id: ID!) { executeDashboard(input: {id: $id}) {
  executions { id status } } }"""
FOLLOW_CARD = """subscription($id: ID!) { cardExecution(id: $id) { status
  error { code } result { cached } } }"""
FOLLOW_IMPORT = """subscription($id: ID!) { datasetImport(id: $id) { status
  error { code } } }"""
CARD_CODE = (
    "def render(dataset, filters, params):\n"
    "    n = int((params or {}).get('n', 0))\n"
    "    return f'<p>{n}: {len(dataset)} rows, total {int(dataset[\"b\"].sum()) * n}</p>'\n"
)
CSV = b"a,b\n" + b"".join(f"x{i},{i}\n".encode() for i in range(200))


def slope_per_hour(samples: list[tuple[float, int]]) -> float:
    """Least-squares growth in bytes per hour of (seconds, bytes) samples."""
    if len(samples) < 2:
        return 0.0
    xs = [t for t, _ in samples]
    ys = [float(v) for _, v in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


class Tally:
    def __init__(self) -> None:
        self.done: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()

    def failed(self, what: str, exc: BaseException) -> None:
        code = getattr(exc, "code", None) or type(exc).__name__
        self.errors[f"{what}: {code}"] += 1


async def prepare(api: Any, admin: str, index: int) -> dict[str, Any]:
    user = await create_user(api, admin, f"soak{index}")
    async with Subscriptions.open(api, user["token"]) as subs:
        import_id = await start_upload(api, user["token"], f"data{index}", CSV)
        final, _ = await subs.follow(FOLLOW_IMPORT, {"id": import_id}, "datasetImport")
    assert final["status"] == "SUCCEEDED", final
    dataset = await api.ok("query { datasets { nodes { id } } }", token=user["token"])
    dataset_id = dataset["datasets"]["nodes"][0]["id"]
    cards = []
    for n in range(5):
        made = await api.ok(
            CREATE_CARD,
            {"i": {"name": f"c{n}", "code": CARD_CODE, "datasetIds": [dataset_id]}},
            token=user["token"],
        )
        cards.append(made["createCard"]["card"]["id"])
    board = await create_dashboard(api, user["token"], name="soak", card_ids=cards)
    return {**user, "cards": cards, "dashboard": board["id"]}


async def client(api: Any, user: dict[str, Any], until: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    token = user["token"]
    async with Subscriptions.open(api, token) as subs:
        while time.monotonic() < until:
            steps: list[tuple[str, Any]] = [
                ("me", api.ok("{ me { id } }", token=token)),
                ("dashboards", api.ok("{ dashboards { nodes { id } } }", token=token)),
                (
                    "executeDashboard",
                    api.ok(EXECUTE_DASHBOARD, {"id": user["dashboard"]}, token=token),
                ),
            ]
            for name, step in steps:
                try:
                    await step
                    tally.done[name] += 1
                except Exception as exc:
                    tally.failed(name, exc)
            try:
                variables = {
                    "i": {"id": rng.choice(user["cards"]), "params": {"n": rng.randrange(50)}}
                }
                run = await api.ok(EXECUTE_CARD, variables, token=token)
                final, _ = await subs.follow(
                    FOLLOW_CARD, {"id": run["executeCard"]["execution"]["id"]}, "cardExecution", 120
                )
                tally.done[f"card {final['status']}"] += 1
            except Exception as exc:
                tally.failed("card run", exc)
            if rng.random() < 0.05:
                try:
                    import_id = await start_upload(api, token, "again", CSV)
                    final, _ = await subs.follow(
                        FOLLOW_IMPORT, {"id": import_id}, "datasetImport", 300
                    )
                    tally.done[f"import {final['status']}"] += 1
                except Exception as exc:
                    tally.failed("import", exc)


async def sampler(
    trees: dict[str, int], every: float, until: float, out: dict[str, list[tuple[float, int]]]
) -> None:
    started = time.monotonic()
    while True:
        now = time.monotonic()
        for name, pid in trees.items():
            out[name].append((now - started, tree_rss_bytes(pid)))
        if now >= until:
            return
        await asyncio.sleep(min(every, max(0.0, until - now)))


async def drive(url: str, ws_url: str, trees: dict[str, int], args: argparse.Namespace) -> None:
    api = await open_api(url, ws_url)
    try:
        admin = await api.login(*ADMIN)
        users = await bounded(4, [prepare(api, admin, i) for i in range(args.clients)])
        tally = Tally()
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in trees}
        until = time.monotonic() + args.minutes * 60
        await asyncio.gather(
            sampler(trees, args.sample_seconds, until, samples),
            *(client(api, user, until, tally, seed) for seed, user in enumerate(users)),
        )
    finally:
        await api.close()
    mib = 1 << 20
    print(f"\n{args.clients} clients for {args.minutes:g} min; {load_line()}")
    for name, series in samples.items():
        first, last = series[0][1], series[-1][1]
        growth = slope_per_hour(series[1:])
        print(
            f"  {name:<9} RSS {first / mib:7.1f} -> {last / mib:7.1f} MiB  "
            f"growth {growth / mib:+8.1f} MiB/h over {len(series)} samples"
        )
    print("  done:   " + ", ".join(f"{k} {v}" for k, v in sorted(tally.done.items())))
    errors = ", ".join(f"{k} {v}" for k, v in sorted(tally.errors.items())) or "none"
    print(f"  errors: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    args = parser.parse_args()
    env = {"TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": "50"}
    with work_dir("bench_soak_") as work, admin_stack(work) as stack:
        server = stack.start_api(env={**QUIET_API, **env})
        worker = stack.start_worker(env={**PRODUCTION, **env})
        trees = {
            "api": server.process.pid,
            "worker": worker.pid,
            "emulator": stack.processes[0].pid,
        }
        asyncio.run(drive(server.url, server.ws_url, trees, args))


if __name__ == "__main__":
    main()
