"""`tilegraph import FILE --name NAME`: upload a CSV through the API with a progress bar,
then follow the import over the GraphQL subscription until it ends."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx
import websockets
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from websockets.typing import Subprotocol

from tilegraph.local.api_client import ApiError, sign_in

UPLOAD = """mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) {
  dataset { id } import { id status } } }"""
FOLLOW = """subscription($id: ID!) { datasetImport(id: $id) {
  status progress rowsProcessed bytesProcessed error { code message line }
  dataset { id version rowCount } } }"""


class ImportError_(RuntimeError):
    """A failure worded for the person at the terminal."""


class _ProgressReader(io.RawIOBase):
    """A file object that advances a progress bar as httpx reads it."""

    def __init__(self, handle: BinaryIO, progress: Progress, task: Any) -> None:
        self.handle = handle
        self.progress = progress
        self.task = task

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.progress.advance(self.task, len(chunk))
        return chunk


class _AverageSpeed(ProgressColumn):
    """MB/s since the task began: an import may report only its final state, which leaves
    rich's moving estimate without samples."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not task.completed or elapsed <= 0:
            return Text("")
        return Text(f"{task.completed / elapsed / 1e6:.1f} MB/s", style="progress.data.speed")


def _upload(server: str, token: str, path: Path, name: str, progress: Progress) -> str:
    task = progress.add_task("upload", total=path.stat().st_size, rows="")
    operations = {"query": UPLOAD, "variables": {"input": {"name": name, "file": None}}}
    with path.open("rb") as handle:
        response = httpx.post(
            f"{server}/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.input.file"]}),
            },
            files={
                "0": (
                    path.name,
                    cast(BinaryIO, _ProgressReader(handle, progress, task)),
                    "text/csv",
                )
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=None,
        )
    progress.stop_task(task)  # its speed stays that of the upload, not of the wait after
    try:
        body = response.json()
    except ValueError as exc:
        raise ImportError_(f"The server answered {response.status_code}") from exc
    if body.get("errors"):
        raise ImportError_(body["errors"][0]["message"])
    return str(body["data"]["uploadDataset"]["import"]["id"])


async def _follow(
    server: str, token: str, import_id: str, size: int, progress: Progress
) -> dict[str, Any]:
    """Follows the import; its bar counts the file's bytes read (so it shows MB and MB/s)
    and the rows parsed so far."""
    url = server.replace("http://", "ws://").replace("https://", "wss://") + "/graphql"
    task = progress.add_task("import", total=size, rows="")
    async with websockets.connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            raise ImportError_("The server refused the connection")
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": FOLLOW, "variables": {"id": import_id}},
                }
            )
        )
        state: dict[str, Any] = {}
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "next":
                payload = message["payload"]
                if payload.get("errors"):
                    raise ImportError_(payload["errors"][0]["message"])
                state = payload["data"]["datasetImport"]
                read = state.get("bytesProcessed")
                if read is None:
                    read = (state.get("progress") or 0.0) * size
                progress.update(
                    task,
                    completed=min(read, size),
                    description=f"import {state['status'].lower()}",
                    rows=f"{state.get('rowsProcessed') or 0:,} rows",
                )
            elif message.get("type") in ("complete", "error"):
                break
        progress.stop_task(task)
        return state


def _throughput(size: int, seconds: float) -> str:
    megabytes = size / 1e6
    return f"{megabytes:.1f} MB in {seconds:.1f}s, {megabytes / max(seconds, 1e-3):.1f} MB/s"


def run_import(path: Path, name: str, server: str, token: str | None, email: str | None) -> int:
    server = server.rstrip("/")
    try:
        if not path.is_file():
            raise ImportError_(f"{path} is not a file")
        token = sign_in(server, token, email)
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            _AverageSpeed(),
            TextColumn("{task.fields[rows]}"),
            TimeRemainingColumn(),
        ]
        size = path.stat().st_size
        started = time.monotonic()
        with Progress(*columns, transient=False) as progress:
            import_id = _upload(server, token, path, name, progress)
            final = asyncio.run(_follow(server, token, import_id, size, progress))
    except (
        ImportError_,
        ApiError,
        httpx.HTTPError,
        OSError,
        websockets.WebSocketException,
    ) as exc:
        print(f"tilegraph import: {exc}", file=sys.stderr)
        return 1
    status = final.get("status")
    if status == "SUCCEEDED":
        dataset = final["dataset"]
        print(
            f"SUCCEEDED: {dataset['rowCount']:,} rows, version {dataset['version']} "
            f"(dataset {dataset['id']}); {_throughput(size, time.monotonic() - started)}"
        )
        return 0
    error = final.get("error") or {}
    line = f" at line {error['line']}" if error.get("line") else ""
    print(f"{status}: {error.get('message', 'the import did not finish')}{line}", file=sys.stderr)
    return 1
