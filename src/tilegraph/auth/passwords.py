"""bcrypt hashing off the event loop, with a dummy hash so unknown users take as long."""

from __future__ import annotations

import asyncio

import bcrypt


class PasswordHasher:
    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        # Verifying against this keeps the timing of "no such user" equal to "wrong password".
        self._dummy_hash = bcrypt.hashpw(b"tilegraph-dummy-password", bcrypt.gensalt(rounds))

    def hash_sync(self, password: str) -> str:
        return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(self.rounds)).decode()

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True only for a real hash that matches; always spends one bcrypt verification."""
        target = (password_hash or "").encode() or self._dummy_hash
        candidate = password.encode("utf-8")
        if len(candidate) > 72:
            # bcrypt refuses these; still spend the same time so length is not an oracle.
            candidate = candidate[:72]
            password_hash = None
        try:
            matched = await asyncio.to_thread(bcrypt.checkpw, candidate, target)
        except ValueError:
            return False
        return matched and password_hash is not None
