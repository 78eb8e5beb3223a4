"""The dashboard chatbot: checks and grounds a question, streams the provider's answer,
and audits how it ended (not what was asked). The grounding holds only what the asker may
see of each dataset (its policies), so no answer can tell them more."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.chat import (
    ChatConfigError,
    ChatEvent,
    ChatInputError,
    ChatProvider,
    ChatSettings,
    ChatTurn,
    DatasetSource,
    PreparedChat,
    SummaryLoader,
    check_history,
    check_question,
    make_provider,
    prepare_chat,
    stream_answer,
)
from tilegraph.chat.summary import TableLike
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.dashboards import DashboardRecord
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.errors import BadUserInput, RateLimited
from tilegraph.domain.policies import EffectiveAccess
from tilegraph.domain.users import Principal
from tilegraph.services.access import DashboardAccess
from tilegraph.services.dashboards import DashboardService
from tilegraph.services.policies import PolicyService
from tilegraph.settings import Settings, SettingsError
from tilegraph.store.parquet import ParquetReader
from tilegraph.store.policy_filter import visible_batches

SUMMARY_TTL_SECONDS = 7 * 24 * 3600


class RedisSummaryCache:
    """Summaries by dataset version (and by the reader's access when it is partial): a
    re-import changes the key, old ones expire. A cache only: with Redis unreachable every
    lookup is a miss."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.redis.get(key)
        except RedisError:
            return None
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: str) -> None:
        with contextlib.suppress(RedisError):
            await self.redis.set(key, value, ex=SUMMARY_TTL_SECONDS)


def chat_settings(settings: Settings) -> ChatSettings:
    return ChatSettings(
        provider=settings.chat_provider,
        openai_base_url=settings.chat_openai_base_url,
        openai_model=settings.chat_openai_model,
        openai_api_key=settings.chat_openai_api_key,
        openai_auth_style=settings.chat_openai_auth_style,
        openai_timeout_seconds=settings.chat_openai_timeout_seconds,
        vertex_project=settings.chat_vertex_project,
        vertex_location=settings.chat_vertex_location,
        vertex_model=settings.chat_vertex_model,
    )


class ChatService:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        parquet: ParquetReader,
        dashboards: DashboardService,
        policies: PolicyService,
        audit: AuditRecorder,
        cache_redis: Redis | None = None,
    ) -> None:
        """`cache_redis`: where summaries are cached (a cache-only Redis; default `redis`)."""
        self.settings = settings
        self.redis = redis
        self.parquet = parquet
        self.dashboards = dashboards
        self.policies = policies
        self.audit = audit
        try:
            self.provider: ChatProvider = make_provider(chat_settings(settings))
        except ChatConfigError as exc:
            raise SettingsError(f"TILEGRAPH_CHAT_*: {exc}") from exc
        self.summaries = SummaryLoader(RedisSummaryCache(cache_redis or redis))
        # A sliding minute per user; over the limit, nothing is streamed.
        self.questions = QueueLimit(
            redis,
            prefix="chat:asked",
            limit=settings.chat_questions_per_minute,
            window_seconds=60,
        )

    async def close(self) -> None:
        await self.provider.aclose()

    async def _count_question(self, user_id: str) -> None:
        if not await self.questions.admit(user_id, str(time.time())):
            raise RateLimited(
                f"At most {self.settings.chat_questions_per_minute} questions a minute; "
                "try again shortly"
            )

    async def prepare(
        self,
        principal: Principal,
        access: DashboardAccess,
        dashboard: DashboardRecord,
        message: str,
        history: list[tuple[str, str]],
    ) -> PreparedChat:
        """Everything that can refuse the question, before any answer streams."""
        turns = [ChatTurn(role, content) for role, content in history]
        try:
            check_question(message)
            check_history(turns)
        except ChatInputError as exc:
            raise BadUserInput(str(exc), field="message") from exc
        await self._count_question(principal.user_id)
        cards = await self.dashboards.visible_cards(principal, dashboard, access)
        dataset_ids = list(dict.fromkeys(d for card in cards for d in card.dataset_ids))
        loaded = await access.loaders.datasets.load_many(dataset_ids)
        datasets = [d for d in loaded if d is not None]
        seen = await self.policies.access_to(datasets, principal.user_id, access.loaders)
        sources = [self._source(dataset, seen[dataset.id]) for dataset in datasets]
        grounding = await self.summaries.load(sources)
        return prepare_chat(
            dashboard_name=dashboard.name,
            cards=[(card.name, card.description) for card in cards],
            summaries=grounding.summaries,
            unavailable=grounding.unavailable,
            history=turns,
            question=message,
        )

    def _source(self, dataset: DatasetRecord, seen: EffectiveAccess) -> DatasetSource:
        """The dataset as the asker may see it: all of it, or only their rows and visible
        columns, summarised (and cached) apart from everyone who sees something else."""
        hidden = set(seen.hidden_columns)
        return DatasetSource(
            dataset_id=dataset.id,
            name=dataset.name,
            version=dataset.version,
            open=self._opener(dataset.data_prefix(), seen),
            column_types={c.name: c.type.value for c in dataset.columns if c.name not in hidden},
            access_key=None if seen.full else seen.fingerprint(),
        )

    def _opener(self, prefix: str, seen: EffectiveAccess) -> Callable[[], TableLike]:
        if seen.full:
            return lambda: self.parquet.dataset(prefix)
        return lambda: visible_batches(self.parquet.dataset(prefix), seen)

    async def answer(
        self,
        principal: Principal,
        dashboard: DashboardRecord,
        prepared: PreparedChat,
        *,
        message_length: int,
        request_id: str | None,
    ) -> AsyncIterator[ChatEvent]:
        outcome = "DISCONNECTED"
        try:
            async for event in stream_answer(self.provider, prepared):
                if event.terminal:
                    outcome = event.type
                yield event
        finally:
            await self.audit.record(
                AuditEventType.CHATBOT_QUERY,
                user_id=principal.user_id,
                target_type="dashboard",
                target_id=dashboard.id,
                details={
                    "messageLength": message_length,
                    "provider": self.provider.name,
                    "outcome": outcome,
                },
                request_id=request_id,
            )
