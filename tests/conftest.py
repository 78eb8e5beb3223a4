"""Session fixtures: one real stack (AWS emulator, private redis-server) and, in the tests'
event loop, the API and a worker on it (tests/support/inprocess.py). Tests that need a
process of their own (a kill, a crash, the command line) start it from `stack`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import Api
from tests.support.inprocess import InProcess, InProcessApi, InProcessWorker
from tests.support.receiver import HttpReceiver
from tests.support.smtp import SmtpServer
from tests.support.stack import Stack

ADMIN_EMAIL = "admin@tests.example"
ADMIN_PASSWORD = "Admin-Passw0rd!"
USER_PASSWORD = "User-Passw0rd!"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("stack")
    stack = Stack.create(workdir)
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="session")
async def api_app(stack: Stack) -> AsyncIterator[InProcessApi]:
    """The session's API, with its admin."""
    app = await InProcessApi.start(stack.settings())
    try:
        await app.services.users.ensure_admin(ADMIN_EMAIL, "Administrator", ADMIN_PASSWORD)
        yield app
    finally:
        await app.stop()


@pytest.fixture(scope="session")
async def worker(stack: Stack) -> AsyncIterator[InProcessWorker]:
    """The session's worker, on the session queue; it also runs the sweeper."""
    worker = await InProcessWorker.start(stack.settings())
    try:
        yield worker
    finally:
        await worker.stop()


@pytest.fixture
async def inprocess(stack: Stack) -> AsyncIterator[InProcess]:
    """APIs and workers with settings of their own, for one test."""
    deployments = InProcess(stack)
    try:
        yield deployments
    finally:
        await deployments.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback (aiosmtpd) that keeps the messages it receives."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A real HTTP server on loopback that records requests and answers from a script."""
    receiver = HttpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="session")
def s3(stack: Stack) -> Any:
    """A plain boto3 client to the same emulator, to arrange source files for S3 imports
    and to look at what the server stored."""
    return stack.aws("s3")


@pytest.fixture(scope="session")
def source_bucket(s3: Any, stack: Stack) -> str:
    """The bucket the session's settings allow S3 imports from."""
    name = stack.env["TILEGRAPH_S3_IMPORT_BUCKETS"]
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
async def api(api_app: InProcessApi) -> AsyncIterator[Api]:
    client = Api(api_app.url, api_app.ws_url, api_app.transport)
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
