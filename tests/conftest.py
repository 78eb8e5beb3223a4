"""Session fixtures: one real stack (AWS emulator, private redis-server, API process)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.client import Api
from tests.support.stack import ApiServer, Stack

ADMIN_EMAIL = "admin@tests.example"
ADMIN_PASSWORD = "Admin-Passw0rd!"
USER_PASSWORD = "User-Passw0rd!"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("stack")
    stack = Stack.create(workdir)
    try:
        result = stack.run_cli("create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
        assert result.returncode == 0, result.stderr
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="session")
def api_server(stack: Stack) -> ApiServer:
    return stack.start_api()


@pytest.fixture(scope="session")
def worker(stack: Stack) -> subprocess.Popen[bytes]:
    """The session's worker, on the session queue; it also runs the sweeper."""
    return stack.start_worker()


@pytest.fixture(scope="session")
def s3(stack: Stack) -> Any:
    """A plain boto3 client to the same emulator, to arrange source files for S3 imports
    and to look at what the server stored."""
    return boto3.client(
        "s3",
        endpoint_url=stack.env["TILEGRAPH_AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="session")
def source_bucket(s3: Any) -> str:
    name = f"sources-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
async def api(api_server: ApiServer) -> AsyncIterator[Api]:
    client = Api(api_server.url, api_server.ws_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def admin_token(api: Api) -> str:
    return await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)


class Users:
    """Creates users through the API (as the admin) and signs them in."""

    def __init__(self, api: Api, admin_token: str) -> None:
        self.api = api
        self.admin_token = admin_token

    async def create(
        self, name: str = "user", password: str = USER_PASSWORD, role: str = "USER"
    ) -> dict[str, str]:
        email = f"{name}-{secrets.token_hex(4)}@tests.example"
        data = await self.api.ok(
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id email } } }",
            {"i": {"email": email, "name": name, "password": password, "role": role}},
            token=self.admin_token,
        )
        user = data["createUser"]["user"]
        token = await self.api.login(email, password)
        return {"id": user["id"], "email": email, "password": password, "token": token}


@pytest.fixture(scope="session")
def users(api: Api, admin_token: str) -> Users:
    return Users(api, admin_token)
