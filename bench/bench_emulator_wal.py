"""The cost per write of the AWS emulator's write-ahead log: PutItem latency against an
emulator that logs and fsyncs every write before replying, beside one that keeps nothing
(no state file), both started by this run and measured alternately.

One client measures the latency a single writer sees (one fsync per write); several
concurrent clients show group commit: writers waiting at once share one fsync, so the
throughput with the log stays close to the throughput without it.

    .venv/bin/python bench/bench_emulator_wal.py [--writes 400] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tilegraph.local.processes import free_port, stop_process

TABLE = "bench"


def _start(state_file: Path | None, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [sys.executable, "-m", "tilegraph.cli", "aws-emulator", "--port", str(port)]
    if state_file is not None:
        args += ["--state-file", str(state_file)]
    with log.open("ab") as handle:
        process = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    client = _client(url)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_tables()
            break
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return process, url


def _client(url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=64),
    )


def _put(client: Any, key: str) -> float:
    began = time.perf_counter()
    client.put_item(TableName=TABLE, Item={"pk": {"S": key}, "value": {"S": "x" * 200}})
    return time.perf_counter() - began


def _throughput(url: str, threads: int, writes: int) -> float:
    """Writes per second with `threads` concurrent writers."""
    clients = [_client(url) for _ in range(threads)]
    for number, client in enumerate(clients):
        _put(client, f"warm-{number}")

    def run(number: int) -> None:
        for sequence in range(writes // threads):
            _put(clients[number], f"t{number}-{sequence}")

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (writes // threads * threads) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        logged, logged_url = _start(directory / "aws-state.pickle", directory / "logged.log")
        plain, plain_url = _start(None, directory / "plain.log")
        try:
            clients = {"log": _client(logged_url), "none": _client(plain_url)}
            latencies: dict[str, list[float]] = {"log": [], "none": []}
            for sequence in range(20):  # warm-up
                for client in clients.values():
                    _put(client, f"warm-{sequence}")
            for sequence in range(args.writes):
                for name, client in clients.items():
                    latencies[name].append(_put(client, f"k{sequence}"))
            with_log = statistics.median(latencies["log"])
            without = statistics.median(latencies["none"])
            print(f"PutItem, one writer, {args.writes} writes each, alternating:")
            print(f"  median without log  {without * 1000:7.2f} ms")
            print(f"  median with log     {with_log * 1000:7.2f} ms  (fsynced before reply)")
            print(f"  ratio               {with_log / without:7.2f}x")
            fsync = _fsync_cost(directory)
            print(f"  (one fsync of this disk alone: {fsync * 1000:.2f} ms)")
            tput_log = _throughput(logged_url, args.threads, args.writes)
            tput_none = _throughput(plain_url, args.threads, args.writes)
            print(f"PutItem, {args.threads} concurrent writers (group commit):")
            print(f"  without log  {tput_none:7.0f} writes/s")
            print(f"  with log     {tput_log:7.0f} writes/s  ({tput_log / tput_none:.2f}x)")
        finally:
            stop_process(logged)
            stop_process(plain)


def _fsync_cost(directory: Path) -> float:
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        times = []
        for _ in range(20):
            os.write(fd, b"x" * 300)
            began = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - began)
        return statistics.median(times)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
