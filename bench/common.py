"""Helpers shared by the benches: the stack's settings and start-up, generated CSVs,
percentiles, uploads, and many subscriptions multiplexed over one WebSocket.

Not a bench itself; the benches put the repository root on ``sys.path`` before importing it.
Benches whose measured child processes re-run the bench script (``bench_import.py``,
``bench_ingest.py``) import it inside functions, so those children do not load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.client import Api
from tests.support.stack import ApiServer, Stack

ADMIN = ("bench-admin@example.com", "Bench-passw0rd!")
USER_PASSWORD = "Bench-User-passw0rd!"
# Production timings instead of the test stack's short ones (heartbeats every 0.5 s, 1 MiB
# ingest blocks); the worker keeps INFO logs because its readiness marker is an INFO line.
PRODUCTION = {
    "TILEGRAPH_INGEST_BLOCK_BYTES": str(8 << 20),
    "TILEGRAPH_HEARTBEAT_SECONDS": "5",
    "TILEGRAPH_HEARTBEAT_TIMEOUT_SECONDS": "30",
    "TILEGRAPH_SWEEPER_INTERVAL_SECONDS": "10",
    "TILEGRAPH_REQUEUE_GRACE_SECONDS": "30",
    "TILEGRAPH_CARD_TIMEOUT_SECONDS": "10",
    "TILEGRAPH_TRANSFORM_TIMEOUT_SECONDS": "60",
}
QUIET_API = {**PRODUCTION, "TILEGRAPH_LOG_LEVEL": "WARNING"}
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

UPLOAD = """mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) {
  dataset { id } import { id status } } }"""
FOLLOW_IMPORT = """subscription($id: ID!) { datasetImport(id: $id) {
  status queuedAt startedAt finishedAt error { code message }
  dataset { id version rowCount columnCount } } }"""
CREATE_USER = """mutation($i: CreateUserInput!) { createUser(input: $i) { user { id email } } }"""


# --------------------------------------------------------------------------- figures


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty sample."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, samples: list[float], width: int) -> str:
    """One line: the label padded to `width`, the count, p50 and p95 in ms."""
    return (
        f"{name:<{width}} n={len(samples):<4} p50={percentile(samples, 0.5):8.1f} ms"
        f"  p95={percentile(samples, 0.95):8.1f} ms"
    )


def ms_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def tree_stat_fields(root: int) -> list[list[str]]:
    """The /proc stat fields (after the command name) of a process and its live descendants."""
    parent: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        parent[int(entry)] = int(fields[1])
        stats[int(entry)] = fields
    found = []
    for pid, fields in stats.items():
        node = pid
        while node > 1 and node != root:
            node = parent.get(node, 0)
        if node == root:
            found.append(fields)
    return found


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and all its live descendants, with the children each
    has reaped (cutime/cstime): a worker with its bwrap sandbox zygote and the zygote's
    forked runs (which sit in sessions of their own), or the emulator."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(sum(int(v) for v in f[11:15]) for f in tree_stat_fields(root)) / ticks


def tree_rss_bytes(root: int) -> int:
    """Resident memory of a process and its live descendants."""
    return sum(int(f[21]) for f in tree_stat_fields(root)) * os.sysconf("SC_PAGE_SIZE")


def own_cpu_seconds() -> float:
    """This process and its reaped children (e.g. a tick child process)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class CpuMeter:
    """CPU seconds spent by named process trees (root pids; 0: this process and its reaped
    children) between construction and ``spent()``."""

    def __init__(self, trees: dict[str, list[int]]) -> None:
        self.trees = trees
        self._start = self._sample()

    def _sample(self) -> dict[str, float]:
        return {
            name: sum(tree_cpu_seconds(p) if p else own_cpu_seconds() for p in pids)
            for name, pids in self.trees.items()
        }

    def spent(self) -> dict[str, float]:
        end = self._sample()
        return {name: end[name] - self._start[name] for name in end}


class EmulatorLog:
    """Requests the AWS emulator served since construction, from its request log (werkzeug
    writes one line per request): DynamoDB requests are ``POST /``, the rest S3."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def counts(self) -> dict[str, int]:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            lines = handle.read().decode(errors="replace").splitlines()
        requests = [line for line in lines if " HTTP/1.1" in line]
        dynamodb = sum('"POST / HTTP/1.1"' in line for line in requests)
        return {"dynamodb": dynamodb, "s3": len(requests) - dynamodb}


def cold_import_pandas(runs: int) -> list[float]:
    """Milliseconds of `runs` cold ``python -c "import pandas"`` (what a sandbox without a
    warm zygote would pay)."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import pandas"], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def cpu_line(spent: dict[str, float], wall: float) -> str:
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in spent.items())
    return (
        f"CPU s: {parts}; total {sum(spent.values()):.1f} over {wall:.1f} s wall "
        f"({sum(spent.values()) / wall:.2f} cores busy of {os.cpu_count()})"
    )


# --------------------------------------------------------------------------- the data


def generate_csv(
    path: Path, size_mb: int, *, seed: int, block_rows: int, words: Sequence[str]
) -> int:
    """A CSV of at least ``size_mb`` MiB: int (with nulls), float, string (from `words`, plus
    a number), date and bool columns, built in blocks of `block_rows` rows with numpy/pyarrow
    and written by pyarrow's CSV writer, so a 200 MB file takes seconds. Returns the data rows.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    names = pa.array(list(words))
    cities = pa.array(["Tokyo", "Osaka", "Nagoya", "Sapporo", "Fukuoka", "Kobe", "Kyoto"])
    target = size_mb << 20
    n = block_rows
    rows = 0
    writer: Any = None
    try:
        while writer is None or path.stat().st_size < target:
            table = pa.table(
                {
                    "id": pa.array(np.arange(rows, rows + n, dtype=np.int64)),
                    "quantity": pa.array(
                        rng.integers(-1_000, 100_000, n), mask=rng.random(n) < 0.01
                    ),
                    "price": pa.array(np.round(rng.random(n) * 1000, 2)),
                    "score": pa.array(rng.standard_normal(n)),
                    "name": pc.binary_join_element_wise(
                        names.take(pa.array(rng.integers(0, len(names), n))),
                        pc.cast(pa.array(rng.integers(0, 100_000, n)), pa.string()),
                        "-",
                    ),
                    "city": cities.take(pa.array(rng.integers(0, len(cities), n))),
                    "day": pa.array(rng.integers(18_000, 20_000, n).astype("datetime64[D]")),
                    "active": pa.array(rng.random(n) < 0.5),
                    "comment": pc.binary_join_element_wise(
                        "note", pc.cast(pa.array(rng.integers(0, 10**9, n)), pa.string()), " "
                    ),
                }
            )
            if writer is None:
                writer = pcsv.CSVWriter(str(path), table.schema)
            writer.write_table(table)
            rows += n
    finally:
        if writer is not None:
            writer.close()
    return rows


# --------------------------------------------------------------------------- the stack


@contextmanager
def work_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary work directory, removed on exit; with `keep` a lasting one, said so."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        if keep:
            tmp = tempfile.mkdtemp(prefix=prefix)
            print(f"keeping the stack's logs in {tmp}", flush=True)
        yield Path(tmp)


@contextmanager
def admin_stack(work: Path) -> Iterator[Stack]:
    """The test stack (emulator, redis) under ``work / "stack"`` with the bench admin
    created; closed on exit. The API and workers are the caller's to start."""
    stack = Stack.create(work / "stack")
    try:
        created = stack.run_cli("create-admin", "--email", ADMIN[0], "--password", ADMIN[1])
        assert created.returncode == 0, created.stderr
        yield stack
    finally:
        stack.close()


def run_on_stack(
    prefix: str,
    part: Callable[[str, str, Any, Path], Awaitable[dict[str, Any]]],
    args: Any,
) -> dict[str, Any]:
    """The test stack with one API (quiet) and one production-configured worker, and
    `part(api_url, ws_url, args, work)` run against it; what it measured."""
    with work_dir(prefix) as work, admin_stack(work) as stack:
        server = stack.start_api(env=QUIET_API)
        stack.start_worker(env=PRODUCTION)
        return asyncio.run(part(server.url, server.ws_url, args, work))


def stack_trees(stack: Stack, server: ApiServer) -> dict[str, list[int]]:
    """The stack's own process trees for ``CpuMeter``: the emulator, the API and redis."""
    assert stack.redis.process is not None
    return {
        "emulator": [stack.processes[0].pid],
        "api": [server.process.pid],
        "redis": [stack.redis.process.pid],
    }


# --------------------------------------------------------------------------- the API


async def open_api(url: str, ws_url: str) -> Api:
    """The tests' client, but dropping idle connections after 2 s: httpx keeps them 5 s by
    default, exactly uvicorn's keep-alive timeout, so a request sent on a connection idle for
    ~5 s can race the server closing it (httpx.ReadError) after a long step in between."""
    api = Api(url, ws_url)
    await api.http.aclose()
    api.http = httpx.AsyncClient(
        base_url=url, timeout=60, limits=httpx.Limits(keepalive_expiry=2.0)
    )
    return api


async def create_user(api: Api, admin_token: str, name: str) -> dict[str, str]:
    """A USER created by the admin, signed in."""
    email = f"{name}-{secrets.token_hex(3)}@bench.example"
    data = await api.ok(
        CREATE_USER,
        {"i": {"email": email, "name": name, "password": USER_PASSWORD, "role": "USER"}},
        token=admin_token,
    )
    token = await api.login(email, USER_PASSWORD)
    return {"id": data["createUser"]["user"]["id"], "email": email, "token": token}


class Subscriptions:
    """Any number of subscriptions over one graphql-transport-ws connection: one reader task
    hands each message to the queue of its operation id."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}

    @classmethod
    @asynccontextmanager
    async def open(cls, api: Api, token: str) -> AsyncIterator[Subscriptions]:
        async with api.websocket({"authorization": f"Bearer {token}"}) as session:
            ack = await session.receive()
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"WebSocket refused: {ack}")
            subs = cls(session.ws)
            reader = asyncio.create_task(subs._read())
            try:
                yield subs
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            queue = self._queues.get(str(message.get("id")))
            if queue is not None:
                queue.put_nowait(message)

    async def follow(
        self, query: str, variables: dict[str, Any], field: str, wait_s: float = 600
    ) -> tuple[dict[str, Any], float]:
        """Subscribe and wait for a terminal status: (final state, perf_counter when seen)."""
        op_id = str(next(self._ids))
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[op_id] = queue
        payload = {"query": query, "variables": variables}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        state: dict[str, Any] = {}
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    message = await queue.get()
                    if message["type"] == "next":
                        body = message["payload"]
                        if body.get("errors"):
                            raise RuntimeError(f"subscription error: {body['errors']}")
                        state = body["data"][field]
                        if state["status"] in TERMINAL:
                            return state, time.perf_counter()
                    elif message["type"] == "error":
                        raise RuntimeError(f"subscription error: {message['payload']}")
                    elif message["type"] == "complete":
                        raise RuntimeError(f"subscription completed at {state}")
        finally:
            del self._queues[op_id]
            if state.get("status") not in TERMINAL:
                with contextlib.suppress(Exception):
                    await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))


async def start_upload(
    api: Api, token: str, name: str, content: bytes, wait_s: float = 1800
) -> str:
    """Upload a CSV over GraphQL multipart (``uploadDataset``); the id of the import it queued."""
    variables = {"input": {"name": name, "file": None}}
    response = await api.http.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": UPLOAD, "variables": variables}),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": (f"{name}.csv", content, "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=wait_s,
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"upload failed: {body['errors']}")
    return str(body["data"]["uploadDataset"]["import"]["id"])


async def upload_csv(
    api: Api, token: str, subs: Subscriptions, name: str, content: bytes
) -> dict[str, Any]:
    """Upload over GraphQL multipart and follow the import to SUCCEEDED; the final state."""
    import_id = await start_upload(api, token, name, content)
    final, _ = await subs.follow(FOLLOW_IMPORT, {"id": import_id}, "datasetImport", 1800)
    if final["status"] != "SUCCEEDED":
        raise RuntimeError(f"import ended {final}")
    return final


async def bounded(limit: int, jobs: list[Any]) -> list[Any]:
    """Await coroutines with at most `limit` in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))
