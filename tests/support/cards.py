"""Creating cards and running them through the API, following each run over WebSocket."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api

CREATE = """mutation($i: CreateCardInput!) { createCard(input: $i) { card { id name type
  usedColumns filterApplicable } } }"""
EXECUTE = """mutation($i: ExecuteCardInput!) { executeCard(input: $i) { execution { id status
  result { cached } } } }"""
FOLLOW = """subscription($id: ID!) { cardExecution(id: $id) { id status progress
  result { html cached usedColumns filterApplicable executionTimeMs ignoredFilters }
  error { code message line } card { id } } }"""


async def create_card(
    api: Api,
    token: str,
    code: str,
    dataset_ids: list[str],
    *,
    name: str = "card",
    card_type: str = "CODE",
    params: dict[str, Any] | None = None,
) -> str:
    data = await api.ok(
        CREATE,
        {
            "i": {
                "name": name,
                "code": code,
                "datasetIds": dataset_ids,
                "type": card_type,
                "params": params,
            }
        },
        token=token,
    )
    return str(data["createCard"]["card"]["id"])


async def follow_card(api: Api, token: str, execution_id: str) -> list[dict[str, Any]]:
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW, {"id": execution_id})
        return [
            p["data"]["cardExecution"] if p.get("data") else p async for p in session.messages(op)
        ]


async def run_card(api: Api, token: str, card_id: str, **options: Any) -> dict[str, Any]:
    """Execute and wait for the final state (over the subscription)."""
    data = await api.ok(EXECUTE, {"i": {"id": card_id, **options}}, token=token)
    execution = data["executeCard"]["execution"]
    return (await follow_card(api, token, execution["id"]))[-1]


def render(body: str, *, imports: str = "") -> str:
    """A card whose render() runs `body` (indented by the caller's lines)."""
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"{imports}\ndef render(dataset, filters, params):\n{lines}\n"
