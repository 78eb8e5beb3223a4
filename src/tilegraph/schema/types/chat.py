"""The chatbot's streamed events and the history it is given."""

from __future__ import annotations

from enum import StrEnum

import strawberry

from tilegraph.chat import ChatEvent as ChatEventRecord
from tilegraph.schema.enums import described_enum


class ChatEventType(StrEnum):
    TOKEN = "TOKEN"
    DONE = "DONE"
    ERROR = "ERROR"


described_enum(
    ChatEventType,
    name="ChatEventType",
    description="What one event of a chatbot answer carries.",
    values={
        "TOKEN": "The next chunk of the answer, in `text`.",
        "DONE": "The answer is complete; the stream ends.",
        "ERROR": "The answer stopped early, for the reason in `error`; the stream ends.",
    },
)


@strawberry.type(description="One event of a streamed chatbot answer.")
class ChatEvent:
    type: ChatEventType = strawberry.field(description="What this event carries.")
    text: str | None = strawberry.field(description="A chunk of the answer when TOKEN.")
    error: str | None = strawberry.field(description="Why the answer stopped, when ERROR.")

    @classmethod
    def from_record(cls, record: ChatEventRecord) -> ChatEvent:
        return cls(type=ChatEventType(record.type), text=record.text, error=record.error)


@strawberry.input(description="One earlier turn of the conversation, for context.")
class ChatMessageInput:
    role: str = strawberry.field(description="user or assistant")
    content: str = strawberry.field(description="What was said in that turn.")
