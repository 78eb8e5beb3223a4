"""One answer end to end: validate, build the prompt, stream the provider — with the
"TOKENs then exactly one DONE or ERROR" rule enforced here, whatever the provider does."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from tilegraph.chat.events import ChatEvent
from tilegraph.chat.prompt import (
    CardInfo,
    ChatTurn,
    Message,
    UnavailableDataset,
    build_messages,
    check_history,
    check_question,
)
from tilegraph.chat.providers.base import ChatProvider, GroundingContext
from tilegraph.chat.summary import DatasetSummary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedChat:
    """A validated question with its prompt and grounding, ready for any provider."""

    messages: list[Message]
    context: GroundingContext


def prepare_chat(
    *,
    dashboard_name: str,
    cards: Sequence[tuple[str, str | None]],
    summaries: Sequence[DatasetSummary],
    unavailable: Sequence[tuple[str, str]],
    history: Sequence[ChatTurn] | None,
    question: str,
) -> PreparedChat:
    """Validate and build everything a provider needs. Raises ChatInputError (a ValueError
    whose message is for the user) before anything is streamed, so the API can answer
    BAD_USER_INPUT instead of opening a stream."""
    checked = check_question(question)
    turns = check_history(history)
    card_infos = tuple(CardInfo(name, description) for name, description in cards)
    missing = tuple(UnavailableDataset(name, reason) for name, reason in unavailable)
    messages = build_messages(dashboard_name, card_infos, summaries, missing, turns, checked)
    context = GroundingContext(
        dashboard_name=dashboard_name,
        question=checked,
        summaries=tuple(summaries),
        unavailable=missing,
        cards=card_infos,
        history=tuple(turns),
    )
    return PreparedChat(messages, context)


async def stream_answer(provider: ChatProvider, prepared: PreparedChat) -> AsyncIterator[ChatEvent]:
    """The provider's events, guaranteed to end with exactly one DONE or ERROR.

    Empty TOKENs are dropped, anything after the terminal event is ignored, a provider that
    raises or stops without a terminal event ends with a generic ERROR (details logged).
    """
    events = provider.stream(prepared.messages, context=prepared.context)
    try:
        async for event in events:
            if event.type == "TOKEN":
                if event.text:
                    yield event
                continue
            if event.type == "ERROR":
                yield ChatEvent.failed(event.error or "the answer failed")
            else:
                yield ChatEvent.done()
            return
    except Exception:
        log.exception("chat provider %s raised instead of ending with ERROR", provider.name)
        yield ChatEvent.failed("the assistant failed unexpectedly; please try again")
        return
    finally:
        # Close the provider's stream now (and its HTTP response), not whenever it is collected.
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    log.error("chat provider %s ended without DONE or ERROR", provider.name)
    yield ChatEvent.failed("the answer ended unexpectedly; please try again")
