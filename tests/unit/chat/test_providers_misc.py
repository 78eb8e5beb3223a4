"""Provider choice, the Vertex provider without (and with a stand-in for) its SDK, and the
stream guard that enforces "TOKENs, then exactly one DONE or ERROR"."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tilegraph.chat.answer import prepare_chat, stream_answer
from tilegraph.chat.events import ChatEvent
from tilegraph.chat.factory import ChatConfigError, ChatSettings, check_settings, make_provider
from tilegraph.chat.prompt import ChatInputError, ChatTurn
from tilegraph.chat.providers.base import GroundingContext
from tilegraph.chat.providers.builtin import BuiltinProvider
from tilegraph.chat.providers.openai import OpenAIProvider
from tilegraph.chat.providers.vertex import VertexProvider, to_gemini

CONTEXT = GroundingContext(dashboard_name="D", question="q")
MESSAGES = [
    {"role": "system", "content": "facts"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "q"},
]


@pytest.fixture
def no_vertex_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import google.genai` fail, whatever is installed."""
    monkeypatch.setitem(sys.modules, "google.genai", None)


def test_builtin_is_the_default() -> None:
    assert isinstance(make_provider(ChatSettings()), BuiltinProvider)
    assert isinstance(make_provider(ChatSettings(provider="")), BuiltinProvider)
    assert isinstance(make_provider(ChatSettings(provider=" BuiltIn ")), BuiltinProvider)


def test_openai_settings_are_checked_up_front() -> None:
    chosen = make_provider(ChatSettings(provider="openai", openai_model="m"))
    assert isinstance(chosen, OpenAIProvider)
    assert str(chosen.url) == "https://api.openai.com/v1/chat/completions"
    with pytest.raises(ChatConfigError, match="model"):
        make_provider(ChatSettings(provider="openai"))
    with pytest.raises(ChatConfigError, match="http"):
        make_provider(
            ChatSettings(provider="openai", openai_model="m", openai_base_url="ftp://x/v1")
        )
    with pytest.raises(ChatConfigError, match="auth"):
        make_provider(ChatSettings(provider="openai", openai_model="m", openai_auth_style="basic"))
    with pytest.raises(ChatConfigError, match="unknown chat provider 'gpt'"):
        make_provider(ChatSettings(provider="gpt"))


def test_start_up_checks_settings_without_building_a_provider() -> None:
    assert check_settings(ChatSettings()) == "builtin"
    assert check_settings(ChatSettings(provider=" OpenAI ", openai_model="m")) == "openai"
    assert check_settings(ChatSettings(provider="vertex")) == "vertex"
    for bad, reason in [
        (ChatSettings(provider="openai"), "model"),
        (ChatSettings(provider="openai", openai_model="m", openai_base_url="ftp://x/v1"), "http"),
        (ChatSettings(provider="gpt"), "unknown chat provider 'gpt'"),
    ]:
        with pytest.raises(ChatConfigError, match=reason):
            check_settings(bad)


def test_settings_repr_hides_the_key() -> None:
    assert "sk-secret" not in repr(ChatSettings(openai_api_key="sk-secret"))


async def test_vertex_without_the_sdk_gives_one_clear_error(
    no_vertex_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tilegraph.chat.factory"):
        provider = make_provider(ChatSettings(provider="vertex", vertex_project="p"))
    assert isinstance(provider, VertexProvider)
    assert "tilegraph[vertex]" in caplog.text
    events = [e async for e in provider.stream(MESSAGES, context=CONTEXT)]
    assert len(events) == 1 and events[0].type == "ERROR"
    assert "pip install 'tilegraph[vertex]'" in (events[0].error or "")


def test_messages_convert_to_gemini_contents() -> None:
    system, contents = to_gemini(MESSAGES)
    assert system == "facts"
    assert contents == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
        {"role": "user", "parts": [{"text": "q"}]},
    ]


class _FakeModels:
    """Stands in for google.genai's `client.aio.models` (the SDK is not installed here)."""

    def __init__(self, chunks: list[str], error: Exception | None) -> None:
        self.chunks, self.error = chunks, error
        self.calls: list[dict[str, Any]] = []

    async def generate_content_stream(self, **kwargs: Any) -> AsyncIterator[Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error

        async def chunks() -> AsyncIterator[Any]:
            for text in self.chunks:
                yield types.SimpleNamespace(text=text)

        return chunks()


def _fake_sdk(
    monkeypatch: pytest.MonkeyPatch, chunks: list[str], error: Exception | None = None
) -> _FakeModels:
    models = _FakeModels(chunks, error)
    module = types.ModuleType("google.genai")

    class Client:
        def __init__(self, **kwargs: Any) -> None:
            assert kwargs == {"vertexai": True, "project": "p", "location": "europe-west1"}
            self.aio = types.SimpleNamespace(models=models)

    module.Client = Client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.genai", module)
    return models


async def test_vertex_streams_through_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    models = _fake_sdk(monkeypatch, ["Hel", "lo", ""])
    provider = VertexProvider(project="p", location="europe-west1", model="gemini-x")
    events = [e async for e in provider.stream(MESSAGES, context=CONTEXT)]
    assert events == [ChatEvent.token("Hel"), ChatEvent.token("lo"), ChatEvent.done()]
    [call] = models.calls
    assert call["model"] == "gemini-x" and call["config"] == {"system_instruction": "facts"}
    assert call["contents"][-1] == {"role": "user", "parts": [{"text": "q"}]}


async def test_vertex_sdk_errors_become_readable_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    error = RuntimeError("429 RESOURCE_EXHAUSTED for project p, token ya29.secret")
    error.code = 429  # type: ignore[attr-defined]
    _fake_sdk(monkeypatch, [], error)
    provider = VertexProvider(project="p", location="europe-west1", model="gemini-x")
    events = [e async for e in provider.stream(MESSAGES, context=CONTEXT)]
    assert events == [
        ChatEvent.failed(
            "the language model is busy or rate limited (HTTP 429): try again in a moment"
        )
    ]


class _Scripted:
    """A misbehaving provider, to show the guard in stream_answer."""

    name = "scripted"

    def __init__(self, events: Sequence[ChatEvent], raise_after: bool = False) -> None:
        self.events, self.raise_after = events, raise_after

    async def stream(
        self, messages: Sequence[dict[str, str]], *, context: GroundingContext
    ) -> AsyncIterator[ChatEvent]:
        for event in self.events:
            yield event
        if self.raise_after:
            raise RuntimeError("provider bug with secret sk-zzz")

    async def aclose(self) -> None:
        return None


PREPARED = prepare_chat(
    dashboard_name="D",
    cards=[],
    summaries=[],
    unavailable=[],
    history=[ChatTurn("user", "x")],
    question="q",
)


async def collect(provider: Any) -> list[ChatEvent]:
    return [e async for e in stream_answer(provider, PREPARED)]


async def test_guard_turns_a_raising_provider_into_one_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = await collect(_Scripted([ChatEvent.token("a")], raise_after=True))
    assert events == [
        ChatEvent.token("a"),
        ChatEvent.failed("the assistant failed unexpectedly; please try again"),
    ]
    assert "sk-zzz" not in (events[-1].error or "")
    assert "provider bug" in caplog.text  # the details go to the log


async def test_guard_ends_a_stream_without_terminal_event_and_drops_extras() -> None:
    assert (await collect(_Scripted([ChatEvent.token("a")])))[-1].type == "ERROR"
    events = await collect(
        _Scripted(
            [
                ChatEvent.token(""),
                ChatEvent.token("a"),
                ChatEvent.done(),
                ChatEvent.token("late"),
                ChatEvent.failed("x"),
            ]
        )
    )
    assert events == [ChatEvent.token("a"), ChatEvent.done()]
    assert await collect(_Scripted([ChatEvent("ERROR")])) == [ChatEvent.failed("the answer failed")]


def test_prepare_chat_validates_before_streaming() -> None:
    with pytest.raises(ChatInputError):
        prepare_chat(
            dashboard_name="D", cards=[], summaries=[], unavailable=[], history=[], question=" "
        )
    with pytest.raises(ChatInputError):
        prepare_chat(
            dashboard_name="D",
            cards=[],
            summaries=[],
            unavailable=[],
            history=[ChatTurn("tool", "x")],
            question="q",
        )
    assert PREPARED.context.question == "q" and PREPARED.messages[-1] == {
        "role": "user",
        "content": "q",
    }
