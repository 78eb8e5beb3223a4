"""The dashboard chatbot over a real WebSocket: the built-in provider in English and
Japanese, an OpenAI-compatible provider on loopback, failures, access, limits, audit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Users
from tests.support.cards import create_card, render
from tests.support.chat import answer, ask
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess
from tests.support.stack import Stack
from tests.unit.chat.sse_server import OpenAIStub, Script, closed_port

ROWS = [["地域", "product", "amount", "day"]] + [
    [region, product, amount, f"2024-0{month}-1{month}"]
    for region, product, amount, month in [
        ("東京", "apple", 10, 1),
        ("大阪", "pear", 20, 2),
        ("東京", "plum", 30, 3),
        ("東京", "apple", 40, 4),
        ("福岡", "fig", 50, 5),
    ]
]


async def viewer_of(api: Api, users: Users, board: dict[str, Any]) -> str:
    """A fresh VIEWER, so each test has its own five questions a minute."""
    viewer = await users.create("chat-asker")
    await share(api, board["owner"]["token"], board["dashboard"], "USER", viewer["id"], "VIEWER")
    return viewer["token"]


@pytest.fixture(scope="module")
async def board(api: Api, users: Users, worker: Any) -> dict[str, Any]:
    owner = await users.create("chat-owner")
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(ROWS), name="sales")
    assert final["status"] == "SUCCEEDED"
    card = await create_card(
        api,
        owner["token"],
        render("return 'x'"),
        [uploaded["dataset"]["id"]],
        name="Sales by region",
    )
    dash = await create_dashboard(api, owner["token"], name="Regional sales", card_ids=[card])
    return {"owner": owner, "dashboard": dash["id"], "dataset": uploaded["dataset"]["id"]}


async def test_builtin_answers_in_english_and_japanese(api: Api, board: dict[str, Any]) -> None:
    token, dash = board["owner"]["token"], board["dashboard"]
    rows = answer(await ask(api, token, dash, "How many rows are there?"))
    assert "5" in rows
    mean = answer(await ask(api, token, dash, "What is the average amount?"))
    assert "30" in mean
    top = answer(await ask(api, token, dash, "What are the top values of 地域?"))
    assert top.index("東京") < top.index("大阪") and "3" in top
    jp_rows = answer(await ask(api, token, dash, "データは何件ありますか？"))
    assert "5" in jp_rows and "件" in jp_rows
    jp_mean = answer(await ask(api, token, dash, "amountの平均は？"))
    assert "30" in jp_mean and "平均" in jp_mean


async def test_free_form_questions_need_a_model(
    api: Api, board: dict[str, Any], users: Users
) -> None:
    viewer = await users.create("chat-viewer")
    await share(api, board["owner"]["token"], board["dashboard"], "USER", viewer["id"], "VIEWER")
    reply = answer(
        await ask(api, viewer["token"], board["dashboard"], "Why did sales drop in spring?")
    )
    assert "LLM provider" in reply or "TILEGRAPH_CHAT_PROVIDER" in reply


async def test_an_openai_compatible_server_gets_the_grounded_prompt(
    api: Api, users: Users, inprocess: InProcess, board: dict[str, Any]
) -> None:
    token = await viewer_of(api, users, board)
    async with OpenAIStub(Script(tokens=["Sales ", "peaked ", "in ", "May."])) as llm:
        server = await inprocess.start_api(
            {
                "TILEGRAPH_CHAT_PROVIDER": "openai",
                "TILEGRAPH_CHAT_OPENAI_BASE_URL": llm.base_url,
                "TILEGRAPH_CHAT_OPENAI_MODEL": "test-model",
                "TILEGRAPH_CHAT_OPENAI_API_KEY": "sk-secret-key-123",
            },
        )
        openai_api = Api(server.url, server.ws_url)
        try:
            history = [{"role": "user", "content": f"old question {i}"} for i in range(7)]
            events = await ask(
                openai_api, token, board["dashboard"], "When did sales peak?", history
            )
        finally:
            await openai_api.close()
    assert [e.get("type") for e in events] == ["TOKEN"] * 4 + ["DONE"], events
    assert answer(events) == "Sales peaked in May."
    request = llm.requests[-1]
    body = request.json()
    assert body["model"] == "test-model" and body["stream"] is True
    assert request.headers["authorization"] == "Bearer sk-secret-key-123"
    prompt = "\n".join(m["content"] for m in body["messages"])
    assert "Regional sales" in prompt and "Sales by region" in prompt
    assert "東京" in prompt and "amount" in prompt and "5" in prompt  # the summaries
    assert body["messages"][-1] == {"role": "user", "content": "When did sales peak?"}
    old = [m["content"] for m in body["messages"] if m["content"].startswith("old question")]
    assert old == [f"old question {i}" for i in range(2, 7)]  # the last 5 only


async def test_provider_down_ends_with_one_error(
    api: Api, users: Users, inprocess: InProcess, board: dict[str, Any]
) -> None:
    token = await viewer_of(api, users, board)
    server = await inprocess.start_api(
        {
            "TILEGRAPH_CHAT_PROVIDER": "openai",
            "TILEGRAPH_CHAT_OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1",
            "TILEGRAPH_CHAT_OPENAI_MODEL": "m",
            "TILEGRAPH_CHAT_OPENAI_API_KEY": "sk-hidden-999",
        },
    )
    down_api = Api(server.url, server.ws_url)
    try:
        events = await ask(down_api, token, board["dashboard"], "Anything?")
    finally:
        await down_api.close()
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["error"] and "sk-hidden" not in events[0]["error"]
    assert "Traceback" not in events[0]["error"]


async def test_strangers_limits_input_and_audit(
    api: Api, stack: Stack, board: dict[str, Any], users: Users, admin_token: str
) -> None:
    stranger = await users.create("chat-stranger")
    denied = await ask(api, stranger["token"], board["dashboard"], "How many rows?")
    assert denied[0]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    asker = await users.create("chat-limited")
    await share(api, board["owner"]["token"], board["dashboard"], "USER", asker["id"], "VIEWER")
    empty = await ask(api, asker["token"], board["dashboard"], "   ")
    assert empty[0]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    too_long = await ask(api, asker["token"], board["dashboard"], "x" * 10_001)
    assert too_long[0]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    for n in range(5):
        assert (await ask(api, asker["token"], board["dashboard"], f"How many rows? {n}"))[-1][
            "type"
        ] == "DONE"
    limited = await ask(api, asker["token"], board["dashboard"], "How many rows?")
    assert limited[0]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    logs = await api.ok(
        "query($u: ID!) { auditLogs(filter: {userId: $u, eventType: CHATBOT_QUERY}) { totalCount edges { node { targetId details } } } }",
        {"u": asker["id"]},
        token=admin_token,
    )
    assert logs["auditLogs"]["totalCount"] == 5
    node = logs["auditLogs"]["edges"][0]["node"]
    assert node["targetId"] == board["dashboard"]
    assert node["details"] == {
        "messageLength": len("How many rows? 4"),
        "provider": "builtin",
        "outcome": "DONE",
    }
    assert "How many" not in str(node)  # never the question itself
