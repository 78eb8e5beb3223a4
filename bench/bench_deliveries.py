"""Scheduled deliveries: 1,000 deliveries due in the same minute, queued by two schedulers
ticking at once and sent by the workers to a webhook receiver on loopback, through the real
stack: time to enqueue all, time to send all, and duplicates (must be 0).

Setup (not measured): one 4-row dataset, one card returning ``HTMLResult`` with a small
HTML and ``metrics={"total": ...}``, one dashboard with it, and N WEBHOOK deliveries of it
(cron ``0 0 1 1 *``: never due by themselves while the bench runs), each to its own path
``/d/<i>`` of one ``HttpReceiver`` (tests/support/receiver.py: a ThreadingHTTPServer in this
process), created through the API. One manual run of an extra delivery (to ``/warm``) first
puts the card's result in the cache, so the measured runs are cache hits. The API, the
workers and the ticks run with TILEGRAPH_ENV=dev, the only setting that accepts loopback
``http://`` targets.

Measured: two ``schedule_tick`` child processes (``--tick-child AT``, the same work as
``tilegraph schedule-tick --at``) as of 30 s past the deliveries' next run, released together
once both have opened their services. Reported: each tick's own seconds and runs queued
(their sum must be N and their lists disjoint), tick start -> last queuedAt (read from the
``delivery_executions`` table after the fact), tick start -> the receiver holding a request
for every delivery (send all), queuedAt -> startedAt, startedAt -> finishedAt and queuedAt ->
received per run (p50/p99), and duplicates: requests whose Idempotency-Key repeats,
deliveries that received more than one request, deliveries with more than one run for the
due time. Every request's signature is checked against its delivery's secret and its
Idempotency-Key against its run's id. Exits non-zero on any duplicate, a bad signature or
key, or a run that did not succeed.

On this 2-core machine ``--deliveries 300`` takes ~1.5 minutes: ~15 s creating them, ~14 s
the two ticks, ~65 s sending (~4.7 deliveries/s, the emulator and the worker sharing the two
cores). Delivery runs wait in arq's own line (up to TILEGRAPH_WORKER_MAX_JOBS at once per
worker); while they took sandbox turns (2 at once per worker) sending ran at ~2.4/s. The
default (1,000) took ~10 minutes under the sandbox turns.

    .venv/bin/python bench/bench_deliveries.py [--deliveries 1000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cards import create_card, render  # noqa: E402
from tests.support.dashboards import create_dashboard  # noqa: E402
from tests.support.receiver import HttpReceiver, Request  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

from common import (  # noqa: E402
    ADMIN,
    PRODUCTION,
    QUIET_API,
    CpuMeter,
    EmulatorLog,
    Subscriptions,
    admin_stack,
    bounded,
    cpu_line,
    create_user,
    load_line,
    ms_between,
    open_api,
    percentile,
    stack_trees,
    upload_csv,
    work_dir,
)

CRON = "0 0 1 1 *"  # yearly: never due by itself while the bench runs
DEV = {"TILEGRAPH_ENV": "dev"}  # loopback http:// webhook targets are accepted only in dev
SMALL = b"id,region,amount\n1,north,1.5\n2,south,2.5\n3,east,3.5\n4,west,4.5\n"
CARD = render("""
total = float(dataset["amount"].sum())
return HTMLResult(html=f"<p>Total {total}</p>", metrics={"total": total, "rows": len(dataset)})
""")
CREATE = """mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) {
  delivery { id nextRunAt } signingSecret } }"""
RUN = """mutation($id: ID!) { runDelivery(input: {id: $id}) { run { id status } } }"""
FOLLOW = """subscription($id: ID!) { execution(id: $id) { id status
  ... on DeliveryRun { sent attempts error { code message } } } }"""


class TimedReceiver(HttpReceiver):
    """The tests' receiver, also noting when each request arrived (wall clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, Request]] = []
        default = self._server.handle_error

        def handle_error(request: Any, address: Any) -> None:
            # A sender closing its kept-alive connection is not an error worth a traceback.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                default(request, address)

        self._server.handle_error = handle_error  # type: ignore[method-assign]

    def _next(self, request: Request) -> tuple[int, bytes]:
        self.arrivals.append((time.time(), request))
        return super()._next(request)


# --------------------------------------------------------------------------- the tick


def tick_child(at: str) -> None:
    """``--tick-child AT``: opens the services, prints a ready line, waits for a line on
    stdin, then runs one schedule_tick as of AT; prints one JSON line (wall-clock start, the
    tick's own seconds, the ids it queued, its CPU)."""
    from tilegraph.domain.clock import from_iso
    from tilegraph.jobs.schedules import schedule_tick
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    async def go() -> dict[str, Any]:
        services = await Services.open(Settings.from_env())
        try:
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            start_cpu = time.process_time()
            start_wall = time.time()
            started = time.perf_counter()
            queued = await schedule_tick(services, from_iso(at))
            seconds = time.perf_counter() - started
            tick_cpu = time.process_time() - start_cpu
        finally:
            await services.close()
        return {
            "start": start_wall,
            "seconds": seconds,
            "queued": queued,
            "cpu": tick_cpu,
            "cpu_total": time.process_time(),
        }

    print(json.dumps(asyncio.run(go())))


async def scheduled_runs(services: Any, due_iso: str) -> list[dict[str, Any]]:
    """Every delivery run whose due time is `due_iso` (a Scan of the runs table, after the
    fact)."""
    from tilegraph.store.marshal import from_item

    request: dict[str, Any] = {"TableName": services.settings.table_name("delivery_executions")}
    runs = []
    while True:
        page = await services.db.client.scan(**request)
        runs.extend(r for r in map(from_item, page.get("Items", [])) if r.get("due_at") == due_iso)
        if "LastEvaluatedKey" not in page:
            return runs
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def unfinished(services: Any) -> int:
    """QUEUED or RUNNING delivery runs: the size of the sparse `by_active` index."""
    from tilegraph.store.dynamo import KeyCondition
    from tilegraph.store.executions import ACTIVE_SHARD

    return await services.db.count(
        "delivery_executions", KeyCondition("active_shard", ACTIVE_SHARD), index="by_active"
    )


async def start_tick(env: dict[str, str], at: str) -> asyncio.subprocess.Process:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--tick-child",
        at,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 120)
    if line.strip() != b"ready":
        _, stderr = await child.communicate()
        raise RuntimeError(f"tick child did not start: {line!r}\n{stderr.decode()}")
    return child


async def burst(
    services: Any,
    env: dict[str, str],
    next_run: str,
    poll: float,
    trees: dict[str, list[int]],
    log: Path,
) -> dict[str, Any]:
    """Two ticks at once as of 30 s past `next_run`; waits until every run has ended."""
    from tilegraph.domain.clock import from_iso, to_iso

    due = from_iso(next_run)
    at = to_iso(due + timedelta(seconds=30))
    children = [await start_tick(env, at) for _ in range(2)]
    meter = CpuMeter(trees)
    emulator = EmulatorLog(log)
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        child.stdin.close()
    ticks = asyncio.ensure_future(asyncio.gather(*(c.communicate() for c in children)))
    polls = 0
    while not ticks.done() or await unfinished(services):
        polls += 1
        await asyncio.sleep(poll)
    done_wall = time.time()
    cpu, moto = meter.spent(), emulator.counts()
    results = []
    for child, (stdout, stderr) in zip(children, ticks.result(), strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"tick failed ({child.returncode}):\n{stderr.decode()}")
        results.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    bench = cpu.pop("bench+ticks") - sum(t["cpu_total"] for t in results)
    cpu.update({"ticks": sum(t["cpu"] for t in results), "bench+receiver": bench})
    return {
        "due": to_iso(due),
        "ticks": results,
        "start": min(t["start"] for t in results),
        "done_wall": done_wall,
        "polls": polls,
        "cpu": cpu,
        "moto": moto,
        "runs": await scheduled_runs(services, to_iso(due)),
    }


# --------------------------------------------------------------------------- the figures


def figures(
    result: dict[str, Any], receiver: TimedReceiver, deliveries: list[dict[str, str]]
) -> dict[str, Any]:
    """What the burst did, read from the runs and the requests; `problems` must be empty."""
    count = len(deliveries)
    start = result["start"]
    start_dt = datetime.fromtimestamp(start, UTC)
    runs = result["runs"]
    problems: list[str] = []

    lists = [t["queued"] for t in result["ticks"]]
    both = set(lists[0]) & set(lists[1])
    queued_sum = sum(len(q) for q in lists)
    if queued_sum != count or both:
        problems.append(f"the ticks queued {queued_sum} runs ({len(both)} by both), not {count}")
    per_delivery = Counter(r["delivery_id"] for r in runs)
    extra_runs = sum(n - 1 for n in per_delivery.values() if n > 1)
    if len(per_delivery) != count or extra_runs:
        problems.append(f"{len(runs)} runs for {len(per_delivery)} deliveries, expected {count}")
    statuses = Counter(r["status"] for r in runs)
    if set(statuses) != {"SUCCEEDED"}:
        failed = [r.get("error") for r in runs if r["status"] != "SUCCEEDED"][:3]
        problems.append(f"run statuses {dict(statuses)}; e.g. {failed}")
    not_sent = sum(1 for r in runs if not r.get("sent"))
    if not_sent:
        problems.append(f"{not_sent} runs did not send")

    by_path = {f"/d/{i}": d for i, d in enumerate(deliveries)}
    run_of = {r["delivery_id"]: r for r in runs}
    measured = [(t, r) for t, r in receiver.arrivals if r.path in by_path]
    keys = Counter(r.headers.get("idempotency-key") for _, r in measured)
    paths = Counter(r.path for _, r in measured)
    repeated_keys = sum(n - 1 for n in keys.values() if n > 1)
    repeated_paths = sum(1 for n in paths.values() if n > 1)
    bad_signature = wrong_key = 0
    first_arrival: dict[str, float] = {}
    for at, request in measured:
        delivery = by_path[request.path]
        digest = hmac.new(delivery["secret"].encode(), request.body, hashlib.sha256)
        if request.headers.get("x-tilegraph-signature") != "sha256=" + digest.hexdigest():
            bad_signature += 1
        run = run_of.get(delivery["id"])
        if run is None or request.headers.get("idempotency-key") != run["id"]:
            wrong_key += 1
        first_arrival.setdefault(request.path, at)
    if repeated_keys or repeated_paths:
        problems.append(f"{repeated_keys} repeated keys, {repeated_paths} paths hit twice")
    if bad_signature or wrong_key:
        problems.append(f"{bad_signature} bad signatures, {wrong_key} wrong Idempotency-Keys")
    if len(first_arrival) != count:
        problems.append(f"{len(first_arrival)} of {count} deliveries received a request")

    def since(iso: str) -> float:
        return (datetime.fromisoformat(iso) - start_dt).total_seconds()

    received_ms = []
    for path, at in first_arrival.items():
        run = run_of.get(by_path[path]["id"])
        if run is not None:
            received_ms.append((at - datetime.fromisoformat(run["queued_at"]).timestamp()) * 1000)
    done = [r for r in runs if r.get("started_at") and r.get("finished_at")]
    return {
        "problems": problems,
        "ticks": [(t["seconds"], len(t["queued"])) for t in result["ticks"]],
        "tick_gap_ms": abs(result["ticks"][0]["start"] - result["ticks"][1]["start"]) * 1000,
        "last_queued_s": max((since(r["queued_at"]) for r in runs), default=float("nan")),
        "sent_all_s": max(first_arrival.values(), default=float("nan")) - start,
        "finished_s": max((since(r["finished_at"]) for r in done), default=float("nan")),
        "seen_s": result["done_wall"] - start,
        "wait_ms": [ms_between(r["queued_at"], r["started_at"]) for r in done],
        "run_ms": [ms_between(r["started_at"], r["finished_at"]) for r in done],
        "received_ms": received_ms,
        "attempts": Counter(int(r.get("attempts") or 0) for r in runs),
        "requests": len(measured),
        "repeated_keys": repeated_keys,
        "repeated_paths": repeated_paths,
        "extra_runs": extra_runs,
        "both": len(both),
    }


# --------------------------------------------------------------------------- main


async def drive(
    stack: Stack, server: Any, receiver: TimedReceiver, args: argparse.Namespace
) -> dict[str, Any]:
    from tilegraph.local.processes import stop_process
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    env = {**stack.env, **DEV}
    api = await open_api(server.url, server.ws_url)
    services = await Services.open(Settings.from_env(env))
    workers = [
        stack.start_worker(f"worker-{n + 1}", env=args.worker_env) for n in range(args.workers)
    ]
    try:
        admin = await api.login(*ADMIN)
        owner = await create_user(api, admin, "dl-owner")
        token = owner["token"]
        async with Subscriptions.open(api, token) as subs:
            dataset = (await upload_csv(api, token, subs, "small", SMALL))["dataset"]
            card_id = await create_card(api, token, CARD, [dataset["id"]], name="Total")
            dashboard = await create_dashboard(api, token, name="Bench", card_ids=[card_id])

            def spec(name: str, url: str, enabled: bool) -> dict[str, Any]:
                return {
                    "i": {
                        "dashboardId": dashboard["id"],
                        "name": name,
                        "scheduleCron": CRON,
                        "channel": "WEBHOOK",
                        "recipients": [url],
                        "enabled": enabled,
                    }
                }

            warm = await api.ok(CREATE, spec("warm", receiver.url + "/warm", False), token=token)
            ran = await api.ok(RUN, {"id": warm["createDelivery"]["delivery"]["id"]}, token=token)
            final, _ = await subs.follow(
                FOLLOW, {"id": ran["runDelivery"]["run"]["id"]}, "execution", 120
            )
            if final["status"] != "SUCCEEDED" or not final["sent"]:
                raise RuntimeError(f"the warm-up run ended {final}")

        started = time.perf_counter()
        created = await bounded(
            args.concurrency,
            [
                api.ok(CREATE, spec(f"dl {i}", f"{receiver.url}/d/{i}", True), token=token)
                for i in range(args.deliveries)
            ],
        )
        create_s = time.perf_counter() - started
        deliveries = [
            {
                "id": c["createDelivery"]["delivery"]["id"],
                "secret": c["createDelivery"]["signingSecret"],
                "next": c["createDelivery"]["delivery"]["nextRunAt"],
            }
            for c in created
        ]
        next_runs = {d["next"] for d in deliveries}
        if len(next_runs) != 1:
            raise RuntimeError(f"the deliveries are due at {len(next_runs)} different times")
        next_run = str(next_runs.pop())
        print(
            f"  {len(deliveries)} deliveries created through the API in {create_s:.1f} s "
            f"(setup; {args.concurrency} requests in flight)",
            flush=True,
        )
        print(f"  two ticks as of {next_run} + 30 s ({load_line()})", flush=True)
        trees = {
            "workers": [w.pid for w in workers],
            **stack_trees(stack, server),
            "bench+ticks": [0],
        }
        log = stack.workdir / "aws-emulator.log"
        result = await burst(services, env, next_run, args.poll, trees, log)
        out = figures(result, receiver, deliveries)
        out.update(create_s=create_s, cpu=result["cpu"], moto=result["moto"])
        out.update(polls=result["polls"], cpu_wall=result["done_wall"] - result["start"])
        return out
    finally:
        for process in workers:
            stop_process(process, timeout=15)
        await services.close()
        await api.close()


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    count = args.deliveries
    p = percentile
    print(
        f"\n{count} WEBHOOK deliveries due in the same minute, two scheduler ticks at once, "
        f"{args.workers} worker(s) (delivery runs wait in arq's own line), one cached "
        "card each, a loopback receiver"
    )
    for n, (seconds, queued) in enumerate(out["ticks"], 1):
        print(f"  tick {n}: {seconds:.2f} s, {queued} runs queued")
    print(
        f"  queued by the two ticks: {sum(q for _, q in out['ticks'])} of {count} "
        f"(by both: {out['both']}); the ticks started {out['tick_gap_ms']:.1f} ms apart"
    )
    print(f"  enqueue all: last queuedAt {out['last_queued_s']:.2f} s after the tick started")
    print(
        f"  send all:    the receiver held a request for every delivery "
        f"{out['sent_all_s']:.2f} s after the tick started ({count / out['sent_all_s']:.1f} "
        f"deliveries/s); last finishedAt {out['finished_s']:.2f} s"
    )
    print(
        f"  per run: queued->started p50 {p(out['wait_ms'], 0.5):.0f} ms p99 "
        f"{p(out['wait_ms'], 0.99):.0f} ms; started->finished p50 {p(out['run_ms'], 0.5):.0f} "
        f"ms p99 {p(out['run_ms'], 0.99):.0f} ms (median "
        f"{statistics.median(out['run_ms']):.0f} ms); queued->received p50 "
        f"{p(out['received_ms'], 0.5):.0f} ms p99 {p(out['received_ms'], 0.99):.0f} ms"
    )
    attempts = ", ".join(f"{k}: {v}" for k, v in sorted(out["attempts"].items()))
    print(f"  attempts per run {{{attempts}}}; {out['requests']} requests to /d/*")
    duplicates = out["repeated_keys"] + out["repeated_paths"] + out["extra_runs"] + out["both"]
    print(
        f"  duplicates: {duplicates} ({out['repeated_keys']} repeated Idempotency-Keys, "
        f"{out['repeated_paths']} deliveries that received more than one request, "
        f"{out['extra_runs']} extra runs, {out['both']} queued by both ticks)"
    )
    print(f"  {cpu_line(out['cpu'], out['cpu_wall'])}")
    print(
        f"  emulator requests per delivery (ticks + run + polling every {args.poll} s): "
        f"{out['moto']['dynamodb'] / count:.1f} DynamoDB, {out['moto']['s3'] / count:.1f} S3"
    )
    print(f"  setup: {count} createDelivery in {out['create_s']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000, help="deliveries due together")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--poll", type=float, default=0.2, help="completion poll interval (s)")
    parser.add_argument("--concurrency", type=int, default=8, help="creates in flight (setup)")
    parser.add_argument("--sandbox-slots", type=int, default=2, help="per worker")
    parser.add_argument("--tick-child", metavar="AT", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs and data")
    args = parser.parse_args()
    if args.tick_child:
        tick_child(args.tick_child)
        return
    args.worker_env = {**PRODUCTION, **DEV, "TILEGRAPH_SANDBOX_SLOTS": str(args.sandbox_slots)}

    print(f"start: {load_line()}", flush=True)
    load_before = os.getloadavg()
    receiver = TimedReceiver().start()
    try:
        with work_dir("bench_deliveries_", args.keep) as work, admin_stack(work) as stack:
            server = stack.start_api(env={**QUIET_API, **DEV})
            out = asyncio.run(drive(stack, server, receiver, args))
    finally:
        receiver.stop()
    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores; load average {load_before[0]:.2f} -> {load_after[0]:.2f}; "
        "one API process, workers as stated, the moto emulator and a private redis-server"
    )
    report(out, args)
    if out["problems"]:
        print("\nFAILED: " + "; ".join(out["problems"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
