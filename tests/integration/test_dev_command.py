"""`tilegraph dev` keeps its data across a restart, and opens on one's own machine what
production keeps closed: GraphiQL, and S3 imports from the emulator's `imports` bucket."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import httpx

from tests.support.stack import ROOT, Stack, free_port, wait_for_log

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


def test_dev_restart_keeps_a_created_user(stack: Stack, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILEGRAPH_")}
    env.update(
        {
            "TILEGRAPH_REDIS_URL": stack.redis.url,
            "TILEGRAPH_ADMIN_EMAIL": "owner@dev.example",
            "TILEGRAPH_ADMIN_PASSWORD": "Owner-passw0rd!",
        }
    )
    first_log, second_log = tmp_path / "dev-1.log", tmp_path / "dev-2.log"

    first = _start_dev(data_dir, port, env, first_log)
    try:
        wait_for_log(first_log, "Tilegraph is running", process=first, timeout=90)
        admin = _gql(
            url, LOGIN, {"i": {"email": "owner@dev.example", "password": "Owner-passw0rd!"}}
        )
        token = admin["data"]["login"]["token"]  # type: ignore[index]
        created = _gql(
            url,
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
            {"i": {"email": "kept@dev.example", "name": "Kept", "password": "Kept-passw0rd!"}},
            token,
        )
        assert "errors" not in created, created

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
    assert (data_dir / "aws-state.pickle").exists()
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
