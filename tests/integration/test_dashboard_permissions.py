"""A generated permission matrix: every dashboard-scoped operation against every relation
a caller can have with the dashboard, asserted through GraphQL; for relations a dataset
policy limits, the reads (filter values, the chatbot's row count) show only what it lets
the caller see."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Users
from tests.support.cards import create_card, follow_card, render
from tests.support.chat import answer, ask
from tests.support.client import Api, Response
from tests.support.dashboards import (
    REMOVE_MEMBER,
    create_dashboard,
    new_group,
    share,
)
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.policies import create_policy

RANK = {None: 0, "VIEWER": 1, "EDITOR": 2, "OWNER": 3}

# relation -> the level it should give (None: no access at all)
RELATIONS: dict[str, str | None] = {
    "owner": "OWNER",
    "direct VIEWER": "VIEWER",
    "direct EDITOR": "EDITOR",
    "direct OWNER": "OWNER",
    "group VIEWER": "VIEWER",
    "group EDITOR": "EDITOR",
    "group OWNER": "OWNER",
    "direct VIEWER + group EDITOR": "EDITOR",
    "direct EDITOR + group VIEWER": "EDITOR",
    "removed from group": None,
    "stranger": None,
    "admin stranger": None,
    "direct VIEWER, rows limited": "VIEWER",
    "group VIEWER, column hidden": "VIEWER",
}

# Relations whose dataset reads a dataset policy limits: relation -> (the relation it builds
# on, the policy for the caller or their group, the rows and region values they then see).
LIMITED: dict[str, tuple[str, dict[str, Any], int, list[str]]] = {
    "direct VIEWER, rows limited": (
        "direct VIEWER",
        {"rowFilters": [{"column": "region", "values": ["a"]}]},
        1,
        ["a"],
    ),
    "group VIEWER, column hidden": ("group VIEWER", {"hiddenColumns": ["region"]}, 2, []),
}


@dataclass
class World:
    """One dashboard, owned by `owner`, and a caller related to it as the case says."""

    api: Api
    owner: dict[str, str]
    caller: dict[str, str]
    dashboard_id: str
    card_id: str
    filter_id: str
    owners_private_view: str
    owners_shared_view: str
    spare_share: str
    # What the caller sees of the dataset (its policies): rows, and the region filter's values.
    rows: int = 2
    regions: tuple[str, ...] = ("a", "b")
    # A delivery of the dashboard, made by its owner.
    delivery_id: str = ""


# Raw material (code, rows, source) is the card's and dataset's owner's only, whatever the
# caller's level on the dashboard.
CARD_OWNER = "CARD_OWNER"


def expected(level: str | None, needed: str, *, owns_card: bool) -> str:
    if level is None:
        return "NOT_FOUND"
    if needed == CARD_OWNER:
        return "OK" if owns_card else "FORBIDDEN"
    return "OK" if RANK[level] >= RANK[needed] else "FORBIDDEN"


def outcome(response: Response, path: str) -> str:
    if response.errors:
        return str(response.code)
    data = response.data
    for key in path.split("."):
        data = data[key]
    return "OK" if data is not None else "NULL"


# The card of every world: its HTML, metrics and table all show what its reader may see.
CARD_CODE = render(
    "return HTMLResult(html=str(len(dataset)), metrics={'rows': len(dataset)}, table=dataset)"
)


@pytest.fixture(scope="module")
async def dataset(api: Api, users: Users, worker: Any) -> tuple[dict[str, str], str]:
    owner = await users.create("matrix-owner")
    uploaded, final = await import_and_wait(
        api, owner["token"], csv_bytes([["region", "v"], ["a", 1], ["b", 2]])
    )
    assert final["status"] == "SUCCEEDED"
    return owner, str(uploaded["dataset"]["id"])


async def build_world(
    api: Api, users: Users, admin_token: str, relation: str, owner: dict[str, str], dataset_id: str
) -> World:
    card_id = await create_card(api, owner["token"], CARD_CODE, [dataset_id])
    dash = await create_dashboard(
        api,
        owner["token"],
        card_ids=[card_id],
        filters=[{"type": "CATEGORY", "column": "region", "label": "Region"}],
    )
    dashboard_id, filter_id = dash["id"], dash["filters"][0]["id"]
    limited = LIMITED.get(relation)
    if limited:
        relation = limited[0]
    group = None
    if relation == "owner":
        caller = owner
    elif relation == "admin stranger":
        caller = await users.create("admin-stranger", role="ADMIN")
    else:
        caller = await users.create("caller")
    token = owner["token"]
    if relation.startswith("direct"):
        await share(api, token, dashboard_id, "USER", caller["id"], relation.split()[1])
    if "group" in relation and relation != "removed from group":
        level = relation.split()[-1]
        group = await new_group(api, admin_token, [caller["id"]])
        await share(api, token, dashboard_id, "GROUP", group, level)
    if limited:
        target = ("GROUP", group) if group else ("USER", caller["id"])
        await create_policy(api, token, dataset_id, *target, **limited[1])
    if relation == "removed from group":
        group = await new_group(api, admin_token, [caller["id"]])
        await share(api, token, dashboard_id, "GROUP", group, "EDITOR")
        await api.ok(REMOVE_MEMBER, {"g": group, "u": caller["id"]}, token=admin_token)
    view = (
        "mutation($i: CreateFilterViewInput!) { createFilterView(input: $i) { filterView { id } } }"
    )
    private = await api.ok(
        view,
        {"i": {"dashboardId": dashboard_id, "name": "mine", "filterState": {filter_id: ["a"]}}},
        token=token,
    )
    shared = await api.ok(
        view,
        {"i": {"dashboardId": dashboard_id, "name": "ours", "filterState": {}, "isShared": True}},
        token=token,
    )
    bystander = await users.create("bystander")
    spare = await share(api, token, dashboard_id, "USER", bystander["id"], "VIEWER")
    delivery = await api.ok(CREATE_DELIVERY, {"i": delivery_input(dashboard_id)}, token=token)
    return World(
        api,
        owner,
        caller,
        dashboard_id,
        card_id,
        filter_id,
        private["createFilterView"]["filterView"]["id"],
        shared["createFilterView"]["filterView"]["id"],
        spare,
        *((limited[2], tuple(limited[3])) if limited else ()),
        delivery_id=delivery["createDelivery"]["delivery"]["id"],
    )


CREATE_DELIVERY = """mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) {
  delivery { id } } }"""


def delivery_input(dashboard_id: str) -> dict[str, Any]:
    return {
        "dashboardId": dashboard_id,
        "name": "weekly",
        "scheduleCron": "0 7 * * 1",
        "enabled": False,
        "channel": "EMAIL",
        "recipients": ["team@example.com"],
    }


async def _delivery_node(w: World) -> str:
    """A VIEWER is told the owner's delivery does not exist, as node(id:) says of anything
    hidden; counted as the FORBIDDEN of the dashboard's own field."""
    response = await w.api.post(
        "query($id: ID!) { node(id: $id) { id ... on Delivery { recipients runs { totalCount } } } }",
        {"id": w.delivery_id},
        token=w.caller["token"],
    )
    if response.errors and response.code == "NOT_FOUND" and await _sees(w):
        return "FORBIDDEN"
    return outcome(response, "node")


async def _change_owners_delivery(w: World) -> str:
    """Only a delivery's owner changes it: to anyone else who sees the dashboard it is
    not theirs (NOT_FOUND, counted as FORBIDDEN)."""
    response = await w.api.post(
        'mutation($id: ID!) { updateDelivery(input: {id: $id, name: "renamed"}) { delivery { id } } }',
        {"id": w.delivery_id},
        token=w.caller["token"],
    )
    if response.errors and response.code == "NOT_FOUND" and await _sees(w):
        return "FORBIDDEN"
    return outcome(response, "updateDelivery")


Operation = tuple[str, str, Callable[[World], Awaitable[str]]]
RUN_CARD_VIA = """mutation($c: ID!, $d: ID!) { executeCard(input: {id: $c, dashboardId: $d}) {
  execution { id } } }"""
RUN_ALL = "mutation($d: ID!) { executeDashboard(input: {id: $d}) { executions { id } } }"


async def _call(w: World, query: str, variables: dict[str, Any], path: str) -> str:
    return outcome(await w.api.post(query, variables, token=w.caller["token"]), path)


async def _own_view(w: World, shared: bool) -> str:
    """Creates a view as the caller (as the owner when the caller may not); returns its id."""
    query = (
        "mutation($i: CreateFilterViewInput!) { createFilterView(input: $i) { filterView { id } } }"
    )
    response = await w.api.post(
        query,
        {"i": {"dashboardId": w.dashboard_id, "name": "x", "filterState": {}, "isShared": shared}},
        token=w.caller["token"],
    )
    return str(response.data["createFilterView"]["filterView"]["id"]) if not response.errors else ""


OPERATIONS: list[Operation] = [
    (
        "create delivery",
        "EDITOR",
        lambda w: _call(
            w, CREATE_DELIVERY, {"i": delivery_input(w.dashboard_id)}, "createDelivery"
        ),
    ),
    (
        "list deliveries",
        "EDITOR",
        lambda w: _call(
            w,
            "query($id: ID!) { dashboard(id: $id) { deliveries { id recipients } } }",
            {"id": w.dashboard_id},
            "dashboard.deliveries",
        ),
    ),
    ("read delivery", "EDITOR", _delivery_node),
    ("change delivery", CARD_OWNER, _change_owners_delivery),
    (
        "read dashboard",
        "VIEWER",
        lambda w: _call(
            w,
            "query($id: ID!) { dashboard(id: $id) { id name myPermission cardCount } }",
            {"id": w.dashboard_id},
            "dashboard",
        ),
    ),
    (
        "read shares",
        "OWNER",
        lambda w: _call(
            w,
            "query($id: ID!) { dashboard(id: $id) { shares { id } } }",
            {"id": w.dashboard_id},
            "dashboard.shares",
        ),
    ),
    (
        "update dashboard",
        "EDITOR",
        lambda w: _call(
            w,
            'mutation($id: ID!) { updateDashboard(input: {id: $id, name: "renamed"}) { dashboard { id } } }',
            {"id": w.dashboard_id},
            "updateDashboard",
        ),
    ),
    (
        "clone dashboard",
        "VIEWER",
        lambda w: _call(
            w,
            "mutation($id: ID!) { cloneDashboard(input: {id: $id}) { dashboard { id name } } }",
            {"id": w.dashboard_id},
            "cloneDashboard",
        ),
    ),
    ("add share", "OWNER", lambda w: _new_share(w)),
    (
        "update share",
        "OWNER",
        lambda w: _call(
            w,
            "mutation($id: ID!) { updateDashboardShare(input: {id: $id, permission: EDITOR}) { share { id } } }",
            {"id": w.spare_share},
            "updateDashboardShare",
        ),
    ),
    (
        "create private view",
        "VIEWER",
        lambda w: _call(
            w,
            'mutation($id: ID!) { createFilterView(input: {dashboardId: $id, name: "p", filterState: {}}) { filterView { id } } }',
            {"id": w.dashboard_id},
            "createFilterView",
        ),
    ),
    (
        "create shared view",
        "EDITOR",
        lambda w: _call(
            w,
            'mutation($id: ID!) { createFilterView(input: {dashboardId: $id, name: "s", filterState: {}, isShared: true}) { filterView { id } } }',
            {"id": w.dashboard_id},
            "createFilterView",
        ),
    ),
    (
        "read shared view",
        "VIEWER",
        lambda w: _call(
            w,
            "query($id: ID!) { filterView(id: $id) { id } }",
            {"id": w.owners_shared_view},
            "filterView",
        ),
    ),
    ("rename own view", "VIEWER", lambda w: _rename_own_view(w)),
    ("share own view", "EDITOR", lambda w: _share_own_view(w)),
    (
        "execute card via dashboard",
        "VIEWER",
        lambda w: _call(
            w,
            "mutation($c: ID!, $d: ID!) { executeCard(input: {id: $c, dashboardId: $d}) { execution { id } } }",
            {"c": w.card_id, "d": w.dashboard_id},
            "executeCard",
        ),
    ),
    ("card runs read the caller's rows", "VIEWER", lambda w: _runs_see_own_rows(w)),
    ("a run's metrics and table are the caller's", "VIEWER", lambda w: _run_outputs(w)),
    (
        "read card via dashboard",
        "VIEWER",
        lambda w: _call(
            w,
            "query($c: ID!, $d: ID!) { card(id: $c, dashboardId: $d) { id datasets { name } } }",
            {"c": w.card_id, "d": w.dashboard_id},
            "card",
        ),
    ),
    *(
        (
            f"read {what} via dashboard",
            CARD_OWNER,
            lambda w, selection=selection: _call(
                w,
                "query($c: ID!, $d: ID!) { card(id: $c, dashboardId: $d) { id "
                + selection
                + " } }",
                {"c": w.card_id, "d": w.dashboard_id},
                "card",
            ),
        )
        for what, selection in [
            ("card code", "code"),
            ("card revisions", "revisions { totalCount nodes { snapshot } }"),
            ("dataset rows", "datasets { preview(limit: 5) { totalRows } }"),
            ("dataset values", 'datasets { columnValues(column: "region") }'),
            ("dataset source", "datasets { sourceConfig }"),
        ]
    ),
    ("read filter values", "VIEWER", lambda w: _filter_values(w)),
    ("read lineage", "VIEWER", lambda w: _lineage(w)),
    ("ask the chatbot", "VIEWER", lambda w: _chat(w)),
    (
        "execute dashboard",
        "VIEWER",
        lambda w: _call(
            w,
            "mutation($id: ID!) { executeDashboard(input: {id: $id}) { executions { id } } }",
            {"id": w.dashboard_id},
            "executeDashboard",
        ),
    ),
    (
        "read dashboard revisions",
        "EDITOR",
        lambda w: _call(
            w,
            "query($id: ID!) { dashboard(id: $id) { revisions { totalCount nodes { snapshot } } } }",
            {"id": w.dashboard_id},
            "dashboard",
        ),
    ),
    ("read a dashboard revision by id", "EDITOR", lambda w: _dashboard_revision_node(w)),
    ("restore a dashboard revision", "EDITOR", lambda w: _restore_dashboard(w)),
    (
        "remove share",
        "OWNER",
        lambda w: _call(
            w,
            "mutation($id: ID!) { removeDashboardShare(input: {id: $id}) { deletedId } }",
            {"id": w.spare_share},
            "removeDashboardShare",
        ),
    ),
    (
        "delete dashboard",
        "OWNER",
        lambda w: _call(
            w,
            "mutation($id: ID!) { deleteDashboard(input: {id: $id}) { deletedId } }",
            {"id": w.dashboard_id},
            "deleteDashboard",
        ),
    ),
]


async def _chat(w: World) -> str:
    """The chatbot answers VIEWERs and more, counting the rows the caller may see."""
    events = await ask(w.api, w.caller["token"], w.dashboard_id, "How many rows?")
    if events and events[0].get("errors"):
        return str(events[0]["errors"][0]["extensions"]["code"])
    reply = answer(events)
    return "OK" if reply == f"data has {w.rows} rows." else f"answer {reply!r}"


async def _lineage(w: World) -> str:
    """The dashboard's lineage lists it and the card it lends to VIEWERs and more; the
    dataset behind the card is the card owner's: listed for them, only counted for others."""
    response = await w.api.post(
        "query($id: ID!) { lineage(id: $id) { nodes { id } hiddenCount } }",
        {"id": w.dashboard_id},
        token=w.caller["token"],
    )
    if response.errors:
        return str(response.code)
    graph = response.data["lineage"]
    listed = [n["id"] for n in graph["nodes"]]
    lent = listed[:2] == [w.dashboard_id, w.card_id]
    if w.caller["id"] == w.owner["id"]:
        ok = lent and len(listed) == 3 and listed[2].startswith("ds_") and graph["hiddenCount"] == 0
    else:
        ok = lent and len(listed) == 2 and graph["hiddenCount"] == 1
    return "OK" if ok else f"saw {graph}"


async def _filter_values(w: World) -> str:
    """The filter's options, as the dashboard's cards show them (from the rows and columns
    the caller may see), for VIEWERs and more."""
    response = await w.api.post(
        "query($id: ID!) { dashboard(id: $id) { filters { values } } }",
        {"id": w.dashboard_id},
        token=w.caller["token"],
    )
    if response.errors:
        return str(response.code)
    values = response.data["dashboard"]["filters"][0]["values"]
    return "OK" if values == list(w.regions) else f"values {values}"


async def _new_share(w: World) -> str:
    target = f"usr_{secrets.token_hex(8)}"  # any id: the level check comes first
    query = "mutation($i: ShareDashboardInput!) { shareDashboard(input: $i) { share { id } } }"
    response = await w.api.post(
        query,
        {
            "i": {
                "dashboardId": w.dashboard_id,
                "targetType": "USER",
                "targetId": target,
                "permission": "VIEWER",
            }
        },
        token=w.caller["token"],
    )
    if response.errors and response.code == "BAD_USER_INPUT":
        return "OK"  # allowed to share; the made-up user does not exist
    return outcome(response, "shareDashboard")


async def _rename_own_view(w: World) -> str:
    view_id = await _own_view(w, shared=False)
    if not view_id:
        return "NOT_FOUND" if not await _sees(w) else "FORBIDDEN"
    return await _call(
        w,
        'mutation($id: ID!) { updateFilterView(input: {id: $id, name: "n"}) { filterView { id } } }',
        {"id": view_id},
        "updateFilterView",
    )


async def _share_own_view(w: World) -> str:
    view_id = await _own_view(w, shared=False)
    if not view_id:
        return "NOT_FOUND" if not await _sees(w) else "FORBIDDEN"
    return await _call(
        w,
        "mutation($id: ID!) { updateFilterView(input: {id: $id, isShared: true}) { filterView { id } } }",
        {"id": view_id},
        "updateFilterView",
    )


async def _runs_see_own_rows(w: World) -> str:
    """Runs through the dashboard (one card, then all) read the rows the caller may see:
    one of two where a policy limits them, both otherwise."""
    token = w.caller["token"]
    one = await w.api.post(RUN_CARD_VIA, {"c": w.card_id, "d": w.dashboard_id}, token=token)
    if one.errors:
        return str(one.code)
    every = await w.api.post(RUN_ALL, {"d": w.dashboard_id}, token=token)
    if every.errors:
        return str(every.code)
    ids = [one.data["executeCard"]["execution"]["id"]]
    ids += [e["id"] for e in every.data["executeDashboard"]["executions"]]
    rows = str(w.rows)
    for execution_id in ids:
        final = (await follow_card(w.api, token, execution_id))[-1]
        if final["status"] != "SUCCEEDED" or final["result"]["html"] != rows:
            return f"saw {final['status']} {final['result']}"
    return "OK"


RUN_OUTPUTS = """query($id: ID!) { execution(id: $id) { ... on CardExecution { result {
  metrics table { columns rowCount rows(limit: 10) downloadUrl } } } } }"""


async def _run_outputs(w: World) -> str:
    """A run through the dashboard returns metrics and a table of the rows and columns the
    caller may see (its CSV link too); nobody else may read that run's table, not even the
    card's owner."""
    token = w.caller["token"]
    run = await w.api.post(RUN_CARD_VIA, {"c": w.card_id, "d": w.dashboard_id}, token=token)
    if run.errors:
        return str(run.code)
    execution_id = run.data["executeCard"]["execution"]["id"]
    final = (await follow_card(w.api, token, execution_id))[-1]
    if final["status"] != "SUCCEEDED":
        return f"run {final['status']}"
    result = (await w.api.ok(RUN_OUTPUTS, {"id": execution_id}, token=token))["execution"]["result"]
    table = result["table"]
    columns = ["region", "v"] if w.regions else ["v"]
    if result["metrics"] != {"rows": w.rows} or table["columns"] != columns:
        return f"saw {result}"
    if table["rowCount"] != w.rows or len(table["rows"]) != w.rows:
        return f"saw {table}"
    async with httpx.AsyncClient() as plain:  # no token: the link is enough
        download = await plain.get(table["downloadUrl"])
    if download.status_code != 200 or len(download.text.splitlines()) != w.rows + 1:
        return f"download {download.status_code} {download.text!r}"
    if w.caller is not w.owner:
        other = await w.api.post(RUN_OUTPUTS, {"id": execution_id}, token=w.owner["token"])
        if not other.errors or other.code != "NOT_FOUND":
            return f"the card's owner read the caller's run: {other.body}"
    return "OK"


async def _first_dashboard_revision(w: World) -> str:
    data = await w.api.ok(
        "query($id: ID!) { dashboard(id: $id) { revisions { nodes { id } } } }",
        {"id": w.dashboard_id},
        token=w.owner["token"],
    )
    return str(data["dashboard"]["revisions"]["nodes"][-1]["id"])


async def _dashboard_revision_node(w: World) -> str:
    """A VIEWER is told a dashboard revision does not exist, as node(id:) says of anything
    hidden; counted as the FORBIDDEN of the dashboard's own field."""
    response = await w.api.post(
        "query($id: ID!) { node(id: $id) { id ... on Revision { snapshot } } }",
        {"id": await _first_dashboard_revision(w)},
        token=w.caller["token"],
    )
    if response.errors and response.code == "NOT_FOUND" and await _sees(w):
        return "FORBIDDEN"
    return outcome(response, "node")


async def _restore_dashboard(w: World) -> str:
    return await _call(
        w,
        "mutation($id: ID!) { restoreRevision(input: {id: $id}) { revision { number } } }",
        {"id": await _first_dashboard_revision(w)},
        "restoreRevision",
    )


async def _sees(w: World) -> bool:
    response = await w.api.post(
        "query($id: ID!) { dashboard(id: $id) { id } }",
        {"id": w.dashboard_id},
        token=w.caller["token"],
    )
    return not response.errors


@pytest.mark.parametrize("relation", list(RELATIONS))
async def test_permission_matrix(
    api: Api, users: Users, admin_token: str, dataset: tuple[dict[str, str], str], relation: str
) -> None:
    owner, dataset_id = dataset
    world = await build_world(api, users, admin_token, relation, owner, dataset_id)
    level = RELATIONS[relation]
    mismatches = []
    for name, needed, run in OPERATIONS:
        got = await run(world)
        want = expected(level, needed, owns_card=relation == "owner")
        if got != want:
            mismatches.append(f"{name}: expected {want}, got {got}")
    assert mismatches == [], f"{relation} (level {level}):\n" + "\n".join(mismatches)


async def test_private_views_are_their_owners_only(
    api: Api, users: Users, admin_token: str, dataset: tuple[dict[str, str], str]
) -> None:
    owner, dataset_id = dataset
    world = await build_world(api, users, admin_token, "direct OWNER", owner, dataset_id)
    # Even a co-owner cannot see, change or delete someone else's private view.
    for query in (
        "query($id: ID!) { filterView(id: $id) { id } }",
        'mutation($id: ID!) { updateFilterView(input: {id: $id, name: "x"}) { filterView { id } } }',
        "mutation($id: ID!) { deleteFilterView(input: {id: $id}) { deletedId } }",
    ):
        response = await api.post(
            query, {"id": world.owners_private_view}, token=world.caller["token"]
        )
        assert response.code == "NOT_FOUND", query
    # A shared view can be seen, but only its owner changes it.
    for query in (
        'mutation($id: ID!) { updateFilterView(input: {id: $id, name: "x"}) { filterView { id } } }',
        "mutation($id: ID!) { deleteFilterView(input: {id: $id}) { deletedId } }",
    ):
        response = await api.post(
            query, {"id": world.owners_shared_view}, token=world.caller["token"]
        )
        assert response.code == "FORBIDDEN", query
    listed = await api.ok(
        "query($id: ID!) { dashboard(id: $id) { filterViews { id } } }",
        {"id": world.dashboard_id},
        token=world.caller["token"],
    )
    ids = {v["id"] for v in listed["dashboard"]["filterViews"]}
    assert world.owners_shared_view in ids and world.owners_private_view not in ids


READ_CARD = "query($c: ID!, $d: ID!) { card(id: $c, dashboardId: $d) { id } }"
RUN_CARD = "mutation($c: ID!, $d: ID!) { executeCard(input: {id: $c, dashboardId: $d}) { execution { id } } }"
RUN_DASHBOARD = "mutation($d: ID!) { executeDashboard(input: {id: $d}) { executions { id } } }"
CLONE = "mutation($d: ID!) { cloneDashboard(input: {id: $d}) { dashboard { id } } }"
LAYOUT = "mutation($d: ID!, $items: [LayoutItemInput!]!) { updateDashboard(input: {id: $d, layout: {items: $items}}) { dashboard { id } } }"
OLD_RUN = "query($id: ID!) { cardExecution(id: $id) { id card { id } } }"
REVOKE = "mutation($id: ID!) { removeDashboardShare(input: {id: $id}) { deletedId } }"


async def _reads(api: Api, who: dict[str, str], card: str, dashboard: str) -> str:
    response = await api.post(READ_CARD, {"c": card, "d": dashboard}, token=who["token"])
    return "OK" if not response.errors else str(response.code)


async def _runs(api: Api, who: dict[str, str], card: str, dashboard: str) -> str:
    response = await api.post(RUN_CARD, {"c": card, "d": dashboard}, token=who["token"])
    return "OK" if not response.errors else str(response.code)


async def _dashboard_runs(api: Api, who: dict[str, str], dashboard: str) -> int:
    data = await api.ok(RUN_DASHBOARD, {"d": dashboard}, token=who["token"])
    return len(data["executeDashboard"]["executions"])


async def test_a_card_is_lent_only_where_its_owner_put_it(
    api: Api, users: Users, dataset: tuple[dict[str, str], str]
) -> None:
    """A VIEWER's clone, shared back to the card's owner and on to a third user, lends
    nothing; revoking the source share ends access everywhere, old executions included."""
    owner, dataset_id = dataset
    viewer, third = await users.create("launderer"), await users.create("third")
    card = await create_card(api, owner["token"], render("return 'secret'"), [dataset_id])
    source = (await create_dashboard(api, owner["token"], card_ids=[card]))["id"]
    viewer_share = await share(api, owner["token"], source, "USER", viewer["id"], "VIEWER")
    assert await _reads(api, viewer, card, source) == "OK"
    old_run = (await api.ok(RUN_CARD, {"c": card, "d": source}, token=viewer["token"]))[
        "executeCard"
    ]["execution"]["id"]

    clone = (await api.ok(CLONE, {"d": source}, token=viewer["token"]))["cloneDashboard"][
        "dashboard"
    ]["id"]
    await share(api, viewer["token"], clone, "USER", owner["id"], "EDITOR")
    await share(api, viewer["token"], clone, "USER", third["id"], "VIEWER")
    for who in (viewer, third):
        assert await _reads(api, who, card, clone) == "NOT_FOUND"
        assert await _runs(api, who, card, clone) == "NOT_FOUND"
        assert await _dashboard_runs(api, who, clone) == 0
    assert await _dashboard_runs(api, viewer, source) == 1

    # Revoking the source share ends the viewer's access through every path at once.
    await api.ok(REVOKE, {"id": viewer_share}, token=owner["token"])
    assert await _reads(api, viewer, card, source) == "NOT_FOUND"
    assert await _runs(api, viewer, card, source) == "NOT_FOUND"
    assert await _reads(api, viewer, card, clone) == "NOT_FOUND"
    old = await api.ok(OLD_RUN, {"id": old_run}, token=viewer["token"])
    assert old["cardExecution"] == {"id": old_run, "card": None}

    # Only when the card's owner places the card on the copy does the copy lend it.
    item = {"cardId": card, "x": 0, "y": 0, "w": 6, "h": 2}
    await api.ok(LAYOUT, {"d": clone, "items": []}, token=owner["token"])
    await api.ok(LAYOUT, {"d": clone, "items": [item]}, token=owner["token"])
    assert await _reads(api, third, card, clone) == "OK"
    assert await _dashboard_runs(api, third, clone) == 1
