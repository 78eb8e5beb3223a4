"""Requests per second and p50/p99 latency of `{ me { id email } }` over HTTP, beside a
plain Starlette JSON endpoint served the same way, in the same run.

    .venv/bin/python bench/bench_api.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.stack import Stack, free_port, wait_for_port  # noqa: E402

ADMIN = ("bench-admin@example.com", "Bench-passw0rd!")


async def load(
    url: str, body: dict[str, object], headers: dict[str, str], seconds: float, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(50):  # warm up connections and caches
            (await client.post(url, json=body, headers=headers)).raise_for_status()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post(url, json=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200 and b'"errors"' not in response.content

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def login(url: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/graphql",
            json={
                "query": "mutation($i: LoginInput!) { login(input: $i) { token } }",
                "variables": {"i": {"email": ADMIN[0], "password": ADMIN[1]}},
            },
        )
    return str(response.json()["data"]["login"]["token"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    body = {"query": "{ me { id email } }"}
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.create(Path(tmp))
        plain_port = free_port()
        plain = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "plain_starlette.py"), str(plain_port)]
        )
        try:
            result = stack.run_cli("create-admin", "--email", ADMIN[0], "--password", ADMIN[1])
            assert result.returncode == 0, result.stderr
            api = stack.start_api(env={"TILEGRAPH_LOG_LEVEL": "WARNING"})
            wait_for_port("127.0.0.1", plain_port, timeout=30, process=plain)
            token = asyncio.run(login(api.url))
            headers = {"Authorization": f"Bearer {token}"}
            ours = asyncio.run(
                load(f"{api.url}/graphql", body, headers, args.seconds, args.concurrency)
            )
            base = asyncio.run(
                load(
                    f"http://127.0.0.1:{plain_port}/graphql",
                    body,
                    headers,
                    args.seconds,
                    args.concurrency,
                )
            )
        finally:
            plain.terminate()
            plain.wait()
            stack.close()
    print(f"{'endpoint':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}")
    for name, (rps, lat) in (
        ("tilegraph { me { id email } }", ours),
        ("plain Starlette JSON", base),
    ):
        print(f"{name:<28}{rps:>10.0f}{pct(lat, 0.5):>10.2f}{pct(lat, 0.99):>10.2f}{len(lat):>10}")
    print(
        f"ratio tilegraph/plain req/s: {ours[0] / base[0]:.2f}; "
        f"p50 ratio: {statistics.median(ours[1]) / statistics.median(base[1]):.2f}"
    )
    print(
        f"(concurrency {args.concurrency}, {args.seconds:.0f} s each, one API process, "
        "load generator in this process)"
    )


if __name__ == "__main__":
    main()
