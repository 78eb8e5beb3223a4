"""Dashboards through the product, beside a naive baseline measured in the same run.

(a) The dashboard page query (owner, every card with its owner and datasets and their owners,
shares with user/group/sharedBy, filter views with owners) at 1, 10 and 100 cards: DynamoDB
requests (``extensions.dynamodbRequests``, the API runs with TILEGRAPH_REPORT_DB_REQUESTS=1)
and the median HTTP round trip, beside the *naive* resolution of the same data in this
process: one repository get per reference, no loaders, no de-duplication, siblings resolved
concurrently as graphql-core would (``asyncio.gather``), counted with ``RequestCounter``.
The naive figures leave out what the API does around the data (HTTP, JWT, GraphQL parsing,
the permission check); the floor line (``dashboard(id) { id }``) shows that part.
(b) ``executeDashboard`` for 20 different groupby cards over a 1M-row x 6-column dataset
(imported through the API): time from sending the mutation until every execution is seen
SUCCEEDED over ``Subscription.cardExecution`` (all followed concurrently over one WebSocket),
cold (``useCache: false``) and cached (``useCache: true`` right after); one worker with
TILEGRAPH_SANDBOX_SLOTS=2.

    .venv/bin/python bench/bench_dashboards.py [--repeats 30] [--rows 1000000] [--runs 3]
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

from tests.support.client import Api  # noqa: E402

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

PAGE = """query($id: ID!) { dashboard(id: $id) {
  owner { email }
  layout { items { card { owner { email } datasets { name owner { email } } } } }
  shares { user { email } group { name } sharedBy { email } }
  filterViews { owner { email } } } }"""
FLOOR = "query($id: ID!) { dashboard(id: $id) { id } }"
CREATE_CARD = "mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }"
CREATE_DASHBOARD = """mutation($i: CreateDashboardInput!) { createDashboard(input: $i) {
  dashboard { id } } }"""
SHARE = """mutation($i: ShareDashboardInput!) { shareDashboard(input: $i) { share { id } } }"""
CREATE_GROUP = "mutation($n: String!) { createGroup(input: {name: $n}) { group { id name } } }"
ADD_MEMBER = """mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) {
  group { id } } }"""
CREATE_VIEW = """mutation($i: CreateFilterViewInput!) { createFilterView(input: $i) {
  filterView { id } } }"""
EXECUTE = """mutation($id: ID!, $cache: Boolean!) { executeDashboard(input: {id: $id,
  useCache: $cache}) { executions { id status queuedAt finishedAt
  result { cached executionTimeMs } } } }"""
FOLLOW = """subscription($id: ID!) { cardExecution(id: $id) { id status queuedAt startedAt
  finishedAt result { cached executionTimeMs html } error { code message } } }"""

TINY = b"region,amount\nnorth,1\nsouth,2\nnorth,3\n"
COUNT = "def render(dataset, filters, params):\n    return str(len(dataset))\n"


# --------------------------------------------------------------------------- (a) page query


async def build_pages(
    api: Api, admin: str, sizes: list[int], n_datasets: int
) -> tuple[dict[str, str], dict[int, str]]:
    """An owner with `n_datasets` datasets and max(sizes) cards spread over them; per size a
    dashboard with a USER share, a GROUP share and a shared filter view."""
    owner = await create_user(api, admin, "dash-owner")
    viewer = await create_user(api, admin, "dash-viewer")
    group = (await api.ok(CREATE_GROUP, {"n": f"viewers-{owner['id'][-6:]}"}, token=admin))[
        "createGroup"
    ]["group"]
    await api.ok(ADD_MEMBER, {"g": group["id"], "u": viewer["id"]}, token=admin)
    datasets = []
    async with Subscriptions.open(api, owner["token"]) as subs:
        for n in range(n_datasets):
            final = await upload_csv(api, owner["token"], subs, f"page-data-{n}", TINY)
            datasets.append(final["dataset"]["id"])
    cards = await bounded(
        8,
        [
            api.ok(
                CREATE_CARD,
                {
                    "i": {
                        "name": f"card {i}",
                        "code": COUNT,
                        "datasetIds": [datasets[i % n_datasets]],
                    }
                },
                token=owner["token"],
            )
            for i in range(max(sizes))
        ],
    )
    card_ids = [c["createCard"]["card"]["id"] for c in cards]
    dashboards = {}
    for size in sizes:
        items = [
            {"cardId": c, "x": (i % 2) * 6, "y": (i // 2) * 2, "w": 6, "h": 2}
            for i, c in enumerate(card_ids[:size])
        ]
        data = await api.ok(
            CREATE_DASHBOARD,
            {"i": {"name": f"page of {size}", "layout": {"items": items}}},
            token=owner["token"],
        )
        dash_id = data["createDashboard"]["dashboard"]["id"]
        for target_type, target in (("USER", viewer["id"]), ("GROUP", group["id"])):
            share = {"dashboardId": dash_id, "targetType": target_type, "targetId": target}
            await api.ok(SHARE, {"i": {**share, "permission": "VIEWER"}}, token=owner["token"])
        view = {"dashboardId": dash_id, "name": "shared view", "filterState": {}, "isShared": True}
        await api.ok(CREATE_VIEW, {"i": view}, token=owner["token"])
        dashboards[size] = dash_id
    return owner, dashboards


async def api_page(api: Api, token: str, query: str, dash_id: str) -> tuple[float, int, Any]:
    """(round trip ms, DynamoDB requests, data) of one query over HTTP."""
    started = time.perf_counter()
    response = await api.post(query, {"id": dash_id}, token=token)
    elapsed = (time.perf_counter() - started) * 1000
    if response.errors:
        raise RuntimeError(f"query failed: {response.errors}")
    return elapsed, int(response.body["extensions"]["dynamodbRequests"]), response.data


async def naive_page(services: Any, dash_id: str, viewer_id: str) -> dict[str, Any]:
    """The page's data with one repository get per reference (plus the two list queries the
    data model needs: shares and filter views of the dashboard), no loaders, no caching."""
    repos = services.repos

    async def user(user_id: str) -> dict[str, Any]:
        record = await repos.users.get(user_id)
        return {"email": record.email}

    async def dataset(dataset_id: str) -> dict[str, Any]:
        record = await repos.datasets.get(dataset_id)
        return {"name": record.name, "owner": await user(record.owner_id)}

    async def card(card_id: str) -> dict[str, Any]:
        record = await repos.cards.get(card_id)
        owner, datasets = await asyncio.gather(
            user(record.owner_id), asyncio.gather(*(dataset(d) for d in record.dataset_ids))
        )
        return {"card": {"owner": owner, "datasets": list(datasets)}}

    async def group(group_id: str) -> dict[str, Any]:
        record = await repos.groups.get(group_id)
        return {"name": record.name}

    async def share(record: Any) -> dict[str, Any]:
        is_user = record.target_type.value == "USER"
        target, shared_by = await asyncio.gather(
            user(record.target_id) if is_user else group(record.target_id), user(record.shared_by)
        )
        return {
            "user": target if is_user else None,
            "group": None if is_user else target,
            "sharedBy": shared_by,
        }

    async def shares() -> list[dict[str, Any]]:
        found = sorted(await repos.dashboards.shares_of(dash_id), key=lambda s: s.created_at)
        return list(await asyncio.gather(*(share(s) for s in found)))

    async def views() -> list[dict[str, Any]]:
        found = await repos.dashboards.views_of(dash_id)
        visible = sorted(
            (v for v in found if v.owner_id == viewer_id or v.is_shared),
            key=lambda v: v.created_at,
        )
        return [{"owner": o} for o in await asyncio.gather(*(user(v.owner_id) for v in visible))]

    dashboard = await repos.dashboards.get(dash_id)
    owner, items, share_list, view_list = await asyncio.gather(
        user(dashboard.owner_id),
        asyncio.gather(*(card(i.card_id) for i in dashboard.layout.items)),
        shares(),
        views(),
    )
    return {
        "dashboard": {
            "owner": owner,
            "layout": {"items": list(items)},
            "shares": share_list,
            "filterViews": view_list,
        }
    }


async def timed_naive(services: Any, dash_id: str, viewer_id: str) -> tuple[float, int, Any]:
    from tilegraph.store.counting import RequestCounter

    counter = RequestCounter()
    token = counter.bind()
    try:
        started = time.perf_counter()
        data = await naive_page(services, dash_id, viewer_id)
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        RequestCounter.unbind(token)
    return elapsed, counter.dynamodb, data


async def part_a(
    api: Api, admin: str, env: dict[str, str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    sizes = [int(s) for s in args.sizes.split(",")]
    owner, dashboards = await build_pages(api, admin, sizes, args.datasets)
    print(f"  (a) {max(sizes)} cards on {args.datasets} datasets, {len(sizes)} dashboards ready")
    services = await Services.open(Settings.from_env(env))
    rows = []
    try:
        for size in sizes:
            dash_id = dashboards[size]
            _, _, api_data = await api_page(api, owner["token"], PAGE, dash_id)
            _, _, naive_data = await timed_naive(services, dash_id, owner["id"])
            if naive_data != api_data:
                raise RuntimeError(f"naive data differs from the API's at {size} cards")
            if len(api_data["dashboard"]["layout"]["items"]) != size:
                raise RuntimeError(f"expected {size} cards: {api_data}")
            for _ in range(args.warmup):
                await api_page(api, owner["token"], PAGE, dash_id)
                await timed_naive(services, dash_id, owner["id"])
            ours: list[float] = []
            naive: list[float] = []
            floor: list[float] = []
            counts: dict[str, set[int]] = {"ours_n": set(), "naive_n": set(), "floor_n": set()}
            for _ in range(args.repeats):  # interleaved, so load bursts hit all three
                ms, n, _ = await api_page(api, owner["token"], PAGE, dash_id)
                ours.append(ms)
                counts["ours_n"].add(n)
                ms, n, _ = await timed_naive(services, dash_id, owner["id"])
                naive.append(ms)
                counts["naive_n"].add(n)
                ms, n, _ = await api_page(api, owner["token"], FLOOR, dash_id)
                floor.append(ms)
                counts["floor_n"].add(n)
            rows.append({"size": size, "ours": ours, "naive": naive, "floor": floor, **counts})
            print(f"  (a) {size} cards: {args.repeats} repeats done", flush=True)
    finally:
        await services.close()
    return rows


def report_a(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\n(a) dashboard page query, owner's token; median of {args.repeats} repeats "
        f"(after {args.warmup} warm-up); cards spread over {args.datasets} datasets; "
        "1 user share + 1 group share + 1 shared filter view"
    )
    header = (
        f"{'cards':>6}{'req loaders':>13}{'req naive':>11}{'ratio':>8}"
        f"{'ms loaders':>12}{'ms naive':>10}{'ratio':>8}{'p95 loaders':>13}{'p95 naive':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ours_n = "/".join(str(n) for n in sorted(row["ours_n"]))
        naive_n = "/".join(str(n) for n in sorted(row["naive_n"]))
        ratio_n = max(row["naive_n"]) / max(row["ours_n"])
        ours_ms, naive_ms = med(row["ours"]), med(row["naive"])
        print(
            f"{row['size']:>6}{ours_n:>13}{naive_n:>11}{ratio_n:>7.1f}x"
            f"{ours_ms:>12.1f}{naive_ms:>10.1f}{naive_ms / ours_ms:>7.2f}x"
            f"{percentile(row['ours'], 0.95):>13.1f}{percentile(row['naive'], 0.95):>11.1f}"
        )
    print(
        "ratio = naive / loaders (>1: loaders better). ms loaders = HTTP round trip to the API "
        "(JWT, GraphQL, permission check, JSON included); ms naive = the bare repository calls "
        "in this process (none of that)"
    )
    for row in rows:
        floor_n = "/".join(str(n) for n in sorted(row["floor_n"]))
        print(
            f"  floor at {row['size']:>3} cards: `dashboard(id) {{ id }}` {floor_n} requests, "
            f"median {med(row['floor']):.1f} ms over HTTP -> the page's data costs "
            f"{med(row['ours']) - med(row['floor']):.1f} ms above it"
        )


# --------------------------------------------------------------------------- (b) executeDashboard

KEYS = ("region", "category", "channel")
AGGREGATES = (
    ("amount", "sum"),
    ("amount", "mean"),
    ("quantity", "sum"),
    ("amount", "max"),
    ("quantity", "mean"),
    ("amount", "std"),
    ("quantity", "max"),
)


def card_codes(count: int) -> list[tuple[str, str]]:
    """`count` different groupby cards (name, code): every key with every aggregate, then
    row counts per key; each returns a small HTML table and declares the columns it used
    (``HTMLResult.used_columns``), so runs after the first read only those."""
    codes = []
    for column, how in AGGREGATES:
        for key in KEYS:
            body = f'dataset.groupby("{key}")["{column}"].{how}().round(3).to_frame()'
            codes.append((f"{how} of {column} by {key}", body, [key, column]))
    for key in KEYS:
        body = f'dataset.groupby("{key}").size().to_frame("rows")'
        codes.append((f"rows by {key}", body, [key]))
    if count > len(codes):
        raise SystemExit(f"at most {len(codes)} different cards")
    return [
        (
            name,
            "def render(dataset, filters, params):\n"
            f"    return HTMLResult(html={body}.to_html(), used_columns={used!r})\n",
        )
        for name, body, used in codes[:count]
    ]


def big_csv(path: Path, rows: int, seed: int = 7) -> None:
    """`rows` x 6 columns (3 strings, a float, an int, a date), written in blocks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    values = {
        "region": pa.array(["north", "south", "east", "west", "centre", "islands", "coast"]),
        "category": pa.array(["A", "B", "C", "D", "E"]),
        "channel": pa.array(["web", "store", "phone", "partner"]),
    }
    block = 250_000
    writer = None
    try:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            table = pa.table(
                {
                    **{k: v.take(pa.array(rng.integers(0, len(v), n))) for k, v in values.items()},
                    "amount": pa.array(np.round(rng.random(n) * 1000, 2)),
                    "quantity": pa.array(rng.integers(0, 500, n)),
                    "day": pa.array(rng.integers(19_000, 20_000, n).astype("datetime64[D]")),
                }
            )
            if writer is None:
                writer = pcsv.CSVWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


async def run_dashboard(
    api: Api, token: str, subs: Subscriptions, dash_id: str, use_cache: bool
) -> dict[str, Any]:
    """One executeDashboard, every execution followed to its end; client-side times."""
    started = time.perf_counter()
    response = await api.post(EXECUTE, {"id": dash_id, "cache": use_cache}, token=token)
    returned = time.perf_counter()
    if response.errors:
        raise RuntimeError(f"executeDashboard failed: {response.errors}")
    executions = response.data["executeDashboard"]["executions"]
    pending = [e for e in executions if e["status"] not in ("SUCCEEDED", "FAILED", "CANCELLED")]
    followed = await asyncio.gather(
        *(subs.follow(FOLLOW, {"id": e["id"]}, "cardExecution", 300) for e in pending)
    )
    finals = {e["id"]: e for e in executions}
    seen = [returned]
    for state, at in followed:
        finals[state["id"]] = state
        seen.append(at)
    failed = [f for f in finals.values() if f["status"] != "SUCCEEDED"]
    if failed:
        raise RuntimeError(f"{len(failed)} card run(s) did not succeed: {failed[0]}")
    states = list(finals.values())
    ran = [state for state, _ in followed if not state["result"]["cached"]]
    return {
        "total_ms": (max(seen) - started) * 1000,
        "mutation_ms": (returned - started) * 1000,
        "requests": int(response.body["extensions"]["dynamodbRequests"]),
        "cached": sum(bool(s["result"]["cached"]) for s in states),
        "count": len(states),
        "followed": len(pending),
        "span_ms": ms_between(
            min(s["queuedAt"] for s in states), max(s["finishedAt"] for s in states)
        ),
        "sandbox_ms": sum(s["result"]["executionTimeMs"] for s in ran),
        "queue_ms": [ms_between(s["queuedAt"], s["startedAt"]) for s in ran],
    }


async def part_b(
    api: Api, admin: str, work: Path, args: argparse.Namespace, trees: dict[str, list[int]]
) -> dict[str, Any]:
    owner = await create_user(api, admin, "exec-owner")
    async with Subscriptions.open(api, owner["token"]) as subs:
        return await execute_dashboards(api, owner, subs, work, args, trees)


async def execute_dashboards(
    api: Api,
    owner: dict[str, str],
    subs: Subscriptions,
    work: Path,
    args: argparse.Namespace,
    trees: dict[str, list[int]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    path = work / "big.csv"
    started = time.perf_counter()
    big_csv(path, args.rows)
    out["gen_s"] = time.perf_counter() - started
    out["csv_mb"] = path.stat().st_size / 1e6
    started = time.perf_counter()
    final = await upload_csv(api, owner["token"], subs, "big", path.read_bytes())
    out["import_s"] = time.perf_counter() - started
    path.unlink()
    dataset = final["dataset"]
    out["rows"], out["columns"] = dataset["rowCount"], dataset["columnCount"]
    print(
        f"  (b) {out['csv_mb']:.0f} MB CSV generated in {out['gen_s']:.1f} s, uploaded and "
        f"imported in {out['import_s']:.1f} s",
        flush=True,
    )
    cards = [
        (
            await api.ok(
                CREATE_CARD,
                {"i": {"name": name, "code": code, "datasetIds": [dataset["id"]]}},
                token=owner["token"],
            )
        )["createCard"]["card"]["id"]
        for name, code in card_codes(args.cards)
    ]
    items = [
        {"cardId": c, "x": (i % 3) * 4, "y": (i // 3) * 3, "w": 4, "h": 3}
        for i, c in enumerate(cards)
    ]
    dash = await api.ok(
        CREATE_DASHBOARD,
        {"i": {"name": "twenty cards", "layout": {"items": items}}},
        token=owner["token"],
    )
    dash_id = dash["createDashboard"]["dashboard"]["id"]
    # The first run of a card reads every column; it learns which ones the code used, and
    # later runs read only those.
    out["first"] = await run_dashboard(api, owner["token"], subs, dash_id, use_cache=False)
    print(f"  (b) first run (learning columns): {out['first']['total_ms']:.0f} ms", flush=True)
    out["cold"], out["cached"] = [], []
    for n in range(args.runs):
        meter, emulator = CpuMeter(trees), EmulatorLog(args.emulator_log)
        cold = await run_dashboard(api, owner["token"], subs, dash_id, use_cache=False)
        cold["cpu"], cold["moto"] = meter.spent(), emulator.counts()
        cached = await run_dashboard(api, owner["token"], subs, dash_id, use_cache=True)
        if cold["cached"] or cached["cached"] != cached["count"]:
            raise RuntimeError(f"unexpected cache use: cold {cold}, cached {cached}")
        out["cold"].append(cold)
        out["cached"].append(cached)
        print(
            f"  (b) run {n + 1}: cold {cold['total_ms']:.0f} ms, cached "
            f"{cached['total_ms']:.1f} ms",
            flush=True,
        )
    learned = await api.ok(
        "query($id: ID!) { card(id: $id) { usedColumns } }", {"id": cards[0]}, token=owner["token"]
    )
    out["alone"] = await card_alone(
        args.env, dataset, card_codes(1)[0], learned["card"]["usedColumns"], args.alone_runs
    )
    return out


async def card_alone(
    env: dict[str, str],
    dataset: dict[str, Any],
    card: tuple[str, str],
    columns: list[str],
    runs: int,
) -> dict[str, Any]:
    """The first card's pieces in this process, with the worker idle: the Parquet scan of its
    learned columns from the emulator, ``Sandbox.run`` of it on that table (bwrap, 1 slot),
    and the same code with plain pandas (``to_pandas`` + render), no sandbox."""
    import pyarrow as pa

    from tilegraph.domain.datasets import data_prefix
    from tilegraph.executor import CARD_LIMITS, CardJob, Sandbox
    from tilegraph.settings import Settings
    from tilegraph.store.parquet import ParquetReader

    reader = ParquetReader(Settings.from_env(env))
    prefix = data_prefix(dataset["id"], dataset["version"])

    def scan() -> pa.Table:
        return reader.dataset(prefix).to_table(columns=columns)

    def plain(table: pa.Table) -> str:
        namespace: dict[str, Any] = {"HTMLResult": lambda html, used_columns: html}
        exec(card[1], namespace)
        return str(namespace["render"](table.to_pandas(), [], None))

    out: dict[str, Any] = {"name": card[0], "columns": columns}
    table = await asyncio.to_thread(scan)  # opens the filesystem
    out["scan_ms"], out["plain_ms"], out["sandbox_ms"] = [], [], []
    sandbox = Sandbox(mode="bwrap", slots=1)
    await sandbox.start()
    try:
        job = CardJob(code=card[1], params=None, filters=[], inputs=[table])
        for n in range(runs + 1):  # the first of each is a warm-up
            started = time.perf_counter()
            table = await asyncio.to_thread(scan)
            scanned = time.perf_counter()
            plain(table)
            done = time.perf_counter()
            result = await sandbox.run(job, CARD_LIMITS)
            if result.error is not None:
                raise RuntimeError(f"sandbox run failed: {result.error}")
            if n:
                out["scan_ms"].append((scanned - started) * 1000)
                out["plain_ms"].append((done - scanned) * 1000)
                out["sandbox_ms"].append((time.perf_counter() - done) * 1000)
    finally:
        await sandbox.close()
    return out


def report_b(out: dict[str, Any], args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\n(b) executeDashboard, {args.cards} groupby cards over {out['rows']:,} rows x "
        f"{out['columns']} columns ({out['csv_mb']:.0f} MB CSV, upload + import "
        f"{out['import_s']:.1f} s); one worker, 2 sandbox slots; all executions followed "
        "over one WebSocket; medians of "
        f"{args.runs} run(s)"
    )
    header = (
        f"{'run':<38}{'n':>3}{'total ms':>10}{'mutation ms':>13}{'server span ms':>16}"
        f"{'sandbox ms':>12}{'DynamoDB req':>14}"
    )
    print(header)
    print("-" * len(header))

    def line(label: str, runs: list[dict[str, Any]]) -> None:
        print(
            f"{label:<38}{len(runs):>3}{med(r['total_ms'] for r in runs):>10.1f}"
            f"{med(r['mutation_ms'] for r in runs):>13.1f}{med(r['span_ms'] for r in runs):>16.1f}"
            f"{med(r['sandbox_ms'] for r in runs):>12.1f}"
            f"{'/'.join(str(n) for n in sorted({r['requests'] for r in runs})):>14}"
        )

    line("first run (all columns read)", [out["first"]])
    line("cold (useCache: false)", out["cold"])
    line("cached (useCache: true, right after)", out["cached"])
    cold, cached = (
        med(r["total_ms"] for r in out["cold"]),
        med(r["total_ms"] for r in out["cached"]),
    )
    waits = [w for r in out["cold"] for w in r["queue_ms"]]
    print(
        "total = mutation sent -> last SUCCEEDED seen; server span = first queuedAt -> last "
        "finishedAt; sandbox = sum of executionTimeMs (cards' own run time, 2 at a time); "
        "DynamoDB req = the mutation's own requests"
    )
    cpu = {k: statistics.fmean(r["cpu"][k] for r in out["cold"]) for k in out["cold"][0]["cpu"]}
    print(f"per cold run (mean), {cpu_line(cpu, cold / 1000)}")
    moto = {k: statistics.fmean(r["moto"][k] for r in out["cold"]) for k in ("dynamodb", "s3")}
    print(
        f"emulator requests per cold run (mean): {moto['dynamodb']:.0f} DynamoDB, "
        f"{moto['s3']:.0f} S3 = per card {moto['dynamodb'] / args.cards:.1f} DynamoDB, "
        f"{moto['s3'] / args.cards:.1f} S3 (mutation, runs, subscriptions)"
    )
    alone = out["alone"]
    print(
        f"one card alone ({alone['name']!r}, learned columns {alone['columns']}), medians of "
        f"{len(alone['scan_ms'])} in this process with the worker idle: Parquet scan "
        f"{med(alone['scan_ms']):.0f} ms; Sandbox.run (bwrap) {med(alone['sandbox_ms']):.0f} ms; "
        f"the same code without sandbox (to_pandas + render) {med(alone['plain_ms']):.0f} ms"
    )
    print(
        f"ratio cold / cached = {cold / cached:.1f}x; first / cold = "
        f"{out['first']['total_ms'] / cold:.2f}x; cold queuedAt -> startedAt over all cards: "
        f"p50 {percentile(waits, 0.5):.0f} ms, max {max(waits):.0f} ms; "
        f"cold per card = {cold / args.cards:.0f} ms"
    )


# --------------------------------------------------------------------------- main


async def drive(
    server: Any,
    env: dict[str, str],
    work: Path,
    args: argparse.Namespace,
    trees: dict[str, list[int]],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    api = await open_api(server.url, server.ws_url)
    try:
        admin = await api.login(*ADMIN)
        rows = await part_a(api, admin, env, args) if args.part in ("a", "all") else []
        out = await part_b(api, admin, work, args, trees) if args.part in ("b", "all") else None
    finally:
        await api.close()
    return rows, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("a", "b", "all"), default="all")
    parser.add_argument("--sizes", default="1,10,100", help="cards per dashboard, for (a)")
    parser.add_argument("--datasets", type=int, default=4, help="datasets the cards use, (a)")
    parser.add_argument("--repeats", type=int, default=30, help="measured queries per size, (a)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured queries first, (a)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the dataset, (b)")
    parser.add_argument("--cards", type=int, default=20, help="cards on the dashboard, (b)")
    parser.add_argument("--runs", type=int, default=3, help="cold + cached pairs, (b)")
    parser.add_argument("--alone-runs", type=int, default=5, help="one card's pieces, (b)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs and data")
    args = parser.parse_args()

    print(f"start: {load_line()}", flush=True)
    load_before = os.getloadavg()
    with work_dir("bench_dashboards_", args.keep) as work, admin_stack(work) as stack:
        server = stack.start_api(env={**QUIET_API, "TILEGRAPH_REPORT_DB_REQUESTS": "1"})
        worker = stack.start_worker(env={**PRODUCTION, "TILEGRAPH_SANDBOX_SLOTS": "2"})
        trees = {"worker": [worker.pid], **stack_trees(stack, server), "bench": [0]}
        args.emulator_log = stack.workdir / "aws-emulator.log"
        args.env = stack.env
        rows, out = asyncio.run(drive(server, stack.env, work, args, trees))
    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores; load average {load_before[0]:.2f} -> {load_after[0]:.2f}; "
        "one API process and one worker against the moto emulator and a private redis-server"
    )
    if rows:
        report_a(rows, args)
    if out is not None:
        report_b(out, args)


if __name__ == "__main__":
    main()
