"""The chatbot's streamed events and the history it is given."""

from __future__ import annotations

from enum import StrEnum

import strawberry

from tilegraph.chat import ChatEvent as ChatEventRecord


@strawberry.enum(name="ChatEventType")
class ChatEventType(StrEnum):
    TOKEN = "TOKEN"
    DONE = "DONE"
    ERROR = "ERROR"


@strawberry.type
class ChatEvent:
    type: ChatEventType
    text: str | None = strawberry.field(description="A chunk of the answer when TOKEN.")
    error: str | None = strawberry.field(description="Why the answer stopped, when ERROR.")

    @classmethod
    def from_record(cls, record: ChatEventRecord) -> ChatEvent:
        return cls(type=ChatEventType(record.type), text=record.text, error=record.error)


@strawberry.input
class ChatMessageInput:
    role: str = strawberry.field(description="user or assistant")
    content: str
