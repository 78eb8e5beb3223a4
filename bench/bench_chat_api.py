"""The chatbot end to end, through the API over a WebSocket: time to the first TOKEN and to
DONE for the built-in provider and for an OpenAI-format server on loopback, and the first
question about a 1M-row dataset (summary computed) beside the next (summary cached).

    .venv/bin/python bench/bench_chat_api.py [--questions 20] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cards import create_card, render  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.dashboards import create_dashboard  # noqa: E402
from tests.support.datasets import follow_import, upload  # noqa: E402
from tests.support.stack import Stack  # noqa: E402
from tests.unit.chat.sse_server import OpenAIStub, Script  # noqa: E402

ADMIN = ("bench-admin@example.com", "Bench-passw0rd!")
CHAT = """subscription($d: ID!, $m: String!) { dashboardChat(dashboardId: $d, message: $m) {
  type text error } }"""
UNLIMITED = {"TILEGRAPH_CHAT_QUESTIONS_PER_MINUTE": "100000", "TILEGRAPH_LOG_LEVEL": "WARNING"}


async def ask(api: Api, token: str, dashboard: str, question: str) -> tuple[float, float]:
    """(seconds to the first TOKEN, seconds to DONE), from sending the subscription."""
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        started = time.perf_counter()
        op = await session.subscribe(CHAT, {"d": dashboard, "m": question})
        first = None
        async for payload in session.messages(op):
            event = payload["data"]["dashboardChat"]
            if event["type"] == "TOKEN" and first is None:
                first = time.perf_counter() - started
            if event["type"] in ("DONE", "ERROR"):
                assert event["type"] == "DONE", event
                return first or 0.0, time.perf_counter() - started
    raise AssertionError("the stream ended without DONE")


def big_csv(rows: int) -> bytes:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(3)
    table = pa.table(
        {
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "amount": rng.gamma(2.0, 50.0, rows).round(2),
            "quantity": rng.integers(1, 50, rows),
            "day": pa.array(np.datetime64("2024-01-01") + rng.integers(0, 365, rows)),
            "customer": pa.array([f"c{i}" for i in rng.integers(0, 200_000, rows)]),
        }
    )
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return sink.getvalue().to_pybytes()


async def board(api: Api, token: str, content: bytes, name: str) -> str:
    uploaded = await upload(api, token, content, name=name)
    final = (await follow_import(api, token, uploaded["import"]["id"], timeout=600))[-1]
    assert final["status"] == "SUCCEEDED", final
    card = await create_card(api, token, render("return 'x'"), [uploaded["dataset"]["id"]])
    return str((await create_dashboard(api, token, card_ids=[card], name=name))["id"])


def line(name: str, values: list[tuple[float, float]]) -> str:
    first = statistics.median(v[0] for v in values) * 1000
    done = statistics.median(v[1] for v in values) * 1000
    return f"{name:<46}{len(values):>4}{first:>16.1f}{done:>12.1f}"


async def measure(stack: Stack, args: argparse.Namespace) -> list[str]:
    builtin_server = stack.start_api("api-builtin", UNLIMITED)
    builtin = Api(builtin_server.url, builtin_server.ws_url)
    token = await builtin.login(*ADMIN)
    small = await board(builtin, token, b"region,amount\nnorth,1\nsouth,2\n", "small")
    big = await board(builtin, token, big_csv(args.rows), "big")
    out = []
    results = [
        await ask(builtin, token, small, "How many rows are there?") for _ in range(args.questions)
    ]
    out.append(line("builtin, small dataset", results))
    cold = await ask(builtin, token, big, "What is the average amount?")
    warm = [
        await ask(builtin, token, big, "What is the average amount?") for _ in range(args.questions)
    ]
    out.append(line(f"builtin, {args.rows:,} rows, first question (summary)", [cold]))
    out.append(line(f"builtin, {args.rows:,} rows, summary cached", warm))
    async with OpenAIStub(Script(tokens=[f"word{i} " for i in range(50)])) as llm:
        llm_server = stack.start_api(
            "api-openai",
            {
                **UNLIMITED,
                "TILEGRAPH_CHAT_PROVIDER": "openai",
                "TILEGRAPH_CHAT_OPENAI_BASE_URL": llm.base_url,
                "TILEGRAPH_CHAT_OPENAI_MODEL": "bench",
            },
        )
        remote = Api(llm_server.url, llm_server.ws_url)
        await ask(remote, token, small, "warm up")
        streamed = [
            await ask(remote, token, small, "Summarise the data") for _ in range(args.questions)
        ]
        out.append(line("openai-format loopback server, 50 tokens", streamed))
        await remote.close()
    await builtin.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.create(Path(tmp))
        try:
            created = stack.run_cli("create-admin", "--email", ADMIN[0], "--password", ADMIN[1])
            assert created.returncode == 0, created.stderr
            stack.start_worker()
            lines = asyncio.run(measure(stack, args))
        finally:
            stack.close()
    print(f"{'provider / case':<46}{'n':>4}{'first TOKEN ms':>16}{'DONE ms':>12}")
    print("\n".join(lines))
    print("(medians; from sending the subscription on an open WebSocket to the event arriving)")


if __name__ == "__main__":
    main()
