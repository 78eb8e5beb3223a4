"""The process-wide set of services, opened once at start-up and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.passwords import PasswordHasher
from tilegraph.auth.revocation import TokenDenylist
from tilegraph.auth.throttle import LoginThrottle
from tilegraph.auth.tokens import TokenService
from tilegraph.services.audit import AuditService
from tilegraph.services.auth import AuthService
from tilegraph.services.groups import GroupService
from tilegraph.services.users import UserService
from tilegraph.settings import Settings
from tilegraph.store.audit import AuditRepository
from tilegraph.store.aws import AwsClients
from tilegraph.store.dynamo import Dynamo
from tilegraph.store.groups import GroupRepository
from tilegraph.store.tables import ensure_bucket, ensure_tables
from tilegraph.store.users import UserRepository


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


@dataclass
class Repositories:
    users: UserRepository
    groups: GroupRepository
    audit: AuditRepository


@dataclass
class Services:
    settings: Settings
    aws: AwsClients
    redis: Any
    db: Dynamo
    repos: Repositories
    audit_recorder: AuditRecorder
    auth: AuthService
    users: UserService
    groups: GroupService
    audit: AuditService

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        aws = await AwsClients.open(settings)
        # Connections open lazily: the API starts (and /readyz reports) while Redis is down.
        redis = ArqRedis(
            ConnectionPool.from_url(
                settings.redis_url, socket_connect_timeout=3, health_check_interval=30
            ),
            default_queue_name=settings.queue_name,
        )
        if settings.init_store:
            await ensure_tables(aws.dynamodb, settings)
            await ensure_bucket(aws.s3, settings)
        db = Dynamo(aws.dynamodb, settings)
        repos = Repositories(
            users=UserRepository(db), groups=GroupRepository(db), audit=AuditRepository(db)
        )
        hasher = PasswordHasher(settings.bcrypt_rounds)
        recorder = AuditRecorder(repos.audit)
        tokens = TokenService(
            settings.jwt_secret,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.token_ttl_seconds,
        )
        throttle = LoginThrottle(
            redis,
            per_email=settings.login_max_failures_per_email,
            per_ip=settings.login_max_failures_per_ip,
            window_seconds=settings.login_failure_window_seconds,
        )
        return cls(
            settings=settings,
            aws=aws,
            redis=redis,
            db=db,
            repos=repos,
            audit_recorder=recorder,
            auth=AuthService(repos.users, hasher, tokens, TokenDenylist(redis), throttle, recorder),
            users=UserService(repos.users, hasher),
            groups=GroupService(repos.groups, repos.users),
            audit=AuditService(repos.audit),
        )

    async def close(self) -> None:
        await self.redis.aclose()
        await self.aws.close()
