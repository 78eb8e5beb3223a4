"""Card results: HTML in the Redis cache (keyed by the card cache key, with a TTL) and a
durable copy in S3 under the same key, so an execution's HTML outlives the cache. A card's
table (HTMLResult.table) is stored only in S3, as Parquet beside the HTML (and as the CSV or
XLSX made from it on request); the cache entry carries its metrics and the table's summary.

Both have a size bound. The cache Redis is meant to be a Redis of its own
(`TILEGRAPH_CACHE_REDIS_URL`) with `maxmemory` and `allkeys-lru`, so the oldest results are
evicted instead of growing into the memory that the queue, events and the token denylist
need; `bound_problem` says when it is not. It is a cache only: while Redis is unreachable
every lookup is a miss and HTML is read from S3. The S3 copies expire by a lifecycle rule on their
prefix (`result_expiry_rule`, put when the app sets up its bucket), after
`TILEGRAPH_CARD_RESULT_RETENTION_DAYS`."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
from botocore.exceptions import ClientError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tilegraph.domain.card_outputs import Metrics, TableFormat, TableSummary
from tilegraph.store import table_files
from tilegraph.store.objects import ObjectMissing, ObjectStore


@dataclass(frozen=True)
class CachedCard:
    html: str
    used_columns: list[str]
    filter_applicable: list[str]
    execution_time_ms: float
    metrics: Metrics | None = None
    table: TableSummary | None = None


def _cached(raw: bytes) -> CachedCard:
    data = orjson.loads(raw)
    table = data.get("table")
    return CachedCard(
        data["html"],
        data["used_columns"],
        data["filter_applicable"],
        float(data["execution_time_ms"]),
        data.get("metrics"),
        TableSummary.from_item(table) if table else None,
    )


def _redis_key(cache_key: str) -> str:
    return f"card:cache:{cache_key}"


S3_PREFIX = "card-results/"
EXPIRY_RULE_ID = "tilegraph-card-results-expire"


def _s3_key(cache_key: str) -> str:
    return f"{S3_PREFIX}{cache_key}.html"


_TABLE_SUFFIX = {TableFormat.PARQUET: "parquet", TableFormat.CSV: "csv", TableFormat.XLSX: "xlsx"}


def table_key(cache_key: str, table_format: TableFormat) -> str:
    """Under the results' prefix, so a table expires with its HTML."""
    return f"{S3_PREFIX}{cache_key}.table.{_TABLE_SUFFIX[table_format]}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def result_expiry_rule(days: int) -> dict[str, Any]:
    return {
        "ID": EXPIRY_RULE_ID,
        "Filter": {"Prefix": S3_PREFIX},
        "Status": "Enabled",
        "Expiration": {"Days": days},
    }


async def ensure_result_expiry(s3: Any, bucket: str, days: int) -> None:
    """Puts the expiry rule of the S3 copies on the bucket, keeping any other rules."""
    try:
        current = await s3.get_bucket_lifecycle_configuration(Bucket=bucket)
        rules = [r for r in current.get("Rules", []) if r.get("ID") != EXPIRY_RULE_ID]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    await s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*rules, result_expiry_rule(days)]}
    )


class CardResults:
    def __init__(
        self,
        redis: Redis,
        objects: ObjectStore,
        ttl_seconds: int,
        filesystem: pafs.FileSystem | None = None,
    ) -> None:
        self.redis = redis
        self.objects = objects
        self.ttl = ttl_seconds
        # Reads a table's first rows by range requests, not the whole object.
        self.filesystem = filesystem

    async def bound_problem(self, main: Redis) -> str | None:
        """Why the cache is not bounded apart from the main Redis, or None when it is."""
        if self.redis is main:
            return (
                "card results are cached in the main Redis, beside the queue and the token "
                "denylist; set TILEGRAPH_CACHE_REDIS_URL to a Redis with maxmemory and "
                "allkeys-lru"
            )
        try:
            config = await self.redis.config_get("maxmemory*")
        except RedisError:
            return None  # managed Redis often refuses CONFIG: trust the operator
        values = {_text(k): _text(v) for k, v in config.items()}
        if values.get("maxmemory", "0") == "0" or not values.get("maxmemory-policy", "").startswith(
            "allkeys-"
        ):
            return (
                "the cache Redis has no maxmemory with an allkeys-* eviction policy "
                f"(maxmemory={values.get('maxmemory')}, "
                f"maxmemory-policy={values.get('maxmemory-policy')}); results will grow "
                "without bound"
            )
        return None

    async def lookup_many(self, cache_keys: list[str]) -> dict[str, CachedCard]:
        """The cached results among `cache_keys`, in one MGET."""
        unique = list(dict.fromkeys(cache_keys))
        if not unique:
            return {}
        try:
            raws = await self.redis.mget([_redis_key(k) for k in unique])
        except RedisError:
            return {}
        return {key: _cached(raw) for key, raw in zip(unique, raws, strict=True) if raw}

    async def store(
        self, cache_key: str, result: CachedCard, table: pa.Table | None = None
    ) -> None:
        """Both copies at once: the fast one for hits, the durable one for later reads. The
        table is written before the cache entry that announces it, so a hit finds it."""
        entry: dict[str, Any] = {
            "html": result.html,
            "used_columns": result.used_columns,
            "filter_applicable": result.filter_applicable,
            "execution_time_ms": result.execution_time_ms,
        }
        if result.metrics is not None:
            entry["metrics"] = result.metrics
        if result.table is not None:
            entry["table"] = result.table.to_item()
        html = self.objects.s3.put_object(
            Bucket=self.objects.bucket,
            Key=_s3_key(cache_key),
            Body=result.html.encode(),
            ContentType="text/html; charset=utf-8",
        )
        if table is None:
            await asyncio.gather(html, self._cache(_redis_key(cache_key), orjson.dumps(entry)))
            return
        await asyncio.gather(html, self.store_table(cache_key, table))
        await self._cache(_redis_key(cache_key), orjson.dumps(entry))

    async def store_table(self, cache_key: str, table: pa.Table) -> None:
        body = await asyncio.to_thread(table_files.to_parquet, table)
        await self.objects.put_bytes(
            table_key(cache_key, TableFormat.PARQUET), body, table_files.CONTENT_TYPES["parquet"]
        )

    async def read_table(self, cache_key: str) -> pa.Table | None:
        """The stored table, or None once it has expired (or never existed)."""
        try:
            body = await self.objects.get_bytes(table_key(cache_key, TableFormat.PARQUET))
        except ObjectMissing:
            return None
        return await asyncio.to_thread(table_files.from_parquet, body)

    async def first_rows(self, cache_key: str, limit: int) -> list[list[Any]] | None:
        """The table's first `limit` rows as Python values, None when it is gone. Only the
        footer and the first row group are fetched (the table is written in small ones)."""
        key = table_key(cache_key, TableFormat.PARQUET)
        if self.filesystem is None:
            try:
                body = await self.objects.get_bytes(key)
            except ObjectMissing:
                return None
            return await asyncio.to_thread(table_files.first_rows, pa.BufferReader(body), limit)
        path = f"{self.objects.bucket}/{key}"
        try:
            return await asyncio.to_thread(self._first_rows_of, path, limit)
        except FileNotFoundError:
            return None

    def _first_rows_of(self, path: str, limit: int) -> list[list[Any]]:
        assert self.filesystem is not None
        with self.filesystem.open_input_file(path) as source:
            return table_files.first_rows(source, limit)

    async def table_download(
        self, cache_key: str, table_format: TableFormat, filename: str, expires_in: int
    ) -> str | None:
        """A presigned link to the table in `table_format`: the CSV or XLSX is made from the
        Parquet on its first request and stored beside it. None when the table is gone."""
        key = table_key(cache_key, table_format)
        if not await self.objects.exists(key):
            if table_format is TableFormat.PARQUET:
                return None
            table = await self.read_table(cache_key)
            if table is None:
                return None
            suffix = _TABLE_SUFFIX[table_format]
            body = await asyncio.to_thread(table_files.CONVERTERS[suffix], table)
            await self.objects.put_bytes(key, body, table_files.CONTENT_TYPES[suffix])
        return await self.objects.presigned_download(
            key, filename=f"{filename}.{_TABLE_SUFFIX[table_format]}", expires_in=expires_in
        )

    async def _cache(self, key: str, payload: bytes) -> None:
        with contextlib.suppress(RedisError):
            await self.redis.set(key, payload, ex=self.ttl)

    async def html(self, cache_key: str) -> str | None:
        try:
            cached = await self.redis.get(_redis_key(cache_key))
        except RedisError:
            cached = None
        if cached:
            return str(orjson.loads(cached)["html"])
        try:
            response = await self.objects.s3.get_object(
                Bucket=self.objects.bucket, Key=_s3_key(cache_key)
            )
        except ClientError:
            return None
        body = response["Body"]
        try:
            text: str = (await body.read()).decode()
            return text
        finally:
            body.close()
