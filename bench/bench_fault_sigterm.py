"""500 card runs with the worker stopped gracefully (SIGTERM) halfway and another started:
every run must end SUCCEEDED exactly once (none CANCELLED, none run twice). The fault suite
runs the same with 20 runs (tests/faults/test_worker_faults.py); this is the issue's size.

    .venv/bin/python bench/bench_fault_sigterm.py [--runs 500] [--sleep 0.2] [--grace 0]

Prints how long the stop took, how long until every run was terminal, and the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.client import Api  # noqa: E402

from common import ADMIN, admin_stack, start_upload, work_dir  # noqa: E402

CREATE = """mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }"""
EXECUTE = """mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) {
  execution { id } } }"""
IMPORT = "query($id: ID!) { datasetImport(id: $id) { status dataset { id } } }"
STATUSES = """query($ids: [ID!]!) { nodes(ids: $ids) { id ... on CardExecution { status } } }"""
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


async def statuses(api: Api, token: str, runs: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for start in range(0, len(runs), 100):
        data = await api.ok(STATUSES, {"ids": runs[start : start + 100]}, token=token)
        counts.update(n["status"] for n in data["nodes"] if n)
    return counts


async def wait_terminal(api: Api, token: str, runs: list[str], want: int) -> Counter[str]:
    while True:
        counts = await statuses(api, token, runs)
        if sum(counts[s] for s in TERMINAL) >= want:
            return counts
        await asyncio.sleep(0.25)


async def main(runs: int, sleep: float, grace: float) -> None:
    with work_dir("tg-bench-sigterm-") as work, admin_stack(work) as stack:
        env = {
            "TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": str(runs),
            # 0: the runs in flight at SIGTERM are handed back at once (none finish in grace).
            "TILEGRAPH_WORKER_STOP_GRACE_SECONDS": str(grace),
            "TILEGRAPH_LOG_LEVEL": "INFO",
        }
        server = stack.start_api(env=env)
        api = Api(server.url, server.ws_url)
        first = stack.start_worker("worker-a", env)
        token = await api.login(*ADMIN)
        import_id = await start_upload(api, token, "bench", b"a\n1\n")
        while True:
            state = (await api.ok(IMPORT, {"id": import_id}, token=token))["datasetImport"]
            if state["status"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.1)
        code = (
            "def render(dataset, filters, params):\n"
            f"    import time\n    time.sleep({sleep})\n    return 'ok'\n"
        )
        card = (
            await api.ok(
                CREATE,
                {"i": {"name": "c", "code": code, "datasetIds": [state["dataset"]["id"]]}},
                token=token,
            )
        )["createCard"]["card"]["id"]
        queued = time.monotonic()
        ids = []
        for start in range(0, runs, 50):
            batch = await asyncio.gather(
                *(api.ok(EXECUTE, {"id": card}, token=token) for _ in range(min(50, runs - start)))
            )
            ids += [b["executeCard"]["execution"]["id"] for b in batch]
        await wait_terminal(api, token, ids, runs // 2)
        stopped = time.monotonic()
        first.send_signal(signal.SIGTERM)
        exit_code = first.wait(60)
        stop_took = time.monotonic() - stopped
        stack.start_worker("worker-b", env)
        counts = await wait_terminal(api, token, ids, runs)
        total = time.monotonic() - stopped
        logs = "".join((stack.workdir / f"{n}.log").read_text() for n in ("worker-a", "worker-b"))
        completions = Counter(
            run for line in logs.splitlines() if "● " in line for run in ids if run in line
        )
        twice = sum(1 for r in ids if completions[r] > 1)
        handed = logs.count("execution_handed_back")
        print(f"{runs} runs of {sleep} s; all queued in {stopped - queued:.1f} s before SIGTERM")
        print(f"SIGTERM → worker A exited ({exit_code}) in {stop_took:.2f} s, handed back {handed}")
        print(f"SIGTERM → all {runs} terminal in {total:.1f} s (incl. worker B start-up)")
        print(f"statuses: {dict(counts)}; runs completed twice: {twice}")
        await api.close()
        assert counts == {"SUCCEEDED": runs} and twice == 0, (counts, twice)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--grace", type=float, default=0.0)
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.sleep, options.grace))
