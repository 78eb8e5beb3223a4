"""Any OpenAI-compatible chat-completions endpoint with streaming (OpenAI, Azure OpenAI, vLLM,
Ollama, llama.cpp server …), spoken to with httpx.

Authentication: ``Authorization: Bearer <key>`` by default. Azure OpenAI expects an
``api-key: <key>`` header instead: `auth_style="auto"` (the default) picks it when the base
URL's host ends in ``.openai.azure.com``, ``.cognitiveservices.azure.com`` or
``.services.ai.azure.com``; `"bearer"` / `"api-key"` force one style. A query string in the
base URL (Azure's ``?api-version=…``) is kept: the request goes to
``{base path}/chat/completions?{query}``.

Timeouts: `connect_timeout` to open the connection, `read_timeout` for the wait before each
chunk (and the response headers), `total_timeout` for the whole answer. A connection that
fails before any response arrived (refused, reset, a stale keep-alive closed by the server)
is retried once; nothing is retried once the response has started, so a user never sees a
repeated beginning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, Literal

import httpx

from tilegraph.chat.events import ChatEvent
from tilegraph.chat.prompt import Message
from tilegraph.chat.providers.base import GroundingContext

log = logging.getLogger(__name__)

AuthStyle = Literal["auto", "bearer", "api-key"]
AZURE_HOST_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)
_RETRYABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
_ERROR_BODY_LIMIT = 4096
_DRAIN_SECONDS = 1.0
_DRAIN_LINES = 100
_KEY_LIKE = re.compile(r"\b(sk|pk|rk|key|api[-_]?key)[-_][A-Za-z0-9_\-*]{6,}", re.IGNORECASE)


class ProviderFailure(Exception):
    """Ends an answer with one ERROR event; the message is what the user reads."""


def auth_headers(base_url: str, api_key: str | None, auth_style: AuthStyle) -> dict[str, str]:
    """The header carrying the key, in the style the endpoint expects."""
    if not api_key:
        return {}
    style = auth_style
    if style == "auto":
        host = httpx.URL(base_url).host.lower()
        style = "api-key" if host.endswith(AZURE_HOST_SUFFIXES) else "bearer"
    if style == "api-key":
        return {"api-key": api_key}
    return {"Authorization": f"Bearer {api_key}"}


def completions_url(base_url: str) -> httpx.URL:
    """`{base_url}/chat/completions`, keeping the base URL's query (Azure api-version)."""
    url = httpx.URL(base_url)
    path = url.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions"
    return url.copy_with(path=path)


def origin(url: httpx.URL) -> str:
    """Scheme, host and port only: safe to show (no credentials, no query)."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def redact(text: str, secret: str | None, limit: int = 200) -> str:
    """A provider's message made safe to show: the key and key-like tokens removed, one line."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OpenAIProvider:
    """Streams chat completions from an OpenAI-compatible server."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        auth_style: AuthStyle = "auto",
        total_timeout: float = 120.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if auth_style not in ("auto", "bearer", "api-key"):
            raise ValueError(f"unknown auth style {auth_style!r}")
        self.model = model
        self.url = completions_url(base_url)
        self.origin = origin(self.url)
        self._api_key = api_key
        self._headers = {
            "Accept": "text/event-stream",
            **auth_headers(base_url, api_key, auth_style),
        }
        self.total_timeout = total_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # Built now, at start-up: loading the CA bundle takes ~150 ms, which the first
        # question would otherwise pay. No loop is needed until the first request.
        self._client: httpx.AsyncClient | None = (
            client if client is not None else self._new_client()
        )
        self._owns_client = client is None

    def _http(self) -> httpx.AsyncClient:
        """One pooled client per provider, so answers reuse connections (and TLS sessions)."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=self.connect_timeout,
                read=self.read_timeout,
                write=self.connect_timeout,
                pool=self.connect_timeout,
            ),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def stream(
        self, messages: Sequence[Message], *, context: GroundingContext
    ) -> AsyncIterator[ChatEvent]:
        """TOKEN events as the model writes, then DONE; any failure ends with one ERROR."""
        tokens = 0
        try:
            async with aclosing(self._texts(messages)) as texts:
                async for text in texts:
                    tokens += 1
                    yield ChatEvent.token(text)
        except ProviderFailure as failure:
            log.warning("chat provider %s failed after %s tokens: %s", self.name, tokens, failure)
            yield ChatEvent.failed(str(failure))
            return
        except Exception:
            log.exception("chat provider crashed", extra={"provider": self.name})
            yield ChatEvent.failed("the language model request failed unexpectedly")
            return
        yield ChatEvent.done()

    async def _texts(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout
        response = await self._open(list(messages), deadline)
        try:
            if response.status_code != 200:
                body = await _read_capped(response)
                log.warning(
                    "chat provider HTTP %s from %s: %s",
                    response.status_code,
                    self.origin,
                    redact(body, self._api_key, 500),
                )
                raise ProviderFailure(self._http_reason(response.status_code, body))
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                # The server ignored "stream": true; take the whole answer at once.
                text = await self._whole_answer(response, deadline)
                if text:
                    yield text
                return
            async with aclosing(self._sse_texts(response, deadline)) as texts:
                async for text in texts:
                    yield text
        finally:
            await response.aclose()

    async def _open(self, messages: list[Message], deadline: float) -> httpx.Response:
        """POST the request; retry once if the connection fails before any response."""
        client = self._http()
        body = {"model": self.model, "messages": messages, "stream": True}
        for attempt in (1, 2):
            request = client.build_request("POST", self.url, json=body, headers=self._headers)
            try:
                async with asyncio.timeout(self._remaining(deadline)):
                    return await client.send(request, stream=True)
            except _RETRYABLE as exc:
                log.info(
                    "chat provider connection failed (attempt %s): %s",
                    attempt,
                    type(exc).__name__,
                )
                if attempt == 2:
                    raise ProviderFailure(
                        f"could not reach the language model at {self.origin}"
                    ) from None
            except (TimeoutError, httpx.TimeoutException):
                raise ProviderFailure(
                    f"the language model at {self.origin} did not respond in time"
                ) from None
            except httpx.HTTPError as exc:
                log.warning("chat provider request failed: %s", type(exc).__name__)
                raise ProviderFailure(
                    f"the request to the language model at {self.origin} failed"
                ) from None
        raise AssertionError("unreachable")

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise ProviderFailure(
                f"the language model did not finish within {self.total_timeout:g} seconds"
            )
        return remaining

    async def _sse_texts(
        self, response: httpx.Response, deadline: float
    ) -> AsyncGenerator[str, None]:
        lines = response.aiter_lines()
        finished = False
        while True:
            remaining = self._remaining(deadline)
            wait = min(self.read_timeout, remaining)
            try:
                async with asyncio.timeout(wait):
                    line = await anext(lines)
            except StopAsyncIteration:
                break
            except (TimeoutError, httpx.ReadTimeout):
                if wait < self.read_timeout:
                    raise ProviderFailure(
                        f"the language model did not finish within {self.total_timeout:g} seconds"
                    ) from None
                raise ProviderFailure(
                    f"the language model stopped responding for {self.read_timeout:g} seconds"
                ) from None
            except httpx.HTTPError as exc:
                log.warning("chat provider stream broke: %s", type(exc).__name__)
                raise ProviderFailure(
                    "the answer was cut off: the connection to the language model was lost"
                ) from None
            if not line.startswith("data:"):
                continue  # blank separators, comments, event:/id:/retry: fields
            payload = line[5:].strip()
            if payload == "[DONE]":
                await _drain(lines)
                return
            text, finish_reason = self._parse_chunk(payload)
            if text:
                yield text
            if finish_reason == "content_filter":
                raise ProviderFailure("the language model's content filter stopped the answer")
            if finish_reason:
                finished = True
        if not finished:
            raise ProviderFailure(
                "the answer was cut off: the language model ended the stream early"
            )

    def _parse_chunk(self, payload: str) -> tuple[str | None, str | None]:
        """(content delta, finish reason) of one `data:` payload."""
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise ProviderFailure(
                "the language model sent a response that could not be read"
            ) from None
        if not isinstance(chunk, dict):
            raise ProviderFailure("the language model sent a response that could not be read")
        if "error" in chunk:
            raise ProviderFailure(
                "the language model reported an error: " + _error_message(chunk, self._api_key)
            )
        choices = chunk.get("choices") or []  # Azure sends a first chunk without choices
        if not choices or not isinstance(choices[0], dict):
            return None, None
        delta = choices[0].get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        finish_reason = choices[0].get("finish_reason")
        return (
            content if isinstance(content, str) else None,
            finish_reason if isinstance(finish_reason, str) else None,
        )

    async def _whole_answer(self, response: httpx.Response, deadline: float) -> str:
        try:
            async with asyncio.timeout(self._remaining(deadline)):
                data = json.loads(await response.aread())
            content = data["choices"][0]["message"]["content"]
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderFailure(
                f"the language model did not finish within {self.total_timeout:g} seconds"
            ) from None
        except (ValueError, KeyError, IndexError, TypeError, httpx.HTTPError):
            raise ProviderFailure(
                "the language model sent a response that could not be read"
            ) from None
        return content if isinstance(content, str) else ""

    def _http_reason(self, status: int, body: str) -> str:
        """A readable reason for an HTTP error status, without the key."""
        if status in (401, 403):
            return f"the language model refused the request (HTTP {status}): check the API key"
        if status == 404:
            return (
                f"the language model endpoint or model was not found (HTTP {status}):"
                " check the base URL and the model name"
            )
        if status == 429:
            return (
                f"the language model is busy or rate limited (HTTP {status}): try again in a moment"
            )
        if status >= 500:
            return f"the language model failed (HTTP {status}): try again later"
        detail = _error_message(_json_or_none(body), self._api_key)
        suffix = f": {detail}" if detail else ""
        return f"the language model rejected the request (HTTP {status}){suffix}"


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read the end of the body after [DONE] so the connection can be reused (a TLS
    handshake saved per question); give up quickly on a server that keeps talking."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            for _ in range(_DRAIN_LINES):
                await anext(lines)
    except (StopAsyncIteration, TimeoutError, httpx.HTTPError):
        pass


async def _read_capped(response: httpx.Response) -> str:
    """Up to 4 KiB of an error body (enough for the message, bounded for a hostile server)."""
    data = b""
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    return data[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _error_message(body: Any, secret: str | None) -> str:
    """`error.message` of an OpenAI-style error body, redacted; "" when there is none."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return redact(error["message"], secret)
        if isinstance(error, str):
            return redact(error, secret)
    return ""
