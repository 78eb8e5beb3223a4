"""`tilegraph import`: the terminal shows what a person waits for, rows and MB/s, not a
fraction of one byte."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from tests.conftest import Users
from tests.support.client import Api
from tests.support.datasets import csv_bytes
from tests.support.stack import Stack


async def test_the_import_command_reports_rows_and_throughput(
    stack: Stack, api: Api, users: Users, worker: Any, tmp_path: Path
) -> None:
    owner = await users.create("importcli")
    path = tmp_path / "sales.csv"
    path.write_bytes(csv_bytes([["id", "amount"], *([i, i * 1.5] for i in range(20_000))]))
    done = await asyncio.to_thread(
        stack.run_cli,
        *("import", str(path), "--name", "Sales", "--server", api.base_url),
        env={"TILEGRAPH_TOKEN": owner["token"]},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert re.search(r"SUCCEEDED: 20,000 rows, version 1 .*, \d+\.\d MB/s", output), output
    assert re.search(r"import succeeded .* \d+\.\d MB/s +20,000 rows", output), output
    assert "1/1 bytes" not in output
