"""The process-wide set of services, opened once at start-up and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool, Redis

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.devices import KnownDevices
from tilegraph.auth.passwords import PasswordHasher
from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.auth.revocation import TokenDenylist
from tilegraph.auth.throttle import LoginThrottle
from tilegraph.auth.tokens import TokenService
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.events.bus import EventBus
from tilegraph.events.inline import InlineBudget
from tilegraph.events.publisher import STATE_TTL_SECONDS, ExecutionEvents
from tilegraph.services.audit import AuditService
from tilegraph.services.auth import AuthService
from tilegraph.services.card_tables import CardTableService
from tilegraph.services.cards import CardService
from tilegraph.services.chat import ChatService
from tilegraph.services.dashboards import DashboardService
from tilegraph.services.datasets import DatasetService
from tilegraph.services.deliveries import DeliveryService
from tilegraph.services.executions import ExecutionService
from tilegraph.services.filter_views import FilterViewService
from tilegraph.services.groups import GroupService
from tilegraph.services.lineage import LineageService
from tilegraph.services.policies import PolicyService
from tilegraph.services.rechecks import SharedChecks
from tilegraph.services.revision_log import RevisionLog
from tilegraph.services.revisions import RevisionService
from tilegraph.services.shares import ShareService
from tilegraph.services.transforms import TransformService
from tilegraph.services.users import UserService
from tilegraph.settings import Settings
from tilegraph.store.aws import AwsClients
from tilegraph.store.card_results import CardResults, ensure_result_expiry
from tilegraph.store.counting import CountedConnection
from tilegraph.store.dynamo import Dynamo
from tilegraph.store.objects import ObjectStore
from tilegraph.store.parquet import ParquetReader
from tilegraph.store.queue import JobQueue
from tilegraph.store.repositories import Repositories
from tilegraph.store.tables import ensure_bucket, ensure_tables


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


@dataclass
class Services:
    settings: Settings
    aws: AwsClients
    redis: ArqRedis
    # Card results and summaries: the main Redis unless TILEGRAPH_CACHE_REDIS_URL is set.
    cache_redis: Redis
    db: Dynamo
    repos: Repositories
    audit_recorder: AuditRecorder
    auth: AuthService
    rechecks: SharedChecks
    users: UserService
    groups: GroupService
    audit: AuditService
    objects: ObjectStore
    parquet: ParquetReader
    queue: JobQueue
    events: ExecutionEvents
    datasets: DatasetService
    policies: PolicyService
    executions: ExecutionService
    bus: EventBus
    card_results: CardResults
    card_tables: CardTableService
    inline_html: InlineBudget
    run_allowance: QueueLimit
    cards: CardService
    dashboards: DashboardService
    shares: ShareService
    filter_views: FilterViewService
    transforms: TransformService
    revisions: RevisionService
    chat: ChatService
    lineage: LineageService
    deliveries: DeliveryService

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        aws = await AwsClients.open(settings)
        # Connections open lazily: the API starts (and /readyz reports) while Redis is down.
        redis = ArqRedis(
            ConnectionPool.from_url(
                settings.redis_url,
                socket_connect_timeout=3,
                health_check_interval=30,
                connection_class=CountedConnection,
            ),
            default_queue_name=settings.queue_name,
        )
        if settings.init_store:
            await ensure_tables(aws.dynamodb, settings)
            await ensure_bucket(aws.s3, settings)
            await ensure_result_expiry(aws.s3, settings.bucket, settings.card_result_retention_days)
        db = Dynamo(aws.dynamodb, settings)
        repos = Repositories.over(db)
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
            backoff_seconds=settings.login_backoff_seconds,
            backoff_max_seconds=settings.login_backoff_max_seconds,
        )
        devices = KnownDevices(redis, ttl_seconds=settings.login_device_ttl_seconds)
        objects = ObjectStore(aws.s3, settings.bucket)
        parquet = ParquetReader(settings)
        queue = JobQueue(redis, settings.queue_name)
        events = ExecutionEvents(redis)
        datasets = DatasetService(
            settings, repos.datasets, repos.imports, objects, parquet, queue, recorder
        )

        # Results live in a cache-only Redis (maxmemory + allkeys-lru) when one is configured.
        cache_redis = (
            redis
            if settings.cache_redis == settings.redis_url
            else Redis(
                connection_pool=ConnectionPool.from_url(
                    settings.cache_redis,
                    socket_connect_timeout=3,
                    health_check_interval=30,
                    connection_class=CountedConnection,
                )
            )
        )
        card_results = CardResults(
            cache_redis, objects, settings.card_cache_ttl_seconds, parquet.filesystem
        )
        # One allowance of unfinished runs per user: card runs and manual transform runs.
        run_allowance = QueueLimit(
            redis, prefix="card:queued", limit=settings.max_queued_cards_per_user
        )
        executions = ExecutionService(redis, events, queue, repos, run_allowance)
        inline_html = InlineBudget(
            redis,
            budget_bytes=settings.max_event_html_bytes_per_user,
            ttl_seconds=STATE_TTL_SECONDS,
        )
        policies = PolicyService(
            repos.policies, repos.datasets, repos.users, repos.groups, recorder
        )
        history = RevisionLog(repos.revisions, settings)
        cards = CardService(
            settings,
            repos.cards,
            repos.datasets,
            card_results,
            queue,
            events,
            recorder,
            run_allowance,
            inline_html,
            policies,
            history,
        )

        async def cards_using(dataset: DatasetRecord) -> list[str]:
            using = await repos.cards.using_dataset(dataset.owner_id, dataset.id)
            return [f"card {c.name!r} ({c.id})" for c in using]

        datasets.usage_checks.append(cards_using)
        datasets.on_delete.append(repos.policies.delete_for_dataset)
        dashboards = DashboardService(
            repos.dashboards, cards, datasets, policies, history, repos.placements
        )
        dashboards.on_delete.append(repos.deliveries.delete_for_dashboard)
        groups = GroupService(repos.groups, repos.users)
        groups.on_delete.append(repos.dashboards.remove_shares_for_target)
        groups.on_delete.append(repos.policies.delete_for_target)
        transforms = TransformService(
            settings, repos.transforms, repos.datasets, queue, events, run_allowance, history
        )

        async def transforms_using(dataset: DatasetRecord) -> list[str]:
            using = await repos.transforms.using_dataset(dataset.owner_id, dataset.id)
            return [f"transform {t.name!r} ({t.id})" for t in using]

        datasets.usage_checks.append(transforms_using)
        filter_views = FilterViewService(repos.dashboards)
        deliveries = DeliveryService(
            settings, repos.deliveries, dashboards, filter_views, queue, events, run_allowance
        )
        denylist = TokenDenylist(repos.revocations, redis)
        auth = AuthService(repos.users, hasher, tokens, denylist, throttle, devices, recorder)
        rechecks = SharedChecks(auth, settings.recheck_seconds)
        auth.on_logout.append(rechecks.forget_token)
        auth.on_user_changed.append(rechecks.forget_user)
        return cls(
            settings=settings,
            aws=aws,
            redis=redis,
            cache_redis=cache_redis,
            db=db,
            repos=repos,
            audit_recorder=recorder,
            auth=auth,
            rechecks=rechecks,
            users=UserService(repos.users, hasher, auth, recorder),
            groups=groups,
            audit=AuditService(repos.audit),
            objects=objects,
            parquet=parquet,
            queue=queue,
            events=events,
            datasets=datasets,
            policies=policies,
            executions=executions,
            bus=EventBus(settings.redis_url, outage_grace=settings.subscription_outage_seconds),
            card_results=card_results,
            card_tables=CardTableService(card_results),
            inline_html=inline_html,
            run_allowance=run_allowance,
            cards=cards,
            dashboards=dashboards,
            shares=ShareService(repos.dashboards, repos.users, repos.groups, recorder),
            filter_views=filter_views,
            transforms=transforms,
            revisions=RevisionService(repos.revisions, cards, dashboards, transforms, recorder),
            chat=ChatService(settings, redis, parquet, dashboards, policies, recorder, cache_redis),
            lineage=LineageService(),
            deliveries=deliveries,
        )

    async def close(self) -> None:
        await self.chat.close()
        await self.bus.close()
        if self.cache_redis is not self.redis:
            await self.cache_redis.aclose()
        await self.redis.aclose()
        await self.aws.close()
