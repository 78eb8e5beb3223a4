"""Gemini on Vertex AI through the google-genai SDK — an optional extra.

The SDK is imported on first use only, so Tilegraph starts without it; choosing this provider
without it installed gives every answer one clear ERROR event instead of an ImportError.
Credentials come from Application Default Credentials (a service account on GKE / Cloud Run,
``GOOGLE_APPLICATION_CREDENTIALS`` elsewhere).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from tilegraph.chat.events import ChatEvent
from tilegraph.chat.prompt import Message
from tilegraph.chat.providers.base import GroundingContext

log = logging.getLogger(__name__)

MISSING_SDK = (
    "the Vertex AI provider is not installed on this server:"
    " an administrator needs to run pip install 'tilegraph[vertex]'"
)


class VertexFailure(Exception):
    """Ends an answer with one ERROR event; the message is what the user reads."""


def sdk_available() -> bool:
    """Whether google-genai can be imported (checked at start-up to warn early)."""
    try:
        importlib.import_module("google.genai")
    except ImportError:
        return False
    return True


def to_gemini(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI-style messages as (system instruction, Gemini contents)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    contents = [
        {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
        for m in messages
        if m["role"] != "system"
    ]
    return system, contents


class VertexProvider:
    """Streams Gemini answers from Vertex AI."""

    name = "vertex"

    def __init__(
        self,
        *,
        project: str | None,
        location: str,
        model: str,
        total_timeout: float = 120.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.project = project
        self.location = location
        self.model = model
        self.total_timeout = total_timeout
        self.read_timeout = read_timeout
        self._client: Any = None

    def _sdk_client(self) -> Any:
        if self._client is None:
            try:
                genai = importlib.import_module("google.genai")
            except ImportError:
                raise VertexFailure(MISSING_SDK) from None
            self._client = genai.Client(vertexai=True, project=self.project, location=self.location)
        return self._client

    async def aclose(self) -> None:
        self._client = None

    async def stream(
        self, messages: Sequence[Message], *, context: GroundingContext
    ) -> AsyncIterator[ChatEvent]:
        try:
            async with aclosing(self._texts(messages)) as texts:
                async for text in texts:
                    yield ChatEvent.token(text)
        except VertexFailure as failure:
            log.warning("chat provider vertex failed: %s", failure)
            yield ChatEvent.failed(str(failure))
            return
        except Exception as exc:
            log.warning("chat provider vertex failed", exc_info=True)
            yield ChatEvent.failed(_reason(exc))
            return
        yield ChatEvent.done()

    async def _texts(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        client = self._sdk_client()
        system, contents = to_gemini(messages)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout
        config = {"system_instruction": system} if system else None
        async with asyncio.timeout(self.read_timeout):
            chunks = await client.aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
        iterator = aiter(chunks)
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise VertexFailure(
                    f"the language model did not finish within {self.total_timeout:g} seconds"
                )
            try:
                async with asyncio.timeout(min(self.read_timeout, remaining)):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise VertexFailure("the language model stopped responding") from None
            text = getattr(chunk, "text", None)
            if isinstance(text, str) and text:
                yield text


def _reason(exc: Exception) -> str:
    """A readable reason for an SDK error, from its HTTP-like status code when it has one."""
    if isinstance(exc, TimeoutError):
        return "the language model did not respond in time"
    code = getattr(exc, "code", None)
    if code in (401, 403):
        return (
            f"the language model refused the request (HTTP {code}):"
            " check the service account's Vertex AI permissions"
        )
    if code == 404:
        return f"the model was not found (HTTP {code}): check the model name and location"
    if code == 429:
        return f"the language model is busy or rate limited (HTTP {code}): try again in a moment"
    if isinstance(code, int) and code >= 500:
        return f"the language model failed (HTTP {code}): try again later"
    if isinstance(code, int):
        return f"the language model rejected the request (HTTP {code})"
    if type(exc).__name__ == "DefaultCredentialsError":
        return "no Google Cloud credentials are configured for Vertex AI on this server"
    return "the request to Vertex AI failed"
