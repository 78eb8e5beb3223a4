"""S3 objects: streamed uploads with a size cap, streamed downloads, prefix deletes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

PART_SIZE = 8 << 20  # S3 parts must be >= 5 MiB except the last
DOWNLOAD_CHUNK = 1 << 20

ReadChunk = Callable[[int], Awaitable[bytes]]


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class ObjectMissing(Exception):
    """The object does not exist or cannot be read with our credentials."""


class ObjectStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    async def upload_stream(
        self, key: str, read: ReadChunk, *, max_bytes: int, content_type: str = "text/csv"
    ) -> int:
        """Copy a stream to S3 part by part (never whole in memory); UploadTooLarge past
        `max_bytes`, with nothing left behind."""
        upload = await self.s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            buffer = bytearray()
            while True:
                chunk = await read(1 << 20)
                if chunk:
                    total += len(chunk)
                    if total > max_bytes:
                        raise UploadTooLarge(max_bytes)
                    buffer += chunk
                if len(buffer) >= PART_SIZE or (not chunk and (buffer or not parts)):
                    number = len(parts) + 1
                    response = await self.s3.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=bytes(buffer),
                    )
                    parts.append({"ETag": response["ETag"], "PartNumber": number})
                    buffer.clear()
                if not chunk:
                    break
            await self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            await self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return total

    async def upload_file(self, path: Path, key: str) -> int:
        """Upload a local file; disk reads happen in a thread, off the event loop."""
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            size = os.fstat(handle.fileno()).st_size

            async def read(n: int) -> bytes:
                return await asyncio.to_thread(handle.read, n)

            if size <= PART_SIZE:
                await self.s3.put_object(Bucket=self.bucket, Key=key, Body=await read(size))
                return size
            return await self.upload_stream(
                key, read, max_bytes=size, content_type="application/octet-stream"
            )
        finally:
            handle.close()

    async def size_of(self, key: str, *, bucket: str | None = None) -> int:
        try:
            head = await self.s3.head_object(Bucket=bucket or self.bucket, Key=key)
        except ClientError as exc:
            raise ObjectMissing(key) from exc
        return int(head["ContentLength"])

    async def download(
        self,
        key: str,
        path: Path,
        *,
        bucket: str | None = None,
        on_bytes: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> int:
        """Stream an object to a local file; ObjectMissing when it cannot be read.
        ``on_bytes(done, size)`` follows the transfer after each chunk."""
        try:
            response = await self.s3.get_object(Bucket=bucket or self.bucket, Key=key)
        except ClientError as exc:
            raise ObjectMissing(key) from exc
        size = int(response.get("ContentLength") or 0)
        total = 0
        handle = await asyncio.to_thread(path.open, "wb")
        body = response["Body"]
        try:
            while True:
                chunk = await body.read(DOWNLOAD_CHUNK)
                if not chunk:
                    break
                await asyncio.to_thread(handle.write, chunk)
                total += len(chunk)
                if on_bytes is not None:
                    await on_bytes(total, size)
        finally:
            body.close()
            handle.close()
        return total

    async def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        await self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    async def get_bytes(self, key: str) -> bytes:
        """A whole (small) object; ObjectMissing when it cannot be read."""
        try:
            response = await self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise ObjectMissing(key) from exc
        body = response["Body"]
        try:
            data: bytes = await body.read()
            return data
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        try:
            await self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    async def presigned_download(self, key: str, *, filename: str, expires_in: int) -> str:
        """A GET link anyone holding it may follow until it expires (no token), that saves
        the object as `filename`."""
        url: str = await self.s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in,
        )
        return url

    async def delete(self, key: str) -> None:
        await self.s3.delete_object(Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        token: str | None = None
        while True:
            request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                request["ContinuationToken"] = token
            listing = await self.s3.list_objects_v2(**request)
            keys = [{"Key": o["Key"]} for o in listing.get("Contents", [])]
            if keys:
                await self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                deleted += len(keys)
            if not listing.get("IsTruncated"):
                return deleted
            token = listing.get("NextContinuationToken")
