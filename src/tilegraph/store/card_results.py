"""Card results: HTML in the Redis cache (keyed by the card cache key, with a TTL) and a
durable copy in S3 under the same key, so an execution's HTML outlives the cache."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
from botocore.exceptions import ClientError
from redis.asyncio import Redis

from tilegraph.store.objects import ObjectStore


@dataclass(frozen=True)
class CachedCard:
    html: str
    used_columns: list[str]
    filter_applicable: list[str]
    execution_time_ms: float


def _cached(raw: bytes) -> CachedCard:
    data = orjson.loads(raw)
    return CachedCard(
        data["html"],
        data["used_columns"],
        data["filter_applicable"],
        float(data["execution_time_ms"]),
    )


def _redis_key(cache_key: str) -> str:
    return f"card:cache:{cache_key}"


def _s3_key(cache_key: str) -> str:
    return f"card-results/{cache_key}.html"


class CardResults:
    def __init__(self, redis: Redis, objects: ObjectStore, ttl_seconds: int) -> None:
        self.redis = redis
        self.objects = objects
        self.ttl = ttl_seconds

    async def lookup_many(self, cache_keys: list[str]) -> dict[str, CachedCard]:
        """The cached results among `cache_keys`, in one MGET."""
        unique = list(dict.fromkeys(cache_keys))
        if not unique:
            return {}
        raws = await self.redis.mget([_redis_key(k) for k in unique])
        return {key: _cached(raw) for key, raw in zip(unique, raws, strict=True) if raw}

    async def store(self, cache_key: str, result: CachedCard) -> None:
        """Both copies at once: the fast one for hits, the durable one for later reads."""
        payload = orjson.dumps(
            {
                "html": result.html,
                "used_columns": result.used_columns,
                "filter_applicable": result.filter_applicable,
                "execution_time_ms": result.execution_time_ms,
            }
        )
        await asyncio.gather(
            self.redis.set(_redis_key(cache_key), payload, ex=self.ttl),
            self.objects.s3.put_object(
                Bucket=self.objects.bucket,
                Key=_s3_key(cache_key),
                Body=result.html.encode(),
                ContentType="text/html; charset=utf-8",
            ),
        )

    async def html(self, cache_key: str) -> str | None:
        cached = await self.redis.get(_redis_key(cache_key))
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
