"""Starts the real components the tests talk to: moto's server mode (our emulator module)
and a private redis-server, then the API and workers as separate processes."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tilegraph.local.processes import free_port, port_open, stop_process, wait_for_port
from tilegraph.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
    )


# The test stack's cache Redis: bounded like production's must be (see card_results.py).
CACHE_REDIS_ARGS = ("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    # More redis-server options (a cache's maxmemory and eviction policy).
    options: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (run scripts/ensure-system-deps)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = _spawn(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.options,
            ],
            dict(os.environ),
            self.directory / "redis.log",
        )
        wait_for_port("127.0.0.1", self.port, timeout=15, process=self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Stack:
    """The environment of one test session: every process gets the same settings."""

    workdir: Path
    redis: RedisServer
    cache_redis: RedisServer
    aws_port: int
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls, workdir: Path) -> Stack:
        workdir.mkdir(parents=True, exist_ok=True)
        redis = RedisServer(free_port(), workdir / "redis")
        redis.start()
        cache_redis = RedisServer(free_port(), workdir / "redis-cache", options=CACHE_REDIS_ARGS)
        cache_redis.start()
        aws_port = free_port()
        tag = secrets.token_hex(3)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TILEGRAPH_")},
            "TILEGRAPH_ENV": "test",
            "TILEGRAPH_AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
            "TILEGRAPH_AWS_ACCESS_KEY_ID": "test",
            "TILEGRAPH_AWS_SECRET_ACCESS_KEY": "test",
            "TILEGRAPH_TABLE_PREFIX": f"t{tag}_",
            "TILEGRAPH_BUCKET": f"tilegraph-test-{tag}",
            # The one bucket users may import from (the `source_bucket` fixture creates it).
            "TILEGRAPH_S3_IMPORT_BUCKETS": f"sources-{tag}",
            "TILEGRAPH_INIT_STORE": "1",
            "TILEGRAPH_REDIS_URL": redis.url,
            "TILEGRAPH_CACHE_REDIS_URL": cache_redis.url,
            "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{tag}",
            "TILEGRAPH_JWT_SECRET": secrets.token_urlsafe(32),
            "TILEGRAPH_BCRYPT_ROUNDS": "4",
            "TILEGRAPH_TRUSTED_PROXIES": "127.0.0.1",
            "TILEGRAPH_LOG_JSON": "1",
            "TILEGRAPH_LOG_LEVEL": "INFO",
            # Short lifecycle timings so crash recovery is observable within a test.
            "TILEGRAPH_HEARTBEAT_SECONDS": "0.5",
            "TILEGRAPH_HEARTBEAT_TIMEOUT_SECONDS": "3",
            "TILEGRAPH_SWEEPER_INTERVAL_SECONDS": "1",
            "TILEGRAPH_IDLE_RECHECK_SECONDS": "1",
            "TILEGRAPH_REQUEUE_GRACE_SECONDS": "2",
            "TILEGRAPH_INGEST_BLOCK_BYTES": str(1 << 20),
            "TILEGRAPH_CARD_TIMEOUT_SECONDS": "8",
            "TILEGRAPH_SANDBOX_SLOTS": "2",
            "TILEGRAPH_REPORT_DB_REQUESTS": "1",
            "TILEGRAPH_TRANSFORM_TIMEOUT_SECONDS": "12",
            "TILEGRAPH_TRANSFORM_OUTPUT_MAX_BYTES": str(8 << 20),
            "PYTHONUNBUFFERED": "1",
        }
        stack = cls(
            workdir=workdir, redis=redis, cache_redis=cache_redis, aws_port=aws_port, env=env
        )
        emulator = stack.spawn(
            [sys.executable, "-m", "tilegraph.local.emulator", "--port", str(aws_port)],
            "aws-emulator",
        )
        wait_for_port("127.0.0.1", aws_port, timeout=60, process=emulator)
        return stack

    def aws(self, service: str) -> Any:
        """A plain boto3 client to the stack's emulator, to arrange or inspect stored state."""
        return boto3.client(
            service,
            endpoint_url=self.env["TILEGRAPH_AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def settings(self, overrides: dict[str, str] | None = None) -> Settings:
        """The settings every component of the session reads, with `overrides` on top."""
        return Settings.from_env({**self.env, **(overrides or {})})

    def spawn(
        self, args: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        process = _spawn(args, {**self.env, **(env or {})}, self.workdir / f"{name}.log")
        self.processes.append(process)
        return process

    def start_api(self, name: str = "api", env: dict[str, str] | None = None) -> ApiServer:
        port = free_port()
        process = self.spawn(
            [
                sys.executable,
                "-m",
                "tilegraph.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            name,
            env,
        )
        wait_for_port("127.0.0.1", port, timeout=60, process=process)
        return ApiServer(port, process, self.workdir / f"{name}.log")

    def start_worker(
        self, name: str = "worker", env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        process = self.spawn([sys.executable, "-m", "tilegraph.cli", "worker"], name, env)
        wait_for_log(self.workdir / f"{name}.log", "worker_started", process=process)
        return process

    def run_cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tilegraph.cli", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def close(self) -> None:
        for process in reversed(self.processes):
            stop_process(process, timeout=10)
        self.redis.stop()
        self.cache_redis.stop()


class LoopbackUrls:
    """The HTTP and WebSocket URLs of an API listening on a loopback `port`."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@dataclass
class ApiServer(LoopbackUrls):
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def wait_for_log(
    path: Path, marker: str, *, process: subprocess.Popen[bytes] | None = None, timeout: float = 60
) -> None:
    """Waits until a process writes `marker` to its log (its own readiness signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and marker in path.read_text(errors="replace"):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}; see {path}")
        time.sleep(0.05)
    raise TimeoutError(f"{marker!r} did not appear in {path} within {timeout}s")


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its group: no chance to clean up, as in a crash."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


__all__ = [
    "ApiServer",
    "RedisServer",
    "Stack",
    "free_port",
    "kill_hard",
    "port_open",
    "socket",
    "wait_for_log",
]
