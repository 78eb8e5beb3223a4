"""Real sandboxes (bubblewrap and process mode) shared by the executor tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tilegraph.executor import Sandbox


@pytest.fixture(scope="session")
async def bwrap_sandbox() -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(mode="bwrap", slots=2, prefork=2)
    await sandbox.start()
    yield sandbox
    await sandbox.close()


@pytest.fixture(scope="session")
async def process_sandbox() -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(mode="process", slots=2, prefork=2)
    await sandbox.start()
    yield sandbox
    await sandbox.close()


@pytest.fixture(params=["bwrap", "process"])
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Each test using this runs once per mode."""
    return request.getfixturevalue(f"{request.param}_sandbox")  # type: ignore[no-any-return]
