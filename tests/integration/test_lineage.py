"""Lineage: dataset → transform → dataset → card → dashboard, walked either way to a depth,
only through what the caller may see; the card placements index follows every layout
change; and a re-import plan names what its schema changes would break."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tests.conftest import Users
from tests.support.cards import create_card, render, run_card
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, share
from tests.support.datasets import csv_bytes, follow_import, import_and_wait
from tests.support.transforms import create_transform, run_transform

LINEAGE = """query($id: ID!, $direction: LineageDirection, $depth: Int) {
  lineage(id: $id, direction: $direction, depth: $depth) {
    root { id } nodes { id } edges { fromId toId relation } hiddenCount } }"""
LAYOUT = """mutation($d: ID!, $items: [LayoutItemInput!]!, $v: Int) {
  updateDashboard(input: {id: $d, layout: {items: $items}, expectedVersion: $v}) {
    dashboard { id version } } }"""
DELETE = "mutation($d: ID!) { deleteDashboard(input: {id: $d}) { deletedId } }"
PLAN = """mutation($id: ID!) { planDatasetReimport(input: {id: $id}) {
  changes { columnName changeType }
  impact { cards { id } transforms { id } dashboards { id } } } }"""
IMPORT_S3 = """mutation($input: ImportDatasetFromS3Input!) { importDatasetFromS3(input: $input) {
  dataset { id } import { id } } }"""


@dataclass
class Chain:
    owner: dict[str, str]
    source: str
    transform: str
    output: str
    card: str
    dashboard: str


def item(card_id: str, y: int = 0) -> dict[str, Any]:
    return {"cardId": card_id, "x": 0, "y": y, "w": 6, "h": 2}


async def build_chain(api: Api, users: Users) -> Chain:
    owner = await users.create("lineage")
    uploaded, final = await import_and_wait(
        api, owner["token"], csv_bytes([["region", "v"], ["a", 1], ["b", 2]])
    )
    assert final["status"] == "SUCCEEDED"
    source = str(uploaded["dataset"]["id"])
    transform = await create_transform(
        api, owner["token"], 'result = df_0[df_0["v"] > 1]', [source]
    )
    run = await run_transform(api, owner["token"], transform["id"])
    assert run["status"] == "SUCCEEDED", run
    output = str(run["outputDataset"]["id"])
    card = await create_card(api, owner["token"], render("return str(len(dataset))"), [output])
    dashboard = (await create_dashboard(api, owner["token"], card_ids=[card]))["id"]
    return Chain(owner, source, str(transform["id"]), output, card, dashboard)


async def lineage(api: Api, token: str, object_id: str, **args: Any) -> dict[str, Any]:
    data = await api.ok(LINEAGE, {"id": object_id, **args}, token=token)
    return data["lineage"]  # type: ignore[no-any-return]


def ids(graph: dict[str, Any]) -> set[str]:
    return {n["id"] for n in graph["nodes"]}


def edges(graph: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["fromId"], e["toId"], e["relation"]) for e in graph["edges"]}


async def test_lineage_follows_the_chain_both_ways_to_a_depth(
    api: Api, users: Users, worker: Any
) -> None:
    c = await build_chain(api, users)
    token = c.owner["token"]
    chain = {c.source, c.transform, c.output, c.card, c.dashboard}
    relations = {
        (c.source, c.transform, "INPUT_OF"),
        (c.transform, c.output, "PRODUCES"),
        (c.output, c.card, "READ_BY"),
        (c.card, c.dashboard, "SHOWN_ON"),
    }

    down = await lineage(api, token, c.source, direction="DOWNSTREAM")
    assert down["root"] == {"id": c.source}
    assert down["nodes"][0] == {"id": c.source}  # the root is listed first
    assert ids(down) == chain and edges(down) == relations and down["hiddenCount"] == 0

    up = await lineage(api, token, c.dashboard, direction="UPSTREAM")
    assert up["root"] == {"id": c.dashboard}
    assert ids(up) == chain and edges(up) == relations and up["hiddenCount"] == 0
    # Nothing lies upstream of an uploaded dataset, nor downstream of a dashboard.
    assert ids(await lineage(api, token, c.source, direction="UPSTREAM")) == {c.source}
    assert ids(await lineage(api, token, c.dashboard, direction="DOWNSTREAM")) == {c.dashboard}

    two = await lineage(api, token, c.source, direction="DOWNSTREAM", depth=2)
    assert ids(two) == {c.source, c.transform, c.output}
    assert edges(two) == {(c.source, c.transform, "INPUT_OF"), (c.transform, c.output, "PRODUCES")}

    # BOTH from the middle: one hop each way, never turning back.
    middle = await lineage(api, token, c.output, depth=1)
    assert ids(middle) == {c.output, c.transform, c.card}
    assert edges(middle) == {(c.transform, c.output, "PRODUCES"), (c.output, c.card, "READ_BY")}
    assert ids(await lineage(api, token, c.card)) == chain  # default: BOTH, depth 5

    for depth in (0, 11):
        failed = await api.fail(LINEAGE, {"id": c.source, "depth": depth}, token=token)
        assert failed.code == "BAD_USER_INPUT"
        assert failed.error["extensions"]["field"] == "depth"


async def test_lineage_shows_only_what_the_caller_may_see(
    api: Api, users: Users, worker: Any
) -> None:
    c = await build_chain(api, users)
    stranger, viewer = await users.create("stranger"), await users.create("dash-viewer")
    for object_id in (c.source, c.transform, c.output, c.card, c.dashboard, "ds_nothing"):
        failed = await api.fail(LINEAGE, {"id": object_id}, token=stranger["token"])
        assert failed.code == "NOT_FOUND", object_id
        assert failed.error["extensions"]["field"] == "id"

    await share(api, c.owner["token"], c.dashboard, "USER", viewer["id"], "VIEWER")
    seen = await lineage(api, viewer["token"], c.dashboard)
    # The dashboard lends its card; the owner's dataset behind it is only counted, and the
    # walk stops there (the transform and the source are not reached, so not counted).
    assert ids(seen) == {c.dashboard, c.card}
    assert edges(seen) == {(c.card, c.dashboard, "SHOWN_ON")}
    assert seen["hiddenCount"] == 1
    # A lent card is seen only through its dashboard, as node(id:) has it.
    failed = await api.fail(LINEAGE, {"id": c.card}, token=viewer["token"])
    assert failed.code == "NOT_FOUND"


async def test_a_wider_graph_costs_no_more_round_trips(api: Api, users: Users, worker: Any) -> None:
    """Upstream from a dashboard every hop is one batched read per table, so 10 cards over
    2 datasets cost as many DynamoDB requests as 1 card over 1."""
    owner = await users.create("lineage-wide")
    token = owner["token"]
    datasets = []
    for n in range(2):
        uploaded, final = await import_and_wait(api, token, csv_bytes([["v"], [n]]))
        assert final["status"] == "SUCCEEDED"
        datasets.append(str(uploaded["dataset"]["id"]))
    cards = [
        await create_card(api, token, render("return 'x'"), [datasets[i % 2]], name=f"c{i}")
        for i in range(10)
    ]
    requests = {}
    for size in (1, 10):
        dashboard = (await create_dashboard(api, token, card_ids=cards[:size]))["id"]
        response = await api.post(LINEAGE, {"id": dashboard, "direction": "UPSTREAM"}, token=token)
        assert not response.errors, response.errors
        assert len(response.data["lineage"]["nodes"]) == 1 + size + min(size, 2)
        requests[size] = int(response.body["extensions"]["dynamodbRequests"])
    assert requests[1] == requests[10], requests


async def test_placements_follow_layout_changes_and_deletes(
    api: Api, users: Users, worker: Any
) -> None:
    c = await build_chain(api, users)
    token = c.owner["token"]
    other_card = await create_card(api, token, render("return 'x'"), [c.output])
    second = await create_dashboard(api, token, name="second", card_ids=[c.card, other_card])

    async def showing(card_id: str) -> set[str]:
        graph = await lineage(api, token, card_id, direction="DOWNSTREAM", depth=1)
        return ids(graph) - {card_id}

    assert await showing(c.card) == {c.dashboard, second["id"]}
    assert await showing(other_card) == {second["id"]}

    # A stale layout change is refused and leaves the index as it was.
    stale = await api.fail(
        LAYOUT, {"d": second["id"], "items": [], "v": second["version"] + 5}, token=token
    )
    assert stale.code == "CONFLICT"
    assert await showing(c.card) == {c.dashboard, second["id"]}

    moved = await api.ok(
        LAYOUT,
        {"d": second["id"], "items": [item(other_card)], "v": second["version"]},
        token=token,
    )
    assert moved["updateDashboard"]["dashboard"]["version"] == second["version"] + 1
    assert await showing(c.card) == {c.dashboard}
    assert await showing(other_card) == {second["id"]}
    await api.ok(
        LAYOUT, {"d": c.dashboard, "items": [item(c.card), item(other_card, 2)]}, token=token
    )
    assert await showing(other_card) == {c.dashboard, second["id"]}

    await api.ok(DELETE, {"d": c.dashboard}, token=token)
    assert await showing(c.card) == set()
    assert await showing(other_card) == {second["id"]}

    # A card placed on someone else's dashboard shows there while its owner may see it.
    host = await users.create("host")
    hosted = (await create_dashboard(api, host["token"], name="hosted"))["id"]
    grant = await share(api, host["token"], hosted, "USER", c.owner["id"], "EDITOR")
    await api.ok(LAYOUT, {"d": hosted, "items": [item(c.card)]}, token=token)
    assert await showing(c.card) == {hosted}
    await api.ok(
        "mutation($id: ID!) { removeDashboardShare(input: {id: $id}) { deletedId } }",
        {"id": grant},
        token=host["token"],
    )
    graph = await lineage(api, token, c.card, direction="DOWNSTREAM")
    assert ids(graph) == {c.card} and graph["hiddenCount"] == 1


async def test_placements_follow_restores(api: Api, users: Users, worker: Any) -> None:
    """Restoring a layout, or a deleted dashboard, writes its placements back with it."""
    c = await build_chain(api, users)
    token = c.owner["token"]

    async def showing() -> set[str]:
        graph = await lineage(api, token, c.card, direction="DOWNSTREAM", depth=1)
        return ids(graph) - {c.card}

    await api.ok(LAYOUT, {"d": c.dashboard, "items": []}, token=token)
    assert await showing() == set()
    history = await api.ok(
        "query($d: ID!) { dashboard(id: $d) { revisions { nodes { id number } } } }",
        {"d": c.dashboard},
        token=token,
    )
    first = next(r for r in history["dashboard"]["revisions"]["nodes"] if r["number"] == 1)
    restore = "mutation($i: RestoreRevisionInput!) { restoreRevision(input: $i) { node { id } } }"
    await api.ok(restore, {"i": {"id": first["id"]}}, token=token)
    assert await showing() == {c.dashboard}

    await api.ok(DELETE, {"d": c.dashboard}, token=token)
    assert await showing() == set()
    deleted = await api.ok("query { deletedObjects { nodes { id objectId } } }", token=token)
    last = next(r for r in deleted["deletedObjects"]["nodes"] if r["objectId"] == c.dashboard)
    await api.ok(restore, {"i": {"id": last["id"]}}, token=token)
    assert await showing() == {c.dashboard}


async def test_placements_of_a_layout_too_big_for_one_transaction(
    api: Api, users: Users, worker: Any
) -> None:
    """100 cards and the dashboard are 101 writes, past DynamoDB's 100 per transaction:
    the placements are written around the dashboard's own write, and still follow it."""
    c = await build_chain(api, users)
    token = c.owner["token"]
    many = [c.card] + [
        await create_card(api, token, render("return 'x'"), [c.output], name=f"m{i}")
        for i in range(99)
    ]
    big = (await create_dashboard(api, token, name="big", card_ids=many))["id"]
    for card_id in (many[0], many[-1]):
        graph = await lineage(api, token, card_id, direction="DOWNSTREAM", depth=1)
        assert ids(graph) - {card_id} >= {big}
    await api.ok(LAYOUT, {"d": big, "items": []}, token=token)
    graph = await lineage(api, token, many[-1], direction="DOWNSTREAM", depth=1)
    assert ids(graph) == {many[-1]}
    graph = await lineage(api, token, c.card, direction="DOWNSTREAM", depth=1)
    assert ids(graph) == {c.card, c.dashboard}


async def test_a_reimport_plan_names_what_reads_a_removed_column(
    api: Api, users: Users, worker: Any, s3: Any, source_bucket: str
) -> None:
    owner = await users.create("impact")
    token = owner["token"]
    key = f"impact/{secrets.token_hex(4)}.csv"
    s3.put_object(
        Bucket=source_bucket,
        Key=key,
        Body=csv_bytes([["region", "v", "gone"], ["a", 1, 5], ["b", 2, 6]]),
    )
    payload = (
        await api.ok(
            IMPORT_S3,
            {"input": {"name": "impact", "bucket": source_bucket, "key": key}},
            token=token,
        )
    )["importDatasetFromS3"]
    assert (await follow_import(api, token, payload["import"]["id"]))[-1]["status"] == "SUCCEEDED"
    dataset = str(payload["dataset"]["id"])

    breaks = await create_card(api, token, render('return str(dataset["gone"].sum())'), [dataset])
    keeps = await create_card(api, token, render('return str(dataset["v"].sum())'), [dataset])
    # Names no column in its code; its run declares what it read, and that counts too.
    declares = await create_card(
        api,
        token,
        render(
            "picked = [c for c in dataset.columns if c.startswith('go')]\n"
            "return HTMLResult('x', used_columns=picked)"
        ),
        [dataset],
    )
    ran = await run_card(api, token, declares)
    assert ran["result"]["usedColumns"] == ["gone"], ran
    transform = await create_transform(api, token, "result = df_0[['region', 'gone']]", [dataset])
    run = await run_transform(api, token, transform["id"])
    assert run["status"] == "SUCCEEDED", run
    downstream = await create_card(
        api, token, render("return str(len(dataset))"), [run["outputDataset"]["id"]]
    )
    safe_transform = await create_transform(api, token, 'result = df_0[["v"]]', [dataset])
    shows_breaking = (await create_dashboard(api, token, card_ids=[breaks, keeps]))["id"]
    shows_safe = (await create_dashboard(api, token, card_ids=[keeps]))["id"]
    shows_downstream = (await create_dashboard(api, token, card_ids=[downstream]))["id"]

    s3.put_object(Bucket=source_bucket, Key=key, Body=csv_bytes([["region", "v"], ["a", 1]]))
    plan = (await api.ok(PLAN, {"id": dataset}, token=token))["planDatasetReimport"]
    assert plan["changes"] == [{"columnName": "gone", "changeType": "REMOVED"}]
    impact = plan["impact"]
    assert {c["id"] for c in impact["cards"]} == {breaks, declares, downstream}
    assert {t["id"] for t in impact["transforms"]} == {transform["id"]}
    assert safe_transform["id"] not in {t["id"] for t in impact["transforms"]}
    assert {d["id"] for d in impact["dashboards"]} == {shows_breaking, shows_downstream}
    assert shows_safe not in {d["id"] for d in impact["dashboards"]}


async def test_a_dashboard_change_too_large_to_store_is_refused_clearly(
    api: Api, users: Users
) -> None:
    """The update is a transaction now (with its placements); an oversized one is still
    BAD_USER_INPUT naming the limit, and changes nothing."""
    owner = await users.create("lineage-large")
    dashboard = await create_dashboard(api, owner["token"])
    options = [f"option-{i}-" + "o" * 90 for i in range(900)]
    filters = [
        {"type": "CATEGORY", "column": f"c{n}", "label": f"C{n}", "options": options}
        for n in range(10)
    ]
    update = """mutation($d: ID!, $f: [FilterDefinitionInput!]) {
      updateDashboard(input: {id: $d, filters: $f}) { dashboard { id } } }"""
    refused = await api.fail(update, {"d": dashboard["id"], "f": filters}, token=owner["token"])
    assert refused.code == "BAD_USER_INPUT" and "400 KB" in refused.error["message"]
    stored = await api.ok(
        "query($d: ID!) { dashboard(id: $d) { version filters { id } } }",
        {"d": dashboard["id"]},
        token=owner["token"],
    )
    assert stored["dashboard"] == {"version": dashboard["version"], "filters": []}
