"""Chatbot figures: time to first TOKEN and to DONE for the built-in provider and for an
OpenAI-format loopback server streaming 50 tokens without delay, and the dataset summary of a
1M-row x 8-column Parquet dataset read through pyarrow.dataset — cold (computed) and cached
(a JSON round trip of the summary, standing in for the Redis hit). Medians are printed.

    .venv/bin/python bench/bench_chat.py [--rows 1000000] [--repeats 5]

The cold summary runs in a freshly spawned process so its peak RSS (VmHWM) is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit.chat.sse_server import OpenAIStub, Script  # noqa: E402

from tilegraph.chat import (  # noqa: E402
    ChatSettings,
    DatasetSummary,
    make_provider,
    prepare_chat,
    stream_answer,
    summarize_table,
)
from tilegraph.chat.providers.base import ChatProvider  # noqa: E402

COLUMN_TYPES = {
    "order_id": "INT64",
    "amount": "FLOAT64",
    "quantity": "INT64",
    "region": "STRING",
    "product": "STRING",
    "order_no": "STRING",
    "order_date": "DATE",
    "created_at": "DATETIME",
}


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """8 columns: ids, a float with 1 % nulls, an int, 10 regions, 1,000 products, a unique
    order number (past the exact distinct limit: exercises the HyperLogLog path), a date and
    a timestamp. Written as Parquet with 128k-row groups."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    amount = pa.array(rng.gamma(2.0, 50.0, rows), mask=rng.random(rows) < 0.01)
    regions = pa.array([f"region-{i}" for i in range(10)])
    products = pa.array([f"product-{i:04d}" for i in range(1000)])
    order_no = pc.binary_join_element_wise(
        "ORD-", pc.cast(pa.array(np.arange(rows)), pa.string()), ""
    )
    table = pa.table(
        {
            "order_id": pa.array(np.arange(rows, dtype=np.int64)),
            "amount": amount,
            "quantity": pa.array(rng.integers(1, 20, rows)),
            "region": regions.take(pa.array(rng.zipf(1.5, rows) % 10)),
            "product": products.take(pa.array(rng.integers(0, 1000, rows))),
            "order_no": order_no,
            "order_date": pa.array(
                np.datetime64("2023-01-01") + rng.integers(0, 730, rows).astype("timedelta64[D]")
            ),
            "created_at": pa.array(
                np.datetime64("2023-01-01T00:00:00", "us")
                + rng.integers(0, 730 * 86_400, rows).astype("timedelta64[s]")
            ),
        }
    )
    pq.write_table(table, path, row_group_size=131_072)


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _summarize_child(path: str, limit: int, conn: Connection) -> None:
    import pyarrow as pa
    import pyarrow.dataset as ds

    baseline = _peak_rss_kib()
    started = time.perf_counter()
    summary = summarize_table(
        ds.dataset(path, format="parquet"),
        dataset_id="ds_bench",
        name="orders",
        version=1,
        column_types=COLUMN_TYPES,
        exact_distinct_limit=limit,
    )
    elapsed = time.perf_counter() - started
    arrow_peak = pa.default_memory_pool().max_memory() // 1024
    conn.send((elapsed, baseline, _peak_rss_kib(), arrow_peak, summary.to_json()))
    conn.close()


def summarize_in_child(path: Path, limit: int) -> tuple[float, int, int, int, DatasetSummary]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_summarize_child, args=(str(path), limit, child))
    process.start()
    elapsed, baseline, peak, arrow_peak, text = parent.recv()
    process.join()
    return elapsed, baseline, peak, arrow_peak, DatasetSummary.from_json(text)


async def time_answers(
    provider: ChatProvider, summary: DatasetSummary, question: str, runs: int
) -> tuple[list[float], list[float], int]:
    """(first-token times, done times, tokens per answer), from the request's start
    (validation and prompt building included) to the event."""
    firsts: list[float] = []
    dones: list[float] = []
    tokens = 0
    for _ in range(runs):
        started = time.perf_counter()
        prepared = prepare_chat(
            dashboard_name="Orders",
            cards=[("Revenue by region", "Sum of amount per region")],
            summaries=[summary],
            unavailable=[],
            history=[],
            question=question,
        )
        first: float | None = None
        tokens = 0
        async for event in stream_answer(provider, prepared):
            if event.type == "TOKEN":
                tokens += 1
                if first is None:
                    first = time.perf_counter() - started
            elif event.type == "ERROR":
                raise RuntimeError(event.error)
        firsts.append(first or 0.0)
        dones.append(time.perf_counter() - started)
    return firsts, dones, tokens


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(values) * 1000:8.3f} ms   p90 {p90 * 1000:8.3f} ms"


async def chat_figures(summary: DatasetSummary, runs: int) -> None:
    builtin = make_provider(ChatSettings())
    for question in ("What is the average amount?", "regionの上位は？"):
        firsts, dones, tokens = await time_answers(builtin, summary, question, runs)
        print(f"builtin  {question!r} ({tokens} tokens)")
        print(f"  first TOKEN  {ms(firsts)}")
        print(f"  DONE         {ms(dones)}")

    words = [f"word{i} " for i in range(50)]
    async with OpenAIStub(Script(tokens=words)) as server:
        settings = ChatSettings(
            provider="openai",
            openai_base_url=server.base_url,
            openai_model="bench",
            openai_api_key="sk-bench",
        )
        provider = make_provider(settings)
        try:
            cold_first, cold_done, _ = await time_answers(provider, summary, "Summarise", 1)
            firsts, dones, tokens = await time_answers(provider, summary, "Summarise", runs)
        finally:
            await provider.aclose()
        prompt_chars = len(server.requests[-1].body)
    print(
        f"openai loopback, 50 tokens, no delay ({tokens} tokens, request body {prompt_chars:,} B)"
    )
    print(f"  first answer (new connection): first TOKEN {cold_first[0] * 1000:.3f} ms,")
    print(f"                                 DONE        {cold_done[0] * 1000:.3f} ms")
    print(f"  first TOKEN  {ms(firsts)}")
    print(f"  DONE         {ms(dones)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="cold summary runs")
    parser.add_argument("--runs", type=int, default=200, help="answers per provider")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.parquet"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(
            f"dataset: {args.rows:,} rows x {len(COLUMN_TYPES)} columns,"
            f" Parquet {size_mb:.1f} MB (generated in {time.perf_counter() - started:.1f} s)"
        )

        for label, limit in (("default (bounded)", 100_000), ("exact everywhere", 10**9)):
            runs = [summarize_in_child(path, limit) for _ in range(args.repeats)]
            times = [r[0] for r in runs]
            growth = statistics.median((r[2] - r[1]) / 1024 for r in runs)
            arrow_peak = statistics.median(r[3] / 1024 for r in runs)
            summary = runs[-1][4]
            order_no = summary.column("order_no")
            assert order_no is not None
            print(
                f"summary cold, {label}: median {statistics.median(times) * 1000:.0f} ms"
                f" (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f});"
                f" peak Arrow memory {arrow_peak:.0f} MiB, peak RSS growth {growth:.0f} MiB;"
                f" order_no distinct {order_no.distinct_count:,}"
                f" ({'exact' if order_no.distinct_exact else 'estimated'})"
            )
        summary = summarize_in_child(path, 100_000)[4]

        text = summary.to_json()
        cached: list[float] = []
        for _ in range(1000):
            started = time.perf_counter()
            DatasetSummary.from_json(summary.to_json())
            cached.append(time.perf_counter() - started)
        print(
            f"summary cached (to_json + from_json, {len(text):,} B):"
            f" median {statistics.median(cached) * 1e6:.1f} µs"
        )
        asyncio.run(chat_figures(summary, args.runs))


if __name__ == "__main__":
    main()
