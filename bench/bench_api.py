"""Requests per second and p50/p99 latency of `{ me { id email } }` over HTTP, beside a
plain Starlette JSON endpoint served the same way, in the same run.

    .venv/bin/python bench/bench_api.py [--seconds 10] [--concurrency 16] [--tool wrk|httpx]

With `wrk` (Debian package `wrk`) the load comes from a separate, cheap C process; the
httpx client in this process is the fallback, and on two cores it limits the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
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


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _seconds(text: str) -> float:
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNITS[unit]
    return float(text)


def load_wrk(
    url: str, body: dict[str, object], token: str, seconds: float, concurrency: int, workdir: Path
) -> tuple[float, dict[float, float]]:
    """(requests/s, {0.5: p50 s, 0.99: p99 s}) from one wrk run after a short warm-up."""
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body), token=token))
    command = ["wrk", "-t2", f"-c{concurrency}", "--latency", "-s", str(script), url]
    subprocess.run(
        [*command[:1], "-t1", "-c4", "-d2s", "-s", str(script), url],
        capture_output=True,
        check=True,
    )
    output = subprocess.run(
        [*command[:1], "-d", f"{int(seconds)}s", *command[1:]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(output.split("Requests/sec:")[1].split()[0])
    percentiles = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            percentiles[float(parts[0][:-1]) / 100] = _seconds(parts[1])
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    return rps, percentiles


async def emulator_get_rate(stack: Stack, seconds: float, concurrency: int) -> float:
    """GetItem/s the emulator serves on its own, through the product's store layer."""
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    services = await Services.open(Settings.from_env(stack.env))
    try:
        user = await services.repos.users.get_by_email(ADMIN[0])
        assert user is not None
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await services.repos.users.get(user.id)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)
    finally:
        await services.close()


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
    parser.add_argument(
        "--tool", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
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
            targets = {
                "tilegraph { me { id email } }": (f"{api.url}/graphql", body),
                # Signed in (JWT check + Redis revocation lookup) but no DynamoDB read.
                'tilegraph { users(query: "") }': (
                    f"{api.url}/graphql",
                    {"query": '{ users(query: "") { id } }'},
                ),
                "plain Starlette JSON": (f"http://127.0.0.1:{plain_port}/graphql", body),
            }
            results: dict[str, tuple[float, float, float]] = {}
            for name, (url, query) in targets.items():
                if args.tool == "wrk":
                    rps, pcts = load_wrk(
                        url, query, token, args.seconds, args.concurrency, Path(tmp)
                    )
                    results[name] = (rps, pcts[0.5] * 1000, pcts[0.99] * 1000)
                else:
                    rps, lat = asyncio.run(
                        load(url, query, headers, args.seconds, args.concurrency)
                    )
                    results[name] = (rps, pct(lat, 0.5), pct(lat, 0.99))
            store_rate = asyncio.run(emulator_get_rate(stack, args.seconds / 2, args.concurrency))
        finally:
            plain.terminate()
            plain.wait()
            stack.close()
    print(f"{'endpoint':<32}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, (rps, p50, p99) in results.items():
        print(f"{name:<32}{rps:>10.0f}{p50:>10.2f}{p99:>10.2f}")
    ours, no_store, base = results.values()
    print(f"ratio tilegraph/plain: req/s {ours[0] / base[0]:.3f}, p50 {ours[1] / base[1]:.1f}")
    caller_only = no_store[0] / base[0]
    print(f"ratio tilegraph reading only the caller (empty users query)/plain: {caller_only:.3f}")
    print(
        f"the AWS emulator alone serves {store_rate:.0f} GetItem/s (16 concurrent, one at a "
        f"time inside): `me` runs at {ours[0] / store_rate:.0%} of that ceiling"
    )
    print(
        f"(load from {args.tool}, concurrency {args.concurrency}, {args.seconds:.0f} s each, "
        "one API process, 2 cores shared by server and load generator)"
    )


if __name__ == "__main__":
    main()
