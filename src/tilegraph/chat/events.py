"""The events a chat answer streams: TOKEN chunks, then exactly one DONE or ERROR.

Plain data so providers and tests need no GraphQL; the subscription maps it to the
contract's `ChatEvent` type field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ChatEventType = Literal["TOKEN", "DONE", "ERROR"]


@dataclass(frozen=True)
class ChatEvent:
    """One event of an answer. `text` is set on TOKEN; `error` (user-readable) on ERROR."""

    type: ChatEventType
    text: str | None = None
    error: str | None = None

    @classmethod
    def token(cls, text: str) -> ChatEvent:
        return cls("TOKEN", text=text)

    @classmethod
    def done(cls) -> ChatEvent:
        return cls("DONE")

    @classmethod
    def failed(cls, reason: str) -> ChatEvent:
        return cls("ERROR", error=reason)

    @property
    def terminal(self) -> bool:
        """DONE and ERROR end the stream; nothing follows them."""
        return self.type != "TOKEN"
