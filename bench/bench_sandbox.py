"""Sandbox start-up cost, end to end through ``Sandbox.run``.

Prints p50/p95 of a no-op card, of a card over a 1M-row x 10-column table, and of a cold
``python -c "import pandas"`` (what a sandbox without a warm zygote would pay), with the ratio.

    .venv/bin/python bench/bench_sandbox.py [--mode bwrap|process] [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from tilegraph.executor import CARD_LIMITS, CardJob, Sandbox

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import cold_import_pandas, describe  # noqa: E402

NOOP = "def render(dataset, filters, params):\n    return 'ok'\n"
LENGTH = "def render(dataset, filters, params):\n    return str(len(dataset))\n"
LABEL_WIDTH = 34


async def timed_runs(sandbox: Sandbox, job: CardJob, runs: int, expect: str) -> list[float]:
    result = await sandbox.run(job, CARD_LIMITS)  # warm-up
    assert result.error is None and result.output is not None, result.error
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await sandbox.run(job, CARD_LIMITS)
        samples.append((time.perf_counter() - started) * 1000)
        assert result.output is not None and result.output.html == expect, result.error  # type: ignore[union-attr]
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["bwrap", "process"], default="bwrap")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--big-runs", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()

    sandbox = Sandbox(mode=args.mode, slots=2, prefork=2)
    started = time.perf_counter()
    await sandbox.start()
    print(f"mode={args.mode} zygote start {(time.perf_counter() - started) * 1000:.0f} ms")
    print(f"features: {sandbox.features}")
    try:
        noop = await timed_runs(sandbox, CardJob(NOOP, None, [], []), args.runs, "ok")
        rows = 1_000_000
        table = pa.table({f"c{i}": np.random.default_rng(i).random(rows) for i in range(10)})
        big_job = CardJob(LENGTH, None, [], [table])
        big = await timed_runs(sandbox, big_job, args.big_runs, str(rows))
    finally:
        await sandbox.close()
    cold = cold_import_pandas(args.cold_runs)

    print(describe("no-op card (Sandbox.run)", noop, LABEL_WIDTH))
    print(describe("1M x 10 float64 card (80 MB in)", big, LABEL_WIDTH))
    print(describe('cold `python -c "import pandas"`', cold, LABEL_WIDTH))
    ratio = statistics.median(cold) / statistics.median(noop)
    print(f"cold import pandas p50 / no-op card p50 = {ratio:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
