"""Building dashboards, shares and groups through the API for the tests."""

from __future__ import annotations

import secrets
from typing import Any

from tests.support.client import Api

CREATE = """mutation($i: CreateDashboardInput!) { createDashboard(input: $i) {
  dashboard { id version filters { id column } } } }"""
SHARE = """mutation($i: ShareDashboardInput!) { shareDashboard(input: $i) { share { id permission } } }"""
ADD_MEMBER = """mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }"""
REMOVE_MEMBER = """mutation($g: ID!, $u: ID!) { removeGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }"""
CREATE_GROUP = """mutation($n: String!) { createGroup(input: {name: $n}) { group { id } } }"""


async def create_dashboard(
    api: Api,
    token: str,
    *,
    name: str = "Dash",
    card_ids: list[str] = (),
    filters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    items = [{"cardId": c, "x": 0, "y": i * 2, "w": 6, "h": 2} for i, c in enumerate(card_ids)]
    data = await api.ok(
        CREATE,
        {"i": {"name": name, "layout": {"items": items}, "filters": filters or []}},
        token=token,
    )
    return data["createDashboard"]["dashboard"]  # type: ignore[no-any-return]


async def share(
    api: Api, token: str, dashboard_id: str, target_type: str, target_id: str, permission: str
) -> str:
    data = await api.ok(
        SHARE,
        {
            "i": {
                "dashboardId": dashboard_id,
                "targetType": target_type,
                "targetId": target_id,
                "permission": permission,
            }
        },
        token=token,
    )
    return str(data["shareDashboard"]["share"]["id"])


async def new_group(api: Api, admin_token: str, member_ids: list[str]) -> str:
    data = await api.ok(CREATE_GROUP, {"n": f"group-{secrets.token_hex(4)}"}, token=admin_token)
    group_id = str(data["createGroup"]["group"]["id"])
    for member in member_ids:
        await api.ok(ADD_MEMBER, {"g": group_id, "u": member}, token=admin_token)
    return group_id
