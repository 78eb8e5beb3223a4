"""The per-dashboard chatbot: dataset summaries, the grounding prompt and chat providers.

Typical use by the API (permission, rate limit and audit are the caller's):

    loader = SummaryLoader(redis_cache)                # once per process
    provider = make_provider(ChatSettings(...))        # once per process
    grounding = await loader.load(sources)             # the dashboard's datasets
    prepared = prepare_chat(dashboard_name=..., cards=..., summaries=grounding.summaries,
                            unavailable=grounding.unavailable, history=..., question=...)
    async for event in stream_answer(provider, prepared): ...
"""

from tilegraph.chat.answer import PreparedChat, prepare_chat, stream_answer
from tilegraph.chat.events import ChatEvent, ChatEventType
from tilegraph.chat.factory import ChatConfigError, ChatSettings, make_provider
from tilegraph.chat.grounding import (
    DatasetSource,
    Grounding,
    MemorySummaryCache,
    SummaryCache,
    SummaryLoader,
)
from tilegraph.chat.prompt import (
    CardInfo,
    ChatInputError,
    ChatTurn,
    UnavailableDataset,
    build_messages,
    check_history,
    check_question,
)
from tilegraph.chat.providers.base import ChatProvider, GroundingContext
from tilegraph.chat.summary import (
    ColumnSummary,
    DatasetSummary,
    SummaryFormatError,
    summarize_table,
    summary_cache_key,
)

__all__ = [
    "CardInfo",
    "ChatConfigError",
    "ChatEvent",
    "ChatEventType",
    "ChatInputError",
    "ChatProvider",
    "ChatSettings",
    "ChatTurn",
    "ColumnSummary",
    "DatasetSource",
    "DatasetSummary",
    "Grounding",
    "GroundingContext",
    "MemorySummaryCache",
    "PreparedChat",
    "SummaryCache",
    "SummaryFormatError",
    "SummaryLoader",
    "UnavailableDataset",
    "build_messages",
    "check_history",
    "check_question",
    "make_provider",
    "prepare_chat",
    "stream_answer",
    "summarize_table",
    "summary_cache_key",
]
