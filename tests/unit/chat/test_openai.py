"""The OpenAI-compatible provider against a real loopback HTTP server (tests/unit/chat/sse_server.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.unit.chat.sse_server import OpenAIStub, Script, closed_port
from tilegraph.chat.answer import prepare_chat, stream_answer
from tilegraph.chat.events import ChatEvent
from tilegraph.chat.factory import ChatSettings, make_provider
from tilegraph.chat.prompt import ChatTurn
from tilegraph.chat.providers.base import GroundingContext
from tilegraph.chat.providers.openai import OpenAIProvider, auth_headers, completions_url, redact
from tilegraph.chat.summary import DatasetSummary

KEY = "sk-test-0123456789abcdef"
CONTEXT = GroundingContext(dashboard_name="D", question="q")
MESSAGES = [{"role": "system", "content": "facts"}, {"role": "user", "content": "q"}]


@pytest.fixture
async def server() -> AsyncIterator[OpenAIStub]:
    async with OpenAIStub() as stub:
        yield stub


def provider(base_url: str, **options: object) -> OpenAIProvider:
    settings = {"base_url": base_url, "model": "test-model", "api_key": KEY} | options
    return OpenAIProvider(**settings)  # type: ignore[arg-type]


async def run(p: OpenAIProvider) -> list[ChatEvent]:
    try:
        return [event async for event in p.stream(MESSAGES, context=CONTEXT)]
    finally:
        await p.aclose()


def only_error(events: list[ChatEvent]) -> str:
    assert [e.type for e in events] == ["ERROR"], events
    assert events[0].error
    return events[0].error


async def test_streamed_answer_grounded_in_the_summaries(
    server: OpenAIStub, summary: DatasetSummary
) -> None:
    server.script = Script(tokens=["The average", " amount", " is ", "250", "."])
    chat = make_provider(
        ChatSettings(
            provider="openai",
            openai_base_url=server.base_url,
            openai_model="test-model",
            openai_api_key=KEY,
        )
    )
    prepared = prepare_chat(
        dashboard_name="Sales 2024",
        cards=[("Revenue by month", "Monthly revenue")],
        summaries=[summary],
        unavailable=[("returns", "its data could not be read")],
        history=[ChatTurn("user", f"old question {i}") for i in range(7)],
        question="What is the average amount?",
    )
    try:
        events = [event async for event in stream_answer(chat, prepared)]
    finally:
        await chat.aclose()

    assert [e.type for e in events] == ["TOKEN"] * 5 + ["DONE"]
    assert "".join(e.text or "" for e in events) == "The average amount is 250."

    [request] = server.requests
    assert (request.method, request.target) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["model"] == "test-model" and body["stream"] is True
    system = body["messages"][0]
    assert system["role"] == "system"
    assert 'Dashboard: "Sales 2024"' in system["content"]
    assert '- "Revenue by month": "Monthly revenue"' in system["content"]
    assert 'Dataset "sales" (id ds_sales, version 3): 1,000 rows, 9 columns' in system["content"]
    assert "min 0.5, max 499.5, mean 250, std 144.3961, sum 247,500" in system["content"]
    assert '"East" (400), "West" (300), "North" (200), "South" (100)' in system["content"]
    assert "from 2024-01-01 to 2024-12-31" in system["content"]
    assert '- "returns": its data could not be read' in system["content"]
    history = [m["content"] for m in body["messages"][1:-1]]
    assert history == [f"old question {i}" for i in range(2, 7)]
    assert body["messages"][-1] == {"role": "user", "content": "What is the average amount?"}


async def test_connection_dropped_before_the_response_is_retried_once(server: OpenAIStub) -> None:
    server.script = Script(tokens=["ok"], drop_connections=1)
    events = await run(provider(server.base_url))
    assert events == [ChatEvent.token("ok"), ChatEvent.done()]
    assert server.connections == 2 and len(server.requests) == 2


async def test_every_connection_dropped_gives_one_error_after_one_retry(server: OpenAIStub) -> None:
    server.script = Script(drop_connections=100)
    error = only_error(await run(provider(server.base_url)))
    assert error == f"could not reach the language model at http://127.0.0.1:{server.port}"
    assert server.connections == 2


async def test_provider_down_gives_one_error_event() -> None:
    port = closed_port()
    started = time.perf_counter()
    error = only_error(await run(provider(f"http://127.0.0.1:{port}/v1")))
    assert error == f"could not reach the language model at http://127.0.0.1:{port}"
    assert time.perf_counter() - started < 5
    assert "Traceback" not in error and KEY not in error


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "the language model refused the request (HTTP 401): check the API key"),
        (403, "the language model refused the request (HTTP 403): check the API key"),
        (
            404,
            "the language model endpoint or model was not found (HTTP 404): check the base URL and the model name",
        ),
        (429, "the language model is busy or rate limited (HTTP 429): try again in a moment"),
        (500, "the language model failed (HTTP 500): try again later"),
        (503, "the language model failed (HTTP 503): try again later"),
    ],
)
async def test_http_errors_are_one_readable_error_without_the_key(
    server: OpenAIStub, status: int, expected: str
) -> None:
    server.script = Script(
        status=status,
        error_body={"error": {"message": f"Incorrect API key provided: {KEY}", "code": "x"}},
    )
    error = only_error(await run(provider(server.base_url)))
    assert error == expected
    assert len(server.requests) == 1  # HTTP errors are not retried


async def test_bad_request_shows_the_redacted_provider_message(server: OpenAIStub) -> None:
    server.script = Script(
        status=400,
        error_body={
            "error": {"message": f"context too long for key {KEY} (sk-other-abcdefgh1234)"}
        },
    )
    error = only_error(await run(provider(server.base_url)))
    assert error.startswith("the language model rejected the request (HTTP 400): context too long")
    assert KEY not in error and "sk-other-abcdefgh1234" not in error and "[redacted]" in error


async def test_stream_cut_in_the_middle_gives_tokens_then_one_error(server: OpenAIStub) -> None:
    server.script = Script(tokens=["a", "b", "c", "d"], cut_after=2)
    events = await run(provider(server.base_url))
    assert events[:2] == [ChatEvent.token("a"), ChatEvent.token("b")]
    assert events[2:] == [
        ChatEvent.failed("the answer was cut off: the connection to the language model was lost")
    ]
    assert server.connections == 1  # never retried once tokens were sent


async def test_stalled_stream_hits_the_read_timeout(server: OpenAIStub) -> None:
    server.script = Script(tokens=["a", "b", "c"], stall_after=1)
    started = time.perf_counter()
    events = await run(provider(server.base_url, read_timeout=0.3))
    assert events == [
        ChatEvent.token("a"),
        ChatEvent.failed("the language model stopped responding for 0.3 seconds"),
    ]
    assert time.perf_counter() - started < 3


async def test_slow_stream_hits_the_total_timeout(server: OpenAIStub) -> None:
    server.script = Script(tokens=["t"] * 50, delay=0.05)
    events = await run(provider(server.base_url, read_timeout=5.0, total_timeout=0.4))
    assert 2 <= len(events) < 50
    assert all(e.type == "TOKEN" for e in events[:-1])
    assert events[-1] == ChatEvent.failed("the language model did not finish within 0.4 seconds")


async def test_stream_ending_without_done_marker(server: OpenAIStub) -> None:
    server.script = Script(tokens=["a"], send_done=False)  # finish_reason "stop" still sent
    assert await run(provider(server.base_url)) == [ChatEvent.token("a"), ChatEvent.done()]
    server.script = Script(tokens=["a"], send_done=False, finish_reason=None)
    events = await run(provider(server.base_url))
    assert events == [
        ChatEvent.token("a"),
        ChatEvent.failed("the answer was cut off: the language model ended the stream early"),
    ]


async def test_error_event_inside_the_stream(server: OpenAIStub) -> None:
    server.script = Script(tokens=["a"], stream_error=f"overloaded, key {KEY}", send_done=False)
    events = await run(provider(server.base_url))
    assert events[0] == ChatEvent.token("a")
    assert events[1:] == [
        ChatEvent.failed("the language model reported an error: overloaded, key [redacted]")
    ]


async def test_non_streaming_json_answer_is_accepted(server: OpenAIStub) -> None:
    server.script = Script(tokens=["whole ", "answer"], json_response=True)
    assert await run(provider(server.base_url)) == [
        ChatEvent.token("whole answer"),
        ChatEvent.done(),
    ]


async def test_azure_style_url_and_api_key_header(server: OpenAIStub) -> None:
    base = f"http://127.0.0.1:{server.port}/openai/deployments/gpt-4o/?api-version=2024-10-21"
    events = await run(provider(base, auth_style="api-key"))
    assert events[-1] == ChatEvent.done()
    [request] = server.requests
    assert request.target == "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers


async def test_no_key_sends_no_auth_header(server: OpenAIStub) -> None:
    events = await run(provider(server.base_url, api_key=None))
    assert events[-1] == ChatEvent.done()
    assert "authorization" not in server.requests[0].headers


async def test_connection_is_reused_between_answers(server: OpenAIStub) -> None:
    p = provider(server.base_url)
    try:
        for _ in range(3):
            assert [e async for e in p.stream(MESSAGES, context=CONTEXT)][-1] == ChatEvent.done()
    finally:
        await p.aclose()
    assert len(server.requests) == 3 and server.connections == 1


async def test_consumer_stopping_early_closes_the_response(server: OpenAIStub) -> None:
    server.script = Script(tokens=["a", "b", "c"], stall_after=1)
    p = provider(server.base_url, read_timeout=30.0)
    prepared = prepare_chat(
        dashboard_name="D", cards=[], summaries=[], unavailable=[], history=[], question="q"
    )
    stream = stream_answer(p, prepared)
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    await p.aclose()
    assert first == ChatEvent.token("a")


def test_auth_header_styles() -> None:
    assert auth_headers("https://api.openai.com/v1", KEY, "auto") == {
        "Authorization": f"Bearer {KEY}"
    }
    assert auth_headers("https://res.openai.azure.com/openai/v1", KEY, "auto") == {"api-key": KEY}
    assert auth_headers("https://res.openai.azure.com/openai/v1", KEY, "bearer") == {
        "Authorization": f"Bearer {KEY}"
    }
    assert auth_headers("http://localhost:11434/v1", None, "auto") == {}


def test_url_building_and_redaction() -> None:
    assert str(completions_url("http://h:8000/v1/")) == "http://h:8000/v1/chat/completions"
    assert str(completions_url("http://h/v1/chat/completions")) == "http://h/v1/chat/completions"
    assert redact(f"bad {KEY}\n and  api_key-ABCDEFGH12", KEY) == "bad [redacted] and [redacted]"
