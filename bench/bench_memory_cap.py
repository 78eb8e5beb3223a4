"""How much of the host one hostile card takes, with each kind of per-job memory cap.

Runs the card that forks seven children which each touch 1 GiB (and one that fills 6 GB of
memfds) under the card limits (4 GiB), once per cap kind, and prints the host's largest drop
in available memory (sampled every 10 ms), the job's own high-water mark where the cap can
tell, the outcome and the time, with the drop as a ratio of the card limit.

    .venv/bin/python bench/bench_memory_cap.py [--caps auto,watchdog,off]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import cast

from tilegraph.executor import CARD_LIMITS, CapMode, CardJob, Sandbox

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.executor.support import FORKED_MEMORY_HOG, MEMFD_HOG, memory_drop  # noqa: E402

GiB = 1 << 30
HOGS = {"7 forks x 1 GiB": FORKED_MEMORY_HOG, "100 memfds x 60 MiB": MEMFD_HOG}


async def measure(cap: CapMode) -> None:
    sandbox = Sandbox(mode="bwrap", slots=1, prefork=1, memory_cap=cap)
    await sandbox.start()
    try:
        for name, code in HOGS.items():
            started = time.perf_counter()
            with memory_drop() as drop:
                result = await sandbox.run(CardJob(code, None, [], []), CARD_LIMITS)
            seconds = time.perf_counter() - started
            ended = result.error.code.value if result.error else "SUCCEEDED"
            print(
                f"{sandbox.memory_cap:>9}  {name:<20}  host drop {drop[0] / GiB:5.2f} GiB "
                f"({drop[0] / CARD_LIMITS.memory_bytes:4.2f}x limit)  job peak "
                f"{result.peak_memory_bytes / GiB:5.2f} GiB  {ended:<12} {seconds:5.1f} s"
            )
    finally:
        await sandbox.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--caps", default="auto,watchdog,off")
    args = parser.parse_args()
    print(f"card limit {CARD_LIMITS.memory_bytes / GiB:g} GiB")
    for cap in args.caps.split(","):
        await measure(cast(CapMode, cap))


if __name__ == "__main__":
    asyncio.run(main())
