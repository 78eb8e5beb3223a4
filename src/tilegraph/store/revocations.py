"""Revoked token ids in DynamoDB, each item expiring (DynamoDB TTL on `expires_at`) when
its token would have expired anyway. The source of truth behind auth/revocation.py."""

from __future__ import annotations

import time

from tilegraph.store.dynamo import Dynamo

TABLE = "revoked_tokens"


class RevocationRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def revoke(self, jti: str, expires_at: int) -> None:
        await self.db.put(TABLE, {"jti": jti, "expires_at": int(expires_at)})

    async def is_revoked(self, jti: str) -> bool:
        item = await self.db.get(TABLE, {"jti": jti})
        # DynamoDB deletes expired items only eventually; an expired token fails anyway.
        return item is not None and int(item.get("expires_at", 0)) > time.time()
