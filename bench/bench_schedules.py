"""Scheduled transforms: one scheduler tick that finds 1,000 transforms due in the same minute,
and the enqueue -> start latency of runs, through the real stack.

(i) Burst: 1,000 transforms (``result = df_0`` over one small dataset, cron ``0 0 1 1 *``,
created through the API: setup, not measured). One ``schedule_tick`` as of 30 s past their
next run, in a child process (``bench_schedules.py --tick-child``: the same work as
``tilegraph schedule-tick --at``, with the tick itself timed), while 1 (then 2) workers run
what it queues. Reported: tick start -> all runs queued (the tick's duration), tick start ->
all runs finished (the last ``finished_at``; completion is watched by polling the sparse
``by_active`` index of the runs table), and queuedAt -> startedAt p50/p99 over the runs
(read from DynamoDB after they finished), with the CPU each process spent meanwhile.
(ii) One at a time: ``executeTransform`` with the worker idle, followed to its end over
``Subscription.transformExecution``, then the next, for TILEGRAPH_WORKER_POLL_DELAY_SECONDS
0.5 (arq's default) and 0.01 (ours). A random pause of up to one poll delay before each run
keeps its arrival uncorrelated with the worker's poll cycle. (ii) runs before (i), while the
runs table is small: the emulator's index queries scan the whole table, so every run in it
slows the next ones down.

On this 2-core machine the default (1,000 transforms, one worker) takes ~6 minutes, almost
all of it the burst, which the AWS emulator bounds (see its CPU line). Each burst leaves
1,000 more runs in the table, so a second burst in the same run (``--workers 1,2``) is
slowed by the first; ``--workers 2 --poll-delays ''`` measures 2 workers on a fresh stack.

    .venv/bin/python bench/bench_schedules.py [--transforms 1000] [--workers 1] [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.client import Api  # noqa: E402
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
CODE = "result = df_0\n"
SMALL = b"id,region,amount\n1,north,1.5\n2,south,2.5\n3,east,3.5\n4,west,4.5\n"
CREATE = """mutation($i: CreateTransformInput!) { createTransform(input: $i) { transform {
  id nextRunAt } } }"""
NEXT_RUN = "query($id: ID!) { transform(id: $id) { nextRunAt } }"
EXECUTE = """mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }"""
FOLLOW = """subscription($id: ID!) { transformExecution(id: $id) { id status queuedAt startedAt
  finishedAt durationMs error { code message } } }"""


# --------------------------------------------------------------------------- the tick


def tick_child(at: str) -> None:
    """``--tick-child AT``: one schedule_tick as of AT with this process's TILEGRAPH_* env;
    prints one JSON line (wall-clock start, the tick's own seconds, runs queued)."""
    from tilegraph.domain.clock import from_iso
    from tilegraph.jobs.schedules import schedule_tick
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    async def go() -> dict[str, Any]:
        services = await Services.open(Settings.from_env())
        try:
            start_cpu = time.process_time()
            start_wall = time.time()
            started = time.perf_counter()
            queued = len(await schedule_tick(services, from_iso(at)))
            seconds = time.perf_counter() - started
            tick_cpu = time.process_time() - start_cpu
        finally:
            await services.close()
        return {
            "start": start_wall,
            "seconds": seconds,
            "queued": queued,
            "cpu_before": start_cpu,
            "cpu": tick_cpu,
        }

    print(json.dumps(asyncio.run(go())))


async def scheduled_runs(services: Any, due_iso: str) -> list[dict[str, Any]]:
    """Every run whose due time is `due_iso` (a Scan of the runs table, after the fact)."""
    from tilegraph.store.marshal import from_item

    request: dict[str, Any] = {"TableName": services.settings.table_name("transform_executions")}
    runs = []
    while True:
        page = await services.db.client.scan(**request)
        runs.extend(r for r in map(from_item, page.get("Items", [])) if r.get("due_at") == due_iso)
        if "LastEvaluatedKey" not in page:
            return runs
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def unfinished(services: Any) -> int:
    """QUEUED or RUNNING runs: the size of the sparse `by_active` index (one Query)."""
    from tilegraph.store.dynamo import KeyCondition
    from tilegraph.store.executions import ACTIVE_SHARD

    return await services.db.count(
        "transform_executions", KeyCondition("active_shard", ACTIVE_SHARD), index="by_active"
    )


async def burst(
    services: Any,
    env: dict[str, str],
    next_run: str,
    count: int,
    poll: float,
    trees: dict[str, list[int]],
    log: Path,
) -> dict[str, Any]:
    """One tick as of 30 s past `next_run`; waits until every run it queued has ended."""
    from tilegraph.domain.clock import from_iso, to_iso

    due = from_iso(next_run)
    at = to_iso(due + timedelta(seconds=30))
    meter = CpuMeter(trees)
    emulator = EmulatorLog(log)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--tick-child",
        at,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    communicate = asyncio.ensure_future(child.communicate())
    polls = 0
    while not communicate.done() or await unfinished(services):
        polls += 1
        await asyncio.sleep(poll)
    done_wall = time.time()
    cpu, moto = meter.spent(), emulator.counts()
    stdout, stderr = communicate.result()
    if child.returncode != 0:
        raise RuntimeError(f"tick failed ({child.returncode}):\n{stderr.decode()}")
    tick = json.loads(stdout.decode().strip().splitlines()[-1])
    # The child's start-up (imports, Services.open) ran before the tick and is not counted.
    bench = cpu.pop("bench+tick") - tick["cpu_before"] - tick["cpu"]
    cpu.update({"tick child": tick["cpu"], "bench": bench})
    if tick["queued"] != count:
        raise RuntimeError(f"the tick queued {tick['queued']} runs, expected {count}")
    runs = await scheduled_runs(services, to_iso(due))
    statuses = {r["status"] for r in runs}
    if len(runs) != count or statuses != {"SUCCEEDED"}:
        raise RuntimeError(f"{len(runs)} runs, statuses {statuses}")
    start = datetime.fromtimestamp(tick["start"], UTC)
    since_tick = [(datetime.fromisoformat(r["queued_at"]) - start).total_seconds() for r in runs]
    return {
        "tick_s": tick["seconds"],
        "last_queued_s": max(since_tick),
        "finished_s": max(
            (datetime.fromisoformat(r["finished_at"]) - start).total_seconds() for r in runs
        ),
        "seen_s": done_wall - tick["start"],
        "polls": polls,
        "cpu": cpu,
        "cpu_wall": done_wall - tick["start"],
        "moto": moto,
        "wait_ms": [ms_between(r["queued_at"], r["started_at"]) for r in runs],
        "run_ms": [ms_between(r["started_at"], r["finished_at"]) for r in runs],
        "sandbox_ms": [float(r["duration_ms"]) for r in runs],
    }


# --------------------------------------------------------------------------- one at a time


async def one_at_a_time(
    api: Api, token: str, transform_ids: list[str], jitter: float
) -> dict[str, Any]:
    waits, totals, runs, sandbox = [], [], [], []
    async with Subscriptions.open(api, token) as subs:
        for transform_id in transform_ids:
            await asyncio.sleep(random.uniform(0, jitter))
            started = time.perf_counter()
            data = await api.ok(EXECUTE, {"id": transform_id}, token=token)
            run_id = data["executeTransform"]["execution"]["id"]
            final, seen = await subs.follow(FOLLOW, {"id": run_id}, "transformExecution", 120)
            if final["status"] != "SUCCEEDED":
                raise RuntimeError(f"run ended {final}")
            totals.append((seen - started) * 1000)
            waits.append(ms_between(final["queuedAt"], final["startedAt"]))
            runs.append(ms_between(final["startedAt"], final["finishedAt"]))
            sandbox.append(float(final["durationMs"]))
    return {"wait_ms": waits, "total_ms": totals, "run_ms": runs, "sandbox_ms": sandbox}


# --------------------------------------------------------------------------- main


async def next_run_of(api: Api, token: str, transform_id: str) -> str:
    data = await api.ok(NEXT_RUN, {"id": transform_id}, token=token)
    return str(data["transform"]["nextRunAt"])


async def drive(stack: Stack, server: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tilegraph.local.processes import stop_process
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    out: dict[str, Any] = {"bursts": {}, "single": {}}
    api = await open_api(server.url, server.ws_url)
    services = await Services.open(Settings.from_env(stack.env))
    workers = [stack.start_worker("worker-import", env=args.worker_env)]
    try:
        admin = await api.login(*ADMIN)
        owner = await create_user(api, admin, "tf-owner")
        async with Subscriptions.open(api, owner["token"]) as subs:
            dataset = (await upload_csv(api, owner["token"], subs, "small", SMALL))["dataset"]
        started = time.perf_counter()
        created = await bounded(
            args.concurrency,
            [
                api.ok(
                    CREATE,
                    {
                        "i": {
                            "name": f"tf {n}",
                            "inputDatasetIds": [dataset["id"]],
                            "code": CODE,
                            "scheduleCron": CRON,
                            "scheduleEnabled": True,
                        }
                    },
                    token=owner["token"],
                )
                for n in range(args.transforms)
            ],
        )
        ids = [c["createTransform"]["transform"]["id"] for c in created]
        out["create_s"] = time.perf_counter() - started
        print(
            f"  {len(ids)} transforms created through the API in {out['create_s']:.1f} s "
            f"(setup; {args.concurrency} requests in flight)",
            flush=True,
        )

        # (ii) first, while the runs table is small (the emulator's index queries scan it).
        for process in workers:
            stop_process(process, timeout=15)
        workers.clear()
        singles = ids[: args.runs]
        for delay in args.poll_delays:
            env = {**args.worker_env, "TILEGRAPH_WORKER_POLL_DELAY_SECONDS": str(delay)}
            worker = stack.start_worker(f"worker-poll-{delay}", env=env)
            workers.append(worker)
            await one_at_a_time(api, owner["token"], singles[:3], 0)  # warm the worker up
            jitter = delay if args.jitter is None else args.jitter
            result = await one_at_a_time(api, owner["token"], singles, jitter)
            out["single"][delay] = result
            print(
                f"  poll delay {delay} s: {len(singles)} runs one at a time, queuedAt -> "
                f"startedAt p50 {percentile(result['wait_ms'], 0.5):.0f} ms",
                flush=True,
            )
            stop_process(worker, timeout=15)
            workers.remove(worker)

        for count in args.worker_counts:
            while len(workers) < count:
                workers.append(
                    stack.start_worker(f"worker-{len(workers) + 1}", env=args.worker_env)
                )
            next_run = await next_run_of(api, owner["token"], ids[0])
            print(
                f"  tick as of {next_run} + 30 s with {count} worker(s) ({load_line()})",
                flush=True,
            )
            trees = {
                "workers": [w.pid for w in workers],
                **stack_trees(stack, server),
                "bench+tick": [0],
            }
            log = stack.workdir / "aws-emulator.log"
            result = await burst(services, stack.env, next_run, len(ids), args.poll, trees, log)
            out["bursts"][count] = result
            print(
                f"    queued in {result['tick_s']:.2f} s, all finished "
                f"{result['finished_s']:.1f} s after the tick started",
                flush=True,
            )
    finally:
        for process in workers:
            stop_process(process, timeout=15)
        await services.close()
        await api.close()
    return out


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    if out["bursts"]:
        report_bursts(out["bursts"], args)
    if out["single"]:
        report_singles(out["single"], args)


def report_bursts(bursts: dict[int, dict[str, Any]], args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\n(i) one scheduler tick, {args.transforms} transforms due in the same minute "
        f"(`{CODE.strip()}` over a 4-row dataset; each worker: {args.sandbox_slots} sandbox "
        "slots, TILEGRAPH_WORKER_MAX_JOBS 16, poll delay 0.01 s)"
    )
    header = (
        f"{'workers':>8}{'tick s':>9}{'all done s':>12}{'runs/s':>9}{'wait p50 ms':>13}"
        f"{'wait p99 ms':>13}{'run p50 ms':>12}{'sandbox p50':>13}"
    )
    print(header)
    print("-" * len(header))
    for count, r in bursts.items():
        print(
            f"{count:>8}{r['tick_s']:>9.2f}{r['finished_s']:>12.1f}"
            f"{args.transforms / r['finished_s']:>9.1f}"
            f"{percentile(r['wait_ms'], 0.5):>13.0f}{percentile(r['wait_ms'], 0.99):>13.0f}"
            f"{med(r['run_ms']):>12.0f}{med(r['sandbox_ms']):>13.0f}"
        )
    print(
        "tick s = schedule_tick's own duration (tick start -> all runs queued); all done s = "
        "tick start -> last finishedAt; wait = queuedAt -> startedAt; run = startedAt -> "
        "finishedAt; sandbox = the run's durationMs"
    )
    for count, r in bursts.items():
        print(
            f"  {count} worker(s): last queuedAt {r['last_queued_s']:.2f} s after tick start; "
            f"completion seen by polling {r['seen_s']:.1f} s after it ({r['polls']} polls "
            f"every {args.poll} s)"
        )
        print(f"    {cpu_line(r['cpu'], r['cpu_wall'])}")
        served = r["moto"]["dynamodb"] + r["moto"]["s3"]
        print(
            f"    emulator requests per run (tick + run + polling): "
            f"{r['moto']['dynamodb'] / args.transforms:.1f} DynamoDB, "
            f"{r['moto']['s3'] / args.transforms:.1f} S3; emulator CPU per request "
            f"{r['cpu']['emulator'] / served * 1000:.1f} ms"
        )
    done = [r["finished_s"] for r in bursts.values()]
    if len(done) > 1:
        print(
            f"  first burst / last burst all-done time: {done[0] / done[-1]:.2f}x (later bursts "
            "start with the earlier bursts' runs in the table, and publish version 2+ of outputs)"
        )


def report_singles(singles: dict[float, dict[str, Any]], args: argparse.Namespace) -> None:
    med = statistics.median
    pause = "one poll delay" if args.jitter is None else f"{args.jitter} s"
    print(
        f"\n(ii) {args.runs} runs queued one at a time with the worker idle (executeTransform, "
        f"followed over the subscription; a random pause of 0 to {pause} before each)"
    )
    header = (
        f"{'poll delay s':>13}{'wait p50 ms':>13}{'wait p99 ms':>13}{'wait mean ms':>14}"
        f"{'run p50 ms':>12}{'sandbox p50':>13}{'E2E p50 ms':>12}{'E2E p99 ms':>12}"
    )
    print(header)
    print("-" * len(header))
    for delay, r in singles.items():
        print(
            f"{delay:>13}{percentile(r['wait_ms'], 0.5):>13.1f}"
            f"{percentile(r['wait_ms'], 0.99):>13.1f}{statistics.fmean(r['wait_ms']):>14.1f}"
            f"{med(r['run_ms']):>12.1f}{med(r['sandbox_ms']):>13.1f}"
            f"{percentile(r['total_ms'], 0.5):>12.1f}"
            f"{percentile(r['total_ms'], 0.99):>12.1f}"
        )
    pairs = list(singles.items())
    if len(pairs) == 2:
        (slow, a), (fast, b) = pairs
        print(
            f"  queuedAt -> startedAt p50 ratio {slow} s / {fast} s = "
            f"{percentile(a['wait_ms'], 0.5) / percentile(b['wait_ms'], 0.5):.1f}x; "
            f"E2E (mutation -> SUCCEEDED seen) p50 ratio "
            f"{percentile(a['total_ms'], 0.5) / percentile(b['total_ms'], 0.5):.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transforms", type=int, default=1000, help="transforms due together")
    parser.add_argument("--workers", default="1", help="worker counts for bursts, e.g. 1,2")
    parser.add_argument("--runs", type=int, default=50, help="runs one at a time, per delay")
    parser.add_argument("--poll-delays", default="0.5,0.01", help="worker poll delays (s)")
    parser.add_argument(
        "--jitter", type=float, default=None, help="max pause before a run (s; default: the delay)"
    )
    parser.add_argument("--poll", type=float, default=0.2, help="completion poll interval (s)")
    parser.add_argument("--concurrency", type=int, default=8, help="creates in flight (setup)")
    parser.add_argument("--sandbox-slots", type=int, default=2, help="per worker")
    parser.add_argument("--tick-child", metavar="AT", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs and data")
    args = parser.parse_args()
    if args.tick_child:
        tick_child(args.tick_child)
        return
    args.worker_counts = [int(n) for n in args.workers.split(",") if n]
    args.poll_delays = [float(d) for d in args.poll_delays.split(",") if d]
    if args.poll_delays and args.runs > args.transforms:
        parser.error("--runs cannot exceed --transforms")
    args.worker_env = {**PRODUCTION, "TILEGRAPH_SANDBOX_SLOTS": str(args.sandbox_slots)}

    print(f"start: {load_line()}", flush=True)
    load_before = os.getloadavg()
    with work_dir("bench_schedules_", args.keep) as work, admin_stack(work) as stack:
        server = stack.start_api(env=QUIET_API)
        out = asyncio.run(drive(stack, server, args))
    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores; load average {load_before[0]:.2f} -> {load_after[0]:.2f}; "
        "one API process, workers as stated, the moto emulator and a private redis-server"
    )
    report(out, args)


if __name__ == "__main__":
    main()
