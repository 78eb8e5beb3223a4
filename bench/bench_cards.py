"""Card runs end to end through the product, beside the sandbox alone, in the same run.

(a) Sandbox overhead: p50/p95 of a no-op card over the API (``executeCard`` with
``useCache: false``, until SUCCEEDED arrives over ``Subscription.cardExecution``), beside
``Sandbox.run`` of the same card in this process (bwrap) and a cold
``python -c "import pandas"`` (what a sandbox without a warm zygote would pay).
(b) A card over a 1M-row x 10-column dataset (imported once through the API) with a CATEGORY
filter keeping a quarter of the rows: p50 of cold runs (``useCache: false``) and of cache
hits (``useCache: true`` after a run; a hit completes inside the mutation, so it is timed
from the mutation to the SUCCEEDED state it returns).

    .venv/bin/python bench/bench_cards.py [--runs 100] [--sandbox-runs 200] [--big-runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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
    FOLLOW_IMPORT,
    PRODUCTION,
    QUIET_API,
    admin_stack,
    cold_import_pandas,
    describe,
    ms_between,
    start_upload,
    work_dir,
)

LABEL_WIDTH = 46
NOOP = "def render(dataset, filters, params):\n    return 'ok'\n"
SUMMARY = """def render(dataset, filters, params):
    summary = dataset.groupby("region")[["amount", "quantity"]].sum()
    return f"<p data-rows='{len(dataset)}'>rows</p>" + summary.to_html()
"""
CATEGORIES = ["A", "B", "C", "D"]

CREATE = """mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }"""
EXECUTE = """mutation($i: ExecuteCardInput!) { executeCard(input: $i) { execution {
  id status queuedAt startedAt finishedAt result { cached html executionTimeMs } } } }"""
FOLLOW = """subscription($id: ID!) { cardExecution(id: $id) { id status
  queuedAt startedAt finishedAt result { cached html executionTimeMs } error { code message } }
}"""


# --------------------------------------------------------------------------- figures


def breakdown(samples: list[float], results: list[dict[str, Any]]) -> str:
    """Where the p50 of an end-to-end run goes, from the execution's own timestamps."""
    queue = [ms_between(r["queuedAt"], r["startedAt"]) for r in results]
    run = [ms_between(r["startedAt"], r["finishedAt"]) for r in results]
    sandbox = [r["result"]["executionTimeMs"] for r in results]
    rest = [total - (q + w) for total, q, w in zip(samples, queue, run, strict=True)]
    med = statistics.median
    return (
        f"  p50 split: queuedAt->startedAt {med(queue):.1f} ms; startedAt->finishedAt "
        f"{med(run):.1f} ms (sandbox {med(sandbox):.1f} ms of it); client time outside "
        f"queuedAt..finishedAt {med(rest):.1f} ms (mutation before queuedAt, publish, delivery)"
    )


# --------------------------------------------------------------------------- data


def small_csv() -> bytes:
    return b"id,category,amount\n1,A,1.5\n2,B,2.5\n3,C,3.5\n"


def big_csv(path: Path, rows: int, seed: int = 5) -> None:
    """``rows`` x 10 columns (int, float, string, date, bool); ``category`` has 4 values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    regions = pa.array(["north", "south", "east", "west", "centre", "islands"])
    table = pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "category": pa.array(CATEGORIES).take(pa.array(rng.integers(0, 4, rows))),
            "region": regions.take(pa.array(rng.integers(0, len(regions), rows))),
            "amount": pa.array(np.round(rng.random(rows) * 1000, 2)),
            "quantity": pa.array(rng.integers(0, 1000, rows)),
            "score": pa.array(rng.standard_normal(rows)),
            "ratio": pa.array(rng.random(rows)),
            "day": pa.array(rng.integers(18_000, 20_000, rows).astype("datetime64[D]")),
            "active": pa.array(rng.random(rows) < 0.5),
            "label": pc.binary_join_element_wise(
                "item", pc.cast(pa.array(rng.integers(0, 10**6, rows)), pa.string()), "-"
            ),
        }
    )
    pcsv.write_csv(table, str(path))


# --------------------------------------------------------------------------- the API


class Client:
    """One login and one WebSocket, reused by every run (as a browser tab would)."""

    def __init__(self, api: Api, token: str, session: Any) -> None:
        self.api = api
        self.token = token
        self.session = session

    async def upload(self, name: str, content: bytes) -> dict[str, Any]:
        """Upload, then follow the import over this client's WebSocket; the final state."""
        import_id = await start_upload(self.api, self.token, name, content, wait_s=600)
        op = await self.session.subscribe(FOLLOW_IMPORT, {"id": import_id})
        final: dict[str, Any] = {}
        async for payload in self.session.messages(op, timeout=600):
            final = payload["data"]["datasetImport"] if payload.get("data") else payload
        if final.get("status") != "SUCCEEDED":
            raise RuntimeError(f"import ended {final}")
        return final

    async def create_card(self, name: str, code: str, dataset_id: str) -> str:
        data = await self.api.ok(
            CREATE,
            {"i": {"name": name, "code": code, "datasetIds": [dataset_id]}},
            token=self.token,
        )
        return str(data["createCard"]["card"]["id"])

    async def run(
        self,
        card_id: str,
        *,
        use_cache: bool,
        filters: list[dict[str, Any]] | None = None,
        dashboard_id: str | None = None,
    ) -> tuple[float, dict[str, Any]]:
        """Milliseconds from sending the mutation to holding the SUCCEEDED state; with
        `dashboard_id`, the card is run through that dashboard (as its readers run it)."""
        started = time.perf_counter()
        run: dict[str, Any] = {"id": card_id, "useCache": use_cache, "filters": filters or []}
        if dashboard_id is not None:
            run["dashboardId"] = dashboard_id
        data = await self.api.ok(EXECUTE, {"i": run}, token=self.token)
        execution = data["executeCard"]["execution"]
        mutation_ms = (time.perf_counter() - started) * 1000
        if execution["status"] != "SUCCEEDED":
            op = await self.session.subscribe(FOLLOW, {"id": execution["id"]})
            async for payload in self.session.messages(op, timeout=120):
                if not payload.get("data"):
                    raise RuntimeError(f"subscription error: {payload}")
                execution = payload["data"]["cardExecution"]
                if execution["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    break
        elapsed = (time.perf_counter() - started) * 1000
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"card run ended {execution}")
        return elapsed, {**execution, "mutationMs": mutation_ms}


async def timed_card_runs(
    client: Client,
    card_id: str,
    warmup: int,
    runs: int,
    *,
    use_cache: bool,
    filters: list[dict[str, Any]] | None = None,
) -> tuple[list[float], list[dict[str, Any]]]:
    for _ in range(warmup):
        await client.run(card_id, use_cache=use_cache, filters=filters)
    samples, results = [], []
    for _ in range(runs):
        elapsed, execution = await client.run(card_id, use_cache=use_cache, filters=filters)
        if execution["result"]["cached"] != use_cache:
            raise RuntimeError(f"expected cached={use_cache}: {execution['result']}")
        samples.append(elapsed)
        results.append(execution)
    return samples, results


# --------------------------------------------------------------------------- the sandbox alone


async def sandbox_alone(runs: int, warmup: int) -> tuple[list[float], float]:
    """``Sandbox.run`` of the no-op card over the same 3-row table, bwrap, in this process."""
    import pyarrow as pa

    from tilegraph.executor import CARD_LIMITS, CardJob, Sandbox

    table = pa.table({"id": [1, 2, 3], "category": ["A", "B", "C"], "amount": [1.5, 2.5, 3.5]})
    job = CardJob(code=NOOP, params=None, filters=[], inputs=[table])
    sandbox = Sandbox(mode="bwrap", slots=os.cpu_count() or 1)
    started = time.perf_counter()
    await sandbox.start()
    zygote_ms = (time.perf_counter() - started) * 1000
    samples = []
    try:
        for n in range(warmup + runs):
            started = time.perf_counter()
            result = await sandbox.run(job, CARD_LIMITS)
            elapsed = (time.perf_counter() - started) * 1000
            if result.error is not None or result.output is None:
                raise RuntimeError(f"sandbox run failed: {result.error}")
            if n >= warmup:
                samples.append(elapsed)
    finally:
        await sandbox.close()
    return samples, zygote_ms


def parquet_scan_alone(
    env: dict[str, str], dataset: dict[str, Any], column: str, values: list[str], runs: int
) -> list[float]:
    """What the worker does before the sandbox, in this process: the filtered Parquet scan of
    the published version from the S3 emulator (``ParquetReader`` + ``filter_expression``)."""
    from tilegraph.domain.datasets import data_prefix
    from tilegraph.domain.filters import ColumnFilter, resolve_filters
    from tilegraph.settings import Settings
    from tilegraph.store.parquet import ParquetReader, filter_expression

    reader = ParquetReader(Settings.from_env(env))
    resolved, _ = resolve_filters([ColumnFilter(column, values=tuple(values))], {column: "STRING"})
    samples = []
    for n in range(runs + 1):
        started = time.perf_counter()
        scan = reader.dataset(data_prefix(dataset["id"], dataset["version"]))
        scan.to_table(filter=filter_expression(resolved, scan.schema))
        if n:  # the first one opens the filesystem
            samples.append((time.perf_counter() - started) * 1000)
    return samples


# --------------------------------------------------------------------------- main


async def api_part(
    api_url: str, ws_url: str, args: argparse.Namespace, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    api = Api(api_url, ws_url)
    out: dict[str, Any] = {}
    try:
        token = await api.login(*ADMIN)
        async with api.websocket({"authorization": f"Bearer {token}"}) as session:
            ack = await session.receive()
            assert ack["type"] == "connection_ack", ack
            client = Client(api, token, session)

            tiny = await client.upload("tiny", small_csv())
            noop_id = await client.create_card("no-op", NOOP, tiny["dataset"]["id"])
            out["noop"], noop_results = await timed_card_runs(
                client, noop_id, args.warmup, args.runs, use_cache=False
            )
            out["noop_split"] = breakdown(out["noop"], noop_results)
            print(f"  no-op card over the API: {args.runs} runs done", flush=True)

            # The sandbox alone and a cold import, while the stack's worker sits idle.
            out["sandbox"], out["zygote_ms"] = await sandbox_alone(args.sandbox_runs, 20)
            out["cold"] = cold_import_pandas(args.cold_runs)
            print("  sandbox alone and cold imports done", flush=True)

            path = work / "big.csv"
            started = time.perf_counter()
            big_csv(path, args.rows)
            out["big_mb"] = path.stat().st_size / 1e6
            out["big_gen_s"] = time.perf_counter() - started
            started = time.perf_counter()
            big = await client.upload("big", path.read_bytes())
            out["big_import_s"] = time.perf_counter() - started
            out["big_rows"] = big["dataset"]["rowCount"]
            out["big_cols"] = big["dataset"]["columnCount"]
            path.unlink()
            print(
                f"  {out['big_mb']:.0f} MB dataset uploaded and imported in "
                f"{out['big_import_s']:.1f} s",
                flush=True,
            )
            card_id = await client.create_card("summary", SUMMARY, big["dataset"]["id"])
            filters = [{"column": "category", "values": [CATEGORIES[1]]}]
            out["scan"] = await asyncio.to_thread(
                parquet_scan_alone, env, big["dataset"], "category", [CATEGORIES[1]], 5
            )
            out["cold_card"], cold_results = await timed_card_runs(
                client, card_id, 2, args.big_runs, use_cache=False, filters=filters
            )
            out["cold_card_split"] = breakdown(out["cold_card"], cold_results)
            found = re.search(r"data-rows='(\d+)'", cold_results[-1]["result"]["html"])
            out["filtered_rows"] = int(found.group(1)) if found else -1
            await client.run(card_id, use_cache=True, filters=filters)  # the cached result
            out["hit"], _ = await timed_card_runs(
                client, card_id, 5, args.hit_runs, use_cache=True, filters=filters
            )
    finally:
        await api.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="no-op card runs over the API")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up runs before those")
    parser.add_argument("--sandbox-runs", type=int, default=200, help="Sandbox.run alone")
    parser.add_argument("--cold-runs", type=int, default=5, help='python -c "import pandas"')
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big dataset")
    parser.add_argument("--big-runs", type=int, default=20, help="cold runs of the big card")
    parser.add_argument("--hit-runs", type=int, default=100, help="cache hits of the big card")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with work_dir("bench_cards_") as work, admin_stack(work) as stack:
        server = stack.start_api(env=QUIET_API)
        stack.start_worker(env=PRODUCTION)
        out = asyncio.run(api_part(server.url, server.ws_url, args, work, stack.env))
    load_after = os.getloadavg()

    med = statistics.median
    print(
        f"\n{os.cpu_count()} cores; load average {load_before[0]:.2f} -> {load_after[0]:.2f}; "
        f"one API and one worker (bwrap, {os.cpu_count()} sandbox slots, 10 s card timeout); "
        "one WebSocket reused for every run\n"
    )
    print("(a) sandbox overhead")
    print(describe("no-op card, API end to end (useCache false)", out["noop"], LABEL_WIDTH))
    print(out["noop_split"])
    print(describe("no-op card, Sandbox.run alone (bwrap)", out["sandbox"], LABEL_WIDTH))
    print(describe('cold `python -c "import pandas"`', out["cold"], LABEL_WIDTH))
    noop, alone, cold = med(out["noop"]), med(out["sandbox"]), med(out["cold"])
    print(
        f"p50 ratios: API end to end / Sandbox.run = {noop / alone:.1f}x; "
        f"cold import pandas / Sandbox.run = {cold / alone:.1f}x; "
        f"cold import pandas / API end to end = {cold / noop:.1f}x "
        f"(in-process zygote start: {out['zygote_ms']:.0f} ms)"
    )
    print(
        f"\n(b) card over {out['big_rows']:,} rows x {out['big_cols']} columns "
        f"({out['big_mb']:.0f} MB CSV, uploaded + imported in {out['big_import_s']:.1f} s), "
        f"CATEGORY filter keeping {out['filtered_rows']:,} rows, groupby + to_html; "
        "the card declares no used columns, so every column is read"
    )
    print(describe("cold run, API end to end (useCache false)", out["cold_card"], LABEL_WIDTH))
    print(out["cold_card_split"])
    print(describe("filtered Parquet scan from the emulator, alone", out["scan"], LABEL_WIDTH))
    print(describe("cache hit, mutation -> SUCCEEDED", out["hit"], LABEL_WIDTH))
    print(
        f"p50 ratio cold / cache hit = {med(out['cold_card']) / med(out['hit']):.1f}x; "
        f"cold big card / no-op card = {med(out['cold_card']) / noop:.1f}x"
    )


if __name__ == "__main__":
    main()
