"""`tilegraph dev` stays up through faults: a child that dies is restarted (with a message
and a backoff) instead of the product stopping, and a 3-second Redis outage passes."""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

import boto3
import httpx

from tests.integration.test_dev_command import _gql, _start_dev, _stop_dev
from tests.support.stack import RedisServer, Stack, free_port, wait_for_log

LOGIN = "mutation($i: LoginInput!) { login(input: $i) { token } }"
IMPORT = """mutation($i: ImportDatasetFromS3Input!) { importDatasetFromS3(input: $i) {
  import { id } } }"""
IMPORT_STATUS = "query($id: ID!) { datasetImport(id: $id) { status } }"


def _children(parent: int) -> dict[int, str]:
    """The processes whose parent is `parent`, by pid, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found[int(entry.name)] = cmdline
    return found


def _worker_pid(dev: int) -> int:
    (pid,) = [p for p, cmd in _children(dev).items() if "tilegraph.cli worker" in cmd]
    return pid


def _import_succeeds(url: str, token: str, timeout: float = 60) -> float:
    """An import of the emulator's imports bucket runs to SUCCEEDED: the worker is up."""
    started = time.monotonic()
    data = _gql(url, IMPORT, {"i": {"name": "probe", "bucket": "imports", "key": "p.csv"}}, token)
    import_id = data["data"]["importDatasetFromS3"]["import"]["id"]  # type: ignore[index]
    while time.monotonic() - started < timeout:
        state = _gql(url, IMPORT_STATUS, {"id": import_id}, token)
        status = state["data"]["datasetImport"]["status"]  # type: ignore[index]
        if status == "SUCCEEDED":
            return time.monotonic() - started
        assert status in {"QUEUED", "RUNNING"}, state
        time.sleep(0.2)
    raise AssertionError(f"the import did not end within {timeout}s")


def test_dev_restarts_a_killed_worker_and_outlives_a_redis_outage(
    stack: Stack, tmp_path: Path
) -> None:
    redis = RedisServer(free_port(), tmp_path / "redis")
    redis.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILEGRAPH_")}
    env.update(
        {
            "TILEGRAPH_REDIS_URL": redis.url,
            "TILEGRAPH_QUEUE_NAME": f"tilegraph:devfault:{secrets.token_hex(3)}",
            "TILEGRAPH_ADMIN_EMAIL": "owner@dev.example",
            "TILEGRAPH_ADMIN_PASSWORD": "Owner-passw0rd!",
            "TILEGRAPH_SANDBOX_SLOTS": "1",
        }
    )
    log = tmp_path / "dev.log"
    dev = _start_dev(tmp_path / "data", port, env, log)
    try:
        wait_for_log(log, "Press Ctrl-C to stop", process=dev, timeout=120)
        token = _gql(
            url, LOGIN, {"i": {"email": "owner@dev.example", "password": "Owner-passw0rd!"}}
        )["data"]["login"]["token"]  # type: ignore[index]
        emulator = log.read_text().split("(emulator at ")[1].split(",")[0]
        boto3.client(
            "s3",
            endpoint_url=emulator,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ).put_object(Bucket="imports", Key="p.csv", Body=b"a,b\n1,2\n")

        # kill -9 the worker: dev says so, starts another, and the product goes on.
        os.kill(_worker_pid(dev.pid), signal.SIGKILL)
        killed = time.monotonic()
        wait_for_log(log, "worker exited with -9; restarting in", process=dev, timeout=10)
        wait_for_log(log, "worker restarted", process=dev, timeout=15)
        took = _import_succeeds(url, str(token))
        print(f"dev: worker kill -9 → an import SUCCEEDED {time.monotonic() - killed:.1f} s later")
        assert took < 60

        # Redis away for 3 s: nothing exits, and work goes on once it is back.
        redis.stop()
        time.sleep(3)  # the outage itself, not a synchronisation
        redis.start()
        back = time.monotonic()
        assert dev.poll() is None
        _import_succeeds(url, str(token))
        print(f"dev: Redis back → an import SUCCEEDED {time.monotonic() - back:.1f} s later")
        assert httpx.get(url.replace("/graphql", "/healthz"), timeout=10).status_code == 200
        assert "stopping" not in log.read_text()
        assert log.read_text().count("restarted") == 1, log.read_text()  # only the killed one
    finally:
        assert _stop_dev(dev) == 0
        redis.stop()
