"""The AWS emulator as its own process (as `tilegraph dev` runs it), with clients to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tilegraph.local.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]


class Emulator:
    """`tilegraph aws-emulator` on a state file; restarts keep the port and the state."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.state_file = directory / "aws-state.pickle"
        self.log = directory / "aws-emulator.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> float:
        """Start it and return the seconds until it answers a request."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tilegraph.cli", "aws-emulator"),
                    *("--port", str(self.port), "--state-file", str(self.state_file)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        probe = self.client("dynamodb", timeout=1)
        deadline = started + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self.process.returncode}")
            try:
                probe.list_tables()
                return time.monotonic() - started
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is flushed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.log_text().count(text) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in the emulator's log:\n{self.log_text()}")
            time.sleep(0.02)

    def client(self, service: str, *, timeout: float = 10) -> Any:
        """No retries: a write counts as acknowledged only if its one request succeeded."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=timeout,
                read_timeout=timeout,
                s3={"addressing_style": "path"},
                max_pool_connections=16,
            ),
        )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    instance = Emulator(tmp_path / "emulator")
    try:
        yield instance
    finally:
        instance.stop()
