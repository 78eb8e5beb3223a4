"""Dashboards: optimistic locking, constant round trips, shares and their audit, filter
views, one-call runs, listing and cloning."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from tests.conftest import Users
from tests.support.cards import create_card, follow_card, render
from tests.support.client import Api
from tests.support.dashboards import REMOVE_MEMBER, create_dashboard, new_group, share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess

ROWS = [["region", "amount"], ["north", 1], ["south", 2], ["north", 3]]
COUNT = render("return str(len(dataset))")


@pytest.fixture(scope="module")
async def owner(users: Users) -> dict[str, str]:
    return await users.create("dash-owner")


@pytest.fixture(scope="module")
async def datasets(api: Api, owner: dict[str, str], worker: Any) -> list[str]:
    ids = []
    for name in ("first", "second"):
        uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(ROWS), name=name)
        assert final["status"] == "SUCCEEDED"
        ids.append(str(uploaded["dataset"]["id"]))
    return ids


async def test_concurrent_updates_with_the_same_expected_version(
    api: Api, owner: dict[str, str]
) -> None:
    dash = await create_dashboard(api, owner["token"])
    update = "mutation($id: ID!, $n: String!, $v: Int) { updateDashboard(input: {id: $id, name: $n, expectedVersion: $v}) { dashboard { name version } } }"
    results = await asyncio.gather(
        *(
            api.post(
                update,
                {"id": dash["id"], "n": f"writer {i}", "v": dash["version"]},
                token=owner["token"],
            )
            for i in range(5)
        )
    )
    winners = [r for r in results if not r.errors]
    losers = [r for r in results if r.errors]
    assert len(winners) == 1 and all(r.code == "CONFLICT" for r in losers)
    stored = await api.ok(
        "query($id: ID!) { dashboard(id: $id) { name version } }",
        {"id": dash["id"]},
        token=owner["token"],
    )
    assert stored["dashboard"] == winners[0].data["updateDashboard"]["dashboard"]
    assert stored["dashboard"]["version"] == dash["version"] + 1
    stale = await api.fail(
        update, {"id": dash["id"], "n": "late", "v": dash["version"]}, token=owner["token"]
    )
    assert stale.code == "CONFLICT" and stale.error["extensions"]["field"] == "expectedVersion"


ROUND_TRIP = """query($id: ID!) { dashboard(id: $id) {
  owner { email }
  layout { items { card { owner { email } datasets { name owner { email } } } } }
  shares { user { email } group { name } sharedBy { email } }
  filterViews { owner { email } } } }"""


async def _requests(api: Api, token: str, dashboard_id: str, cards: int) -> int:
    response = await api.post(ROUND_TRIP, {"id": dashboard_id}, token=token)
    assert not response.errors, response.errors
    assert len(response.data["dashboard"]["layout"]["items"]) == cards
    return int(response.body["extensions"]["dynamodbRequests"])


async def test_a_dashboard_page_costs_constant_round_trips(
    api: Api, owner: dict[str, str], datasets: list[str], users: Users, admin_token: str
) -> None:
    viewer = await users.create("round-trip-viewer")
    group = await new_group(api, admin_token, [viewer["id"]])
    cards = []
    for i in range(100):
        cards.append(
            await create_card(api, owner["token"], COUNT, [datasets[i % 2]], name=f"card {i}")
        )
    counts: dict[str, dict[int, int]] = {"owner": {}, "viewer": {}}
    for size in (1, 10, 100):
        dash = await create_dashboard(api, owner["token"], card_ids=cards[:size])
        await share(api, owner["token"], dash["id"], "USER", viewer["id"], "OWNER")
        await share(api, owner["token"], dash["id"], "GROUP", group, "VIEWER")
        await api.ok(
            'mutation($id: ID!) { createFilterView(input: {dashboardId: $id, name: "v", filterState: {}, isShared: true}) { filterView { id } } }',
            {"id": dash["id"]},
            token=owner["token"],
        )
        counts["owner"][size] = await _requests(api, owner["token"], dash["id"], size)
        counts["viewer"][size] = await _requests(api, viewer["token"], dash["id"], size)
    for who, by_size in counts.items():
        assert by_size[1] == by_size[10] == by_size[100], (who, by_size)
    assert counts["owner"][100] <= 12, counts


@pytest.mark.parametrize(
    ("target_type", "target"),
    [("USER", "usr_nobody"), ("GROUP", "grp_nothing"), ("USER", None)],
    ids=["unknown user", "unknown group", "the owner"],
)
async def test_a_share_with_no_one_else_is_refused(
    api: Api, owner: dict[str, str], target_type: str, target: str | None
) -> None:
    dash = await create_dashboard(api, owner["token"])
    refused = await api.fail(
        "mutation($i: ShareDashboardInput!) { shareDashboard(input: $i) { share { id } } }",
        {
            "i": {
                "dashboardId": dash["id"],
                "targetType": target_type,
                "targetId": target or owner["id"],
                "permission": "VIEWER",
            }
        },
        token=owner["token"],
    )
    assert refused.code == "BAD_USER_INPUT"
    assert refused.error["extensions"]["field"] == "targetId"


async def test_share_rules_and_their_audit(
    api: Api, owner: dict[str, str], users: Users, admin_token: str
) -> None:
    dash = await create_dashboard(api, owner["token"])
    friend = await users.create("friend")
    add = "mutation($i: ShareDashboardInput!) { shareDashboard(input: $i) { share { id permission user { id } group { id } sharedBy { id } dashboard { id } } } }"

    def shareinput(target_type: str, target: str, level: str = "VIEWER") -> dict[str, Any]:
        return {
            "i": {
                "dashboardId": dash["id"],
                "targetType": target_type,
                "targetId": target,
                "permission": level,
            }
        }

    created = await api.ok(add, shareinput("USER", friend["id"]), token=owner["token"])
    record = created["shareDashboard"]["share"]
    assert record["user"]["id"] == friend["id"] and record["group"] is None
    assert record["sharedBy"]["id"] == owner["id"] and record["dashboard"]["id"] == dash["id"]
    duplicate = await api.fail(
        add, shareinput("USER", friend["id"], "EDITOR"), token=owner["token"]
    )
    assert duplicate.code == "CONFLICT"
    updated = await api.ok(
        "mutation($id: ID!) { updateDashboardShare(input: {id: $id, permission: EDITOR}) { share { permission } } }",
        {"id": record["id"]},
        token=owner["token"],
    )
    assert updated["updateDashboardShare"]["share"]["permission"] == "EDITOR"
    mine = await api.ok(
        "query($id: ID!) { dashboard(id: $id) { myPermission } }",
        {"id": dash["id"]},
        token=friend["token"],
    )
    assert mine["dashboard"]["myPermission"] == "EDITOR"
    await api.ok(
        "mutation($id: ID!) { removeDashboardShare(input: {id: $id}) { deletedId } }",
        {"id": record["id"]},
        token=owner["token"],
    )
    gone = await api.fail(
        "query($id: ID!) { dashboard(id: $id) { id } }", {"id": dash["id"]}, token=friend["token"]
    )
    assert gone.code == "NOT_FOUND"

    logs = await api.ok(
        "query($t: String!) { auditLogs(filter: {targetId: $t}) { edges { node { eventType user { id } details } } } }",
        {"t": dash["id"]},
        token=admin_token,
    )
    events = [e["node"] for e in logs["auditLogs"]["edges"]]
    assert [e["eventType"] for e in events] == [
        "DASHBOARD_SHARE_REMOVED",
        "DASHBOARD_SHARE_UPDATED",
        "DASHBOARD_SHARE_ADDED",
    ]
    assert all(e["user"]["id"] == owner["id"] for e in events)
    assert events[2]["details"] == {
        "dashboardId": dash["id"],
        "targetType": "USER",
        "targetId": friend["id"],
        "permission": "VIEWER",
    }
    assert events[1]["details"]["previousPermission"] == "VIEWER"
    assert events[1]["details"]["permission"] == "EDITOR"


async def test_group_membership_changes_apply_at_once(
    api: Api, owner: dict[str, str], users: Users, admin_token: str
) -> None:
    dash = await create_dashboard(api, owner["token"])
    member = await users.create("member")
    group = await new_group(api, admin_token, [member["id"]])
    await share(api, owner["token"], dash["id"], "GROUP", group, "VIEWER")
    query = "query($id: ID!) { dashboard(id: $id) { myPermission } }"
    assert (await api.ok(query, {"id": dash["id"]}, token=member["token"]))["dashboard"]
    await api.ok(REMOVE_MEMBER, {"g": group, "u": member["id"]}, token=admin_token)
    assert (await api.fail(query, {"id": dash["id"]}, token=member["token"])).code == "NOT_FOUND"
    listed = await api.ok("{ dashboards { edges { node { id } } } }", token=member["token"])
    assert dash["id"] not in [e["node"]["id"] for e in listed["dashboards"]["edges"]]
    # Deleting a group removes what it was given.
    again = await new_group(api, admin_token, [member["id"]])
    share_id = await share(api, owner["token"], dash["id"], "GROUP", again, "VIEWER")
    await api.ok(
        "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId } }",
        {"id": again},
        token=admin_token,
    )
    shares = await api.ok(
        "query($id: ID!) { dashboard(id: $id) { shares { id } } }",
        {"id": dash["id"]},
        token=owner["token"],
    )
    assert share_id not in [s["id"] for s in shares["dashboard"]["shares"]]


async def test_filter_views_validate_state_and_keep_one_default(
    api: Api, owner: dict[str, str]
) -> None:
    dash = await create_dashboard(
        api,
        owner["token"],
        filters=[
            {"type": "CATEGORY", "column": "region", "label": "Region", "multiSelect": True},
            {"id": "when", "type": "DATE_RANGE", "column": "day", "label": "Day"},
        ],
    )
    region = dash["filters"][0]["id"]
    create = "mutation($i: CreateFilterViewInput!) { createFilterView(input: $i) { filterView { id isDefault filterState owner { id } dashboard { id } } } }"
    bad = await api.fail(
        create,
        {"i": {"dashboardId": dash["id"], "name": "x", "filterState": {"nope": "a"}}},
        token=owner["token"],
    )
    assert bad.code == "BAD_USER_INPUT" and bad.error["extensions"]["field"] == "filterState"
    wrong_shape = await api.fail(
        create,
        {"i": {"dashboardId": dash["id"], "name": "x", "filterState": {region: 5}}},
        token=owner["token"],
    )
    assert wrong_shape.code == "BAD_USER_INPUT"
    state = {region: ["north"], "when": {"start": "2024-01-01", "end": "2024-01-31"}}
    first = await api.ok(
        create,
        {"i": {"dashboardId": dash["id"], "name": "a", "filterState": state, "isDefault": True}},
        token=owner["token"],
    )
    view_a = first["createFilterView"]["filterView"]
    assert view_a["filterState"] == state and view_a["isDefault"] is True
    second = await api.ok(
        create,
        {"i": {"dashboardId": dash["id"], "name": "b", "filterState": {}, "isDefault": True}},
        token=owner["token"],
    )
    view_b = second["createFilterView"]["filterView"]
    views = await api.ok(
        "query($id: ID!) { dashboard(id: $id) { defaultFilterView { id } filterViews { id isDefault } } }",
        {"id": dash["id"]},
        token=owner["token"],
    )
    defaults = [v["id"] for v in views["dashboard"]["filterViews"] if v["isDefault"]]
    assert defaults == [view_b["id"]]
    assert views["dashboard"]["defaultFilterView"]["id"] == view_b["id"]
    not_shared = await api.fail(
        "mutation($id: ID!, $v: ID!) { updateDashboard(input: {id: $id, defaultFilterViewId: $v}) { dashboard { id } } }",
        {"id": dash["id"], "v": view_a["id"]},
        token=owner["token"],
    )
    assert not_shared.code == "BAD_USER_INPUT"


async def test_execute_dashboard_runs_code_cards_in_layout_order(
    api: Api, owner: dict[str, str], datasets: list[str]
) -> None:
    cards = [
        await create_card(
            api,
            owner["token"],
            render(f"return 'card {i}:' + str(len(dataset))"),
            [datasets[0]],
            name=f"c{i}",
        )
        for i in range(3)
    ]
    text = await create_card(api, owner["token"], "<p>note</p>", [], card_type="TEXT")
    dash = await create_dashboard(
        api, owner["token"], card_ids=[cards[2], text, cards[0], cards[1]]
    )
    run = "mutation($id: ID!, $f: [ColumnFilterInput!]) { executeDashboard(input: {id: $id, filters: $f}) { executions { id status card { id } result { cached } } } }"
    first = (await api.ok(run, {"id": dash["id"]}, token=owner["token"]))["executeDashboard"]
    assert [e["card"]["id"] for e in first["executions"]] == [cards[2], cards[0], cards[1]]
    finals = await asyncio.gather(
        *(follow_card(api, owner["token"], e["id"]) for e in first["executions"])
    )
    assert [f[-1]["result"]["html"] for f in finals] == ["card 2:3", "card 0:3", "card 1:3"]
    again = (await api.ok(run, {"id": dash["id"]}, token=owner["token"]))["executeDashboard"]
    assert [e["status"] for e in again["executions"]] == ["SUCCEEDED"] * 3
    assert all(e["result"]["cached"] for e in again["executions"])
    filtered = (
        await api.ok(
            run,
            {"id": dash["id"], "f": [{"column": "region", "values": ["north"]}]},
            token=owner["token"],
        )
    )["executeDashboard"]
    results = await asyncio.gather(
        *(follow_card(api, owner["token"], e["id"]) for e in filtered["executions"])
    )
    assert [r[-1]["result"]["html"] for r in results] == ["card 2:2", "card 0:2", "card 1:2"]


async def test_viewers_use_the_dashboards_cards_and_nothing_else(
    api: Api, owner: dict[str, str], datasets: list[str], users: Users
) -> None:
    on_board = await create_card(api, owner["token"], COUNT, [datasets[0]], name="shown")
    elsewhere = await create_card(api, owner["token"], COUNT, [datasets[1]], name="hidden")
    dash = await create_dashboard(api, owner["token"], card_ids=[on_board])
    viewer = await users.create("viewer")
    await share(api, owner["token"], dash["id"], "USER", viewer["id"], "VIEWER")
    token = viewer["token"]
    page = await api.ok(
        "query($id: ID!) { dashboard(id: $id) { cards { id name } referencedDatasets { dataset { id name } usedByCards { id } } } }",
        {"id": dash["id"]},
        token=token,
    )
    assert [c["id"] for c in page["dashboard"]["cards"]] == [on_board]
    refs = page["dashboard"]["referencedDatasets"]
    assert refs == [
        {"dataset": {"id": datasets[0], "name": "first"}, "usedByCards": [{"id": on_board}]}
    ]
    execute = "mutation($c: ID!, $d: ID) { executeCard(input: {id: $c, dashboardId: $d}) { execution { id } } }"
    run = await api.ok(execute, {"c": on_board, "d": dash["id"]}, token=token)
    final = (await follow_card(api, token, run["executeCard"]["execution"]["id"]))[-1]
    assert final["result"]["html"] == "3"
    for query, variables in [
        (execute, {"c": on_board, "d": None}),
        (execute, {"c": elsewhere, "d": dash["id"]}),
        ("query($c: ID!) { card(id: $c) { id } }", {"c": on_board}),
        ("query($id: ID!) { dataset(id: $id) { id } }", {"id": datasets[0]}),
        (
            'mutation($c: ID!) { updateCard(input: {id: $c, name: "x"}) { card { id } } }',
            {"c": on_board},
        ),
    ]:
        assert (await api.fail(query, variables, token=token)).code == "NOT_FOUND", (
            query,
            variables,
        )
    # A viewer's copy of the dashboard lends nothing: the cards stay the owner's.
    copy = await api.ok(
        "mutation($id: ID!) { cloneDashboard(input: {id: $id}) { dashboard { id name myPermission owner { id } cardCount } } }",
        {"id": dash["id"]},
        token=token,
    )
    cloned = copy["cloneDashboard"]["dashboard"]
    assert cloned["name"].endswith(" (Copy)") and cloned["myPermission"] == "OWNER"
    assert cloned["owner"]["id"] == viewer["id"] and cloned["cardCount"] == 0
    assert (
        await api.fail(execute, {"c": on_board, "d": cloned["id"]}, token=token)
    ).code == "NOT_FOUND"
    own_copy = await api.ok(
        'mutation($id: ID!) { cloneDashboard(input: {id: $id, name: "Mine"}) { dashboard { name cardCount filters { id } } } }',
        {"id": dash["id"]},
        token=owner["token"],
    )
    assert own_copy["cloneDashboard"]["dashboard"]["cardCount"] == 1


CREATE_DASHBOARD = (
    "mutation($i: CreateDashboardInput!) { createDashboard(input: $i) { dashboard { id } } }"
)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"x": 10, "y": 0, "w": 4, "h": 1}, "layout.items[0]"),
        ({"x": 0, "y": 0, "w": 0, "h": 1}, "layout.items[0]"),
        ({"cardId": "card_nope", "x": 0, "y": 0, "w": 1, "h": 1}, "layout.items[0].cardId"),
    ],
    ids=["past the right edge", "zero width", "unknown card"],
)
async def test_a_bad_layout_item_is_refused(
    api: Api, owner: dict[str, str], datasets: list[str], item: dict[str, Any], field: str
) -> None:
    card = await create_card(api, owner["token"], COUNT, [datasets[0]])
    bad = await api.fail(
        CREATE_DASHBOARD,
        {"i": {"name": "x", "layout": {"items": [{"cardId": card, **item}]}}},
        token=owner["token"],
    )
    assert bad.code == "BAD_USER_INPUT" and bad.error["extensions"]["field"] == field


async def test_layout_rules_and_listing(
    api: Api, owner: dict[str, str], datasets: list[str], users: Users, admin_token: str
) -> None:
    card = await create_card(api, owner["token"], COUNT, [datasets[0]])
    stranger = await users.create("layout-stranger")
    theirs = await api.fail(
        CREATE_DASHBOARD,
        {
            "i": {
                "name": "x",
                "layout": {"items": [{"cardId": card, "x": 0, "y": 0, "w": 1, "h": 1}]},
            }
        },
        token=stranger["token"],
    )
    assert theirs.code == "BAD_USER_INPUT"

    lister = await users.create("lister")
    group = await new_group(api, admin_token, [lister["id"]])
    own = await create_dashboard(api, lister["token"], name="own")
    direct = await create_dashboard(api, owner["token"], name="direct")
    both = await create_dashboard(api, owner["token"], name="both")
    await share(api, owner["token"], direct["id"], "USER", lister["id"], "VIEWER")
    await share(api, owner["token"], both["id"], "USER", lister["id"], "VIEWER")
    await share(api, owner["token"], both["id"], "GROUP", group, "EDITOR")
    listing = await api.ok(
        "{ dashboards(first: 2) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }",
        token=lister["token"],
    )
    first_page = listing["dashboards"]
    assert first_page["totalCount"] == 3 and first_page["pageInfo"]["hasNextPage"]
    rest = await api.ok(
        "query($a: String) { dashboards(first: 2, after: $a) { pageInfo { hasNextPage } edges { node { id } } } }",
        {"a": first_page["pageInfo"]["endCursor"]},
        token=lister["token"],
    )
    ids = [e["node"]["id"] for e in first_page["edges"] + rest["dashboards"]["edges"]]
    assert ids == [both["id"], direct["id"], own["id"]]  # newest first, each once
    assert json.dumps(rest).count('hasNextPage": false') == 1


@pytest.mark.parametrize("broken", ["not-a-cursor", "e30"], ids=["garbage", "encoded {}"])
async def test_a_broken_cursor_is_refused(api: Api, owner: dict[str, str], broken: str) -> None:
    response = await api.fail(
        "query($a: String) { dashboards(after: $a) { totalCount } }",
        {"a": broken},
        token=owner["token"],
    )
    assert response.code == "BAD_USER_INPUT" and response.error["extensions"]["field"] == "after"


async def test_execute_dashboard_queues_what_the_allowance_holds_and_refuses_the_rest(
    inprocess: InProcess, owner: dict[str, str], datasets: list[str]
) -> None:
    """With 3 places: a 5-card dashboard queues its first 3 cards and ends the other 2
    CANCELLED, saying why; a second run finds no place (RATE_LIMITED); a cancelled queued
    run gives its place back. No worker serves this queue, so runs stay QUEUED."""
    server = await inprocess.start_api(
        {
            "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
            "TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": "3",
        }
    )
    idle = Api(server.url, server.ws_url)
    try:
        cards = [
            await create_card(idle, owner["token"], render(f"return '{i}'"), [datasets[0]])
            for i in range(5)
        ]
        dash = await create_dashboard(idle, owner["token"], card_ids=cards)
        run = """mutation($id: ID!) { executeDashboard(input: {id: $id, useCache: false}) {
          executions { id status card { id } error { code message } } } }"""
        executions = (await idle.ok(run, {"id": dash["id"]}, token=owner["token"]))[
            "executeDashboard"
        ]["executions"]
        assert [e["card"]["id"] for e in executions] == cards
        assert [e["status"] for e in executions] == ["QUEUED"] * 3 + ["CANCELLED"] * 2
        refused = executions[3]["error"]
        assert refused["code"] == "CANCELLED" and "3 runs waiting" in refused["message"]
        again = await idle.fail(run, {"id": dash["id"]}, token=owner["token"])
        assert again.code == "RATE_LIMITED"
        cancel = "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }"
        await idle.ok(cancel, {"id": executions[0]["id"]}, token=owner["token"])
        one = "mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) { execution { id status } } }"
        admitted = (await idle.ok(one, {"id": cards[3]}, token=owner["token"]))["executeCard"]
        assert admitted["execution"]["status"] == "QUEUED"
        for execution in [*executions[1:3], admitted["execution"]]:
            await idle.ok(cancel, {"id": execution["id"]}, token=owner["token"])
    finally:
        await idle.close()


async def test_a_record_too_large_to_store_is_refused_clearly(
    api: Api, owner: dict[str, str]
) -> None:
    # No field of its own is too long: together the filters' options outgrow what one
    # stored record may hold (DynamoDB's 400 KB), which the store refuses by name.
    options = [f"option-{i}-" + "o" * 90 for i in range(900)]
    filters = [
        {"type": "CATEGORY", "column": f"c{n}", "label": f"C{n}", "options": options}
        for n in range(10)
    ]
    create = (
        "mutation($i: CreateDashboardInput!) { createDashboard(input: $i) { dashboard { id } } }"
    )
    refused = await api.fail(
        create, {"i": {"name": "Wide", "filters": filters}}, token=owner["token"]
    )
    assert refused.code == "BAD_USER_INPUT", refused.body
    assert "400 KB" in refused.error["message"]
