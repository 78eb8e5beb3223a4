"""What every chat provider implements, and what it is given besides the prompt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from tilegraph.chat.events import ChatEvent
from tilegraph.chat.prompt import ChatTurn, Message, UnavailableDataset
from tilegraph.chat.summary import DatasetSummary


@dataclass(frozen=True)
class GroundingContext:
    """The structured facts behind the prompt, so the built-in provider needs no parsing."""

    dashboard_name: str
    question: str
    summaries: tuple[DatasetSummary, ...] = ()
    unavailable: tuple[UnavailableDataset, ...] = ()
    cards: tuple[tuple[str, str | None], ...] = ()
    history: tuple[ChatTurn, ...] = ()


class ChatProvider(Protocol):
    """Answers one question as a stream of ChatEvents.

    `stream` never raises: it yields TOKEN events, then exactly one DONE, or ends any failure
    with exactly one ERROR event whose `error` is readable by a user and carries no stack
    trace, API key or key-bearing URL. Details for operators go to the log.
    """

    name: str

    def stream(
        self, messages: Sequence[Message], *, context: GroundingContext
    ) -> AsyncIterator[ChatEvent]: ...

    async def aclose(self) -> None:
        """Release connections held between answers (called at shutdown)."""
        ...
