from __future__ import annotations

import statistics
import time

import bcrypt
import pytest

from tilegraph.auth.common_passwords import common_passwords, is_common
from tilegraph.auth.passwords import PasswordHasher
from tilegraph.auth.tokens import TokenService
from tilegraph.domain.errors import Unauthenticated
from tilegraph.domain.users import Role
from tilegraph.settings import Settings


def test_tokens_round_trip_and_carry_every_required_claim() -> None:
    service = TokenService("k" * 32, "tilegraph", "tilegraph-api", 3600)
    issued = service.issue("usr_1", Role.ADMIN)
    claims = service.verify(issued.token)
    assert (claims.user_id, claims.role, claims.jti) == ("usr_1", Role.ADMIN, issued.jti)
    other = TokenService("k" * 32, "tilegraph", "other-api", 3600)
    with pytest.raises(Unauthenticated):
        other.verify(issued.token)


def test_default_bcrypt_cost_is_12() -> None:
    hasher = PasswordHasher(Settings().bcrypt_rounds)
    hashed = hasher.hash_sync("Some-passw0rd")
    assert hashed.startswith("$2b$12$")
    assert bcrypt.checkpw(b"Some-passw0rd", hashed.encode())


async def test_unknown_users_cost_the_same_bcrypt_time() -> None:
    hasher = PasswordHasher(10)
    real = hasher.hash_sync("Some-passw0rd")

    async def timed(password_hash: str | None) -> float:
        started = time.perf_counter()
        assert await hasher.verify("Wrong-passw0rd", password_hash) is False
        return time.perf_counter() - started

    known = statistics.median([await timed(real) for _ in range(5)])
    unknown = statistics.median([await timed(None) for _ in range(5)])
    assert 0.5 < unknown / known < 2.0
    assert await hasher.verify("Some-passw0rd", real) is True
    assert await hasher.verify("x" * 100, real) is False


def test_the_common_password_list_sees_through_the_usual_disguises() -> None:
    assert len(common_passwords()) == 10_000
    for disguised in ("Passw0rd!", "PASSWORD", "p@$$w0rd", "Password123!", "!!Monkey2024"):
        assert is_common(disguised), disguised
    for fine in ("Admin-Passw0rd!", "Tr0ub4dor&3x", "correct-horse-battery"):
        assert not is_common(fine), fine


def test_the_defaults_are_closed() -> None:
    settings = Settings()
    assert settings.graphiql is False and settings.metrics_token is None
    assert settings.s3_import_buckets == ()
