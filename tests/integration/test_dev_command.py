"""`tilegraph dev` keeps its data across a restart, and opens on one's own machine what
production keeps closed: GraphiQL, and S3 imports from the emulator's `imports` bucket. Its
first start is honest: it refuses a taken port at once, runs its own Redis, shows the admin
the demo dashboard, and keeps request lines out of the terminal."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest

from tests.support.stack import ROOT, free_port, wait_for_log
from tilegraph.local.dev import DevError, wait_for_api
from tilegraph.local.processes import wait_for_port

LOGIN = "mutation($i: LoginInput!) { login(input: $i) { token user { email role } } }"


def _start_dev(
    data_dir: Path, port: int, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tilegraph.cli",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def _stop_dev(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(60)


def _gql(
    url: str, query: str, variables: dict[str, object], token: str | None = None
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        url, json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    return response.json()  # type: ignore[no-any-return]


def _dev_env() -> dict[str, str]:
    """The environment of a fresh machine: no TILEGRAPH_* settings but the admin's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILEGRAPH_")}
    env.update(
        {
            "TILEGRAPH_ADMIN_EMAIL": "owner@dev.example",
            "TILEGRAPH_ADMIN_PASSWORD": "Owner-passw0rd!",
        }
    )
    return env


def test_dev_restart_keeps_a_created_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    env = _dev_env()
    first_log, second_log = tmp_path / "dev-1.log", tmp_path / "dev-2.log"

    first = _start_dev(data_dir, port, env, first_log)
    try:
        # The demo workspace is made once the API answers; this line comes after it.
        wait_for_log(first_log, "Press Ctrl-C to stop", process=first, timeout=90)
        admin = _gql(
            url, LOGIN, {"i": {"email": "owner@dev.example", "password": "Owner-passw0rd!"}}
        )
        token = admin["data"]["login"]["token"]  # type: ignore[index]
        # The demo dashboard is the admin's to see (and edit), and the terminal says where.
        boards = _gql(url, "{ dashboards { edges { node { id name myPermission } } } }", {}, token)
        (board,) = [e["node"] for e in boards["data"]["dashboards"]["edges"]]  # type: ignore[index]
        assert board["name"] == "Sales overview" and board["myPermission"] == "EDITOR"
        directions = f'Demo dashboard: "Sales overview" (id {board["id"]}), shared with '
        assert directions in first_log.read_text()
        created = _gql(
            url,
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
            {"i": {"email": "kept@dev.example", "name": "Kept", "password": "Kept-passw0rd!"}},
            token,
        )
        assert "errors" not in created, created

        # It knew this API for its own by the id it gave it, which /healthz reports.
        health = httpx.get(url.replace("/graphql", "/healthz"), timeout=30).json()
        assert re.fullmatch(r"[0-9a-f]{32}", health["instance"]), health
        page = httpx.get(url, headers={"Accept": "text/html"}, timeout=30)
        assert page.status_code == 200 and "GraphiQL" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        emulator = re.search(
            r"S3 imports from: imports \(emulator at (http://[0-9.:]+),", first_log.read_text()
        )
        assert emulator, first_log.read_text()
        boto3.client(
            "s3",
            endpoint_url=emulator.group(1),
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ).put_object(Bucket="imports", Key="sales.csv", Body=b"region,amount\neast,1\n")
        imported = _gql(
            url,
            "mutation($i: ImportDatasetFromS3Input!) { importDatasetFromS3(input: $i) "
            "{ import { status } } }",
            {"i": {"name": "From the imports bucket", "bucket": "imports", "key": "sales.csv"}},
            token,
        )
        assert imported["data"]["importDatasetFromS3"]["import"]["status"] == "QUEUED", imported  # type: ignore[index]
    finally:
        assert _stop_dev(first) == 0
    first_output = first_log.read_text()
    assert (data_dir / "aws-state.pickle").exists()
    # Its own Redis under the data dir, named in the terminal; nobody else's DB 0.
    assert re.search(
        rf"Redis: redis://127\.0\.0\.1:\d+/0 \(its own, data in {re.escape(str(data_dir))}/redis",
        first_output,
    ), first_output
    assert "Ready to accept connections" in (data_dir / "redis" / "redis.log").read_text()
    # Request lines went to the access log, not to the terminal.
    requests = [
        json.loads(line)
        for line in (data_dir / "logs" / "access.log").read_text().splitlines()
        if line.strip()
    ]
    expected = {"event": "request", "method": "POST", "path": "/graphql", "status": 200}
    assert any(expected.items() <= line.items() for line in requests), requests[-3:]
    assert "path=/graphql" not in first_output and '"path"' not in first_output
    # The demo followed its import over a WebSocket: that connection is logged there too.
    assert "WebSocket /graphql" not in first_output
    assert any("WebSocket /graphql" in str(line.get("event")) for line in requests)
    # Card results went to a Redis of their own, bounded and evicting (card_results.py).
    cache_log = (data_dir / "redis-cache" / "redis.log").read_text()
    assert "Ready to accept connections" in cache_log

    second = _start_dev(data_dir, port, env, second_log)
    try:
        wait_for_log(second_log, "Tilegraph is running", process=second, timeout=90)
        again = _gql(url, LOGIN, {"i": {"email": "kept@dev.example", "password": "Kept-passw0rd!"}})
        assert again["data"]["login"]["user"] == {"email": "kept@dev.example", "role": "USER"}  # type: ignore[index]
        # The admin was not created twice, and its password was not reset.
        assert "Admin: owner@dev.example (password from" in first_log.read_text()
        assert "Admin: owner@dev.example\n" in second_log.read_text()
        # The demo workspace came with the first start only, and survived the restart.
        assert "Demo: demo@tilegraph.local / password: " in first_log.read_text()
        assert "Demo:" not in second_log.read_text()
        assert directions in second_log.read_text()
        demo_password = (
            first_log.read_text().split("Demo: demo@tilegraph.local / password: ")[1].split()[0]
        )
        demo = _gql(url, LOGIN, {"i": {"email": "demo@tilegraph.local", "password": demo_password}})
        demo_token = demo["data"]["login"]["token"]  # type: ignore[index]
        boards = _gql(url, "{ dashboards { edges { node { name cardCount } } } }", {}, demo_token)
        assert boards["data"]["dashboards"]["edges"][0]["node"] == {
            "name": "Sales overview",
            "cardCount": 3,
        }  # type: ignore[index]
    finally:
        assert _stop_dev(second) == 0


def test_dev_on_a_taken_port_exits_at_once_naming_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "dev.log"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        started = time.monotonic()
        dev = _start_dev(data_dir, port, _dev_env(), log)
        try:
            code = dev.wait(30)
        finally:
            if dev.poll() is None:
                _stop_dev(dev)
        took = time.monotonic() - started
    output = log.read_text()
    assert code != 0, output
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "running" not in output
    assert took < 15, took
    # Nothing was started: no emulator state, no Redis of its own.
    assert (
        not (data_dir / "redis").exists() and not (data_dir / "logs" / "aws-emulator.log").exists()
    )


def test_another_server_answering_on_the_port_is_not_taken_for_our_api(tmp_path: Path) -> None:
    """The port check can race with another program; then only the instance id tells."""
    port = free_port()
    health = tmp_path / "healthz"
    health.write_text(json.dumps({"status": "ok", "instance": "someone-else"}))
    stranger = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=15, process=stranger)
        with pytest.raises(DevError, match="another server answers"):
            wait_for_api(f"http://127.0.0.1:{port}", "ours", stranger, timeout=2)
        wait_for_api(f"http://127.0.0.1:{port}", "someone-else", stranger, timeout=5)
    finally:
        stranger.terminate()
        stranger.wait(10)
