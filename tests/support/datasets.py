"""Uploading CSVs through the GraphQL multipart spec and following imports over WebSocket."""

from __future__ import annotations

import functools
import json
import secrets
from typing import Any

from tests.support.client import Api

UPLOAD = """mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) {
  dataset { id name version } import { id status } } }"""
IMPORT_S3 = """mutation($input: ImportDatasetFromS3Input!) { importDatasetFromS3(input: $input) {
  dataset { id name version sourceType sourceConfig } import { id status } } }"""
FOLLOW = """subscription($id: ID!) { datasetImport(id: $id) {
  id status progress rowsProcessed bytesProcessed error { code message line }
  dataset { id version rowCount } } }"""
DATASET = """query($id: ID!) { dataset(id: $id) { id name version rowCount columnCount
  columns { name type nullable description } lastImportAt lastImportBy { id }
  latestImport { id status } owner { id } sourceType sourceConfig } }"""


async def upload(
    api: Api,
    token: str,
    content: bytes,
    *,
    name: str = "data",
    filename: str = "data.csv",
    **options: Any,
) -> dict[str, Any]:
    variables = {"input": {"name": name, "file": None, **options}}
    response = await api.http.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": UPLOAD, "variables": variables}),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": (filename, content, "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if body.get("errors"):
        return {"errors": body["errors"], "status": response.status_code}
    return body["data"]["uploadDataset"]  # type: ignore[no-any-return]


async def follow_import(
    api: Api, token: str, import_id: str, timeout: float = 120
) -> list[dict[str, Any]]:
    """Every state the subscription delivers, until it completes."""
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW, {"id": import_id})
        events = []
        async for payload in session.messages(op, timeout=timeout):
            events.append(payload)
        return [e["data"]["datasetImport"] if e.get("data") else e for e in events]


async def import_and_wait(
    api: Api, token: str, content: bytes, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    uploaded = await upload(api, token, content, **kwargs)
    assert "errors" not in uploaded, uploaded
    final = (await follow_import(api, token, uploaded["import"]["id"]))[-1]
    return uploaded, final


async def import_s3_and_wait(
    api: Api, token: str, s3: Any, bucket: str, content: bytes, *, name: str = "s3", **options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Put ``content`` under a fresh key of ``bucket``, import it and follow the import: the
    mutation's payload and the import's final state."""
    key = f"sources/{secrets.token_hex(4)}.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=content)
    variables = {"input": {"name": name, "bucket": bucket, "key": key, **options}}
    payload = (await api.ok(IMPORT_S3, variables, token=token))["importDatasetFromS3"]
    final = (await follow_import(api, token, payload["import"]["id"]))[-1]
    return payload, final


def csv_bytes(rows: list[list[Any]], *, delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    lines = [delimiter.join("" if v is None else str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


@functools.cache
def big_csv(megabytes: int) -> bytes:
    """A CSV of roughly this size, generated in blocks once per session: making 48 MB takes
    seconds of this process's event loop, where the in-process API and worker run."""
    header = "id,region,amount,day,flag\n"
    block_rows = 20_000
    regions = ["north", "south", "east", "west"]
    chunks = [header]
    size = len(header)
    start = 0
    while size < megabytes << 20:
        block = "".join(
            f"{i},{regions[i % 4]},{i * 1.25:.2f},2024-01-{1 + i % 28:02d},{'true' if i % 2 else 'false'}\n"
            for i in range(start, start + block_rows)
        )
        chunks.append(block)
        size += len(block)
        start += block_rows
    return "".join(chunks).encode()
