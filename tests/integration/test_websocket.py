"""WebSocket connections: graphql-transport-ws only, authenticated in connection_init."""

from __future__ import annotations

import pytest
import websockets

from tests.support.client import Api


async def _close_code(api: Api, params: dict[str, object] | None) -> int | None:
    async with api.websocket(params) as session:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await session.receive(timeout=10)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_connection_without_a_valid_token_is_refused(api: Api, admin_token: str) -> None:
    assert await _close_code(api, {}) == 4403
    assert await _close_code(api, {"authorization": "Bearer not-a-token"}) == 4403
    assert await _close_code(api, {"authorization": admin_token}) == 4403  # no Bearer scheme


@pytest.mark.parametrize("key", ["authorization", "Authorization"])
async def test_connection_with_a_token_is_acknowledged(
    api: Api, admin_token: str, key: str
) -> None:
    async with api.websocket({key: f"Bearer {admin_token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe("query { me { email } }")
        payloads = [p async for p in session.messages(op)]
        assert payloads[0]["data"]["me"]["email"]


async def test_revoked_token_cannot_open_a_connection(api: Api, users) -> None:  # type: ignore[no-untyped-def]
    user = await users.create("ws-revoked")
    await api.ok("mutation { logout { ok } }", token=user["token"])
    assert await _close_code(api, {"authorization": f"Bearer {user['token']}"}) == 4403


async def test_legacy_graphql_ws_protocol_is_not_offered(api: Api, admin_token: str) -> None:
    with pytest.raises((websockets.InvalidHandshake, websockets.ConnectionClosed)):
        async with api.websocket(
            {"authorization": f"Bearer {admin_token}"}, subprotocol="graphql-ws"
        ) as session:
            await session.receive(timeout=10)
