"""Asking a dashboard's chatbot over the WebSocket, as the viewer does."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api

CHAT = """subscription($d: ID!, $m: String!, $h: [ChatMessageInput!]) {
  dashboardChat(dashboardId: $d, message: $m, history: $h) { type text error } }"""


async def ask(
    api: Api,
    token: str,
    dashboard_id: str,
    message: str,
    history: list[dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Every event of one answer (or the subscription's error payload)."""
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(CHAT, {"d": dashboard_id, "m": message, "h": history})
        return [
            p["data"]["dashboardChat"] if p.get("data") else p async for p in session.messages(op)
        ]


def answer(events: list[dict[str, Any]]) -> str:
    """The answer's text, once it has streamed to DONE."""
    assert events[-1]["type"] == "DONE", events
    assert all(e["type"] == "TOKEN" for e in events[:-1])
    return "".join(e["text"] for e in events[:-1])
