"""Revision history: every create, update and restore of a card, dashboard or transform is a
revision with its field changes; a restore is a new revision that brings the old state (and
behaviour) back; deleted objects can be listed and restored with their id; only those who
may change an object read or restore its history."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import Users
from tests.support.cards import create_card, render, run_card
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.stack import Stack
from tests.support.transforms import create_transform

REVISION = """id objectType objectId number snapshot restoredFrom deleted createdAt
  author { id } changes { field before after }"""
CARD_REVISIONS = f"""query($id: ID!) {{ node(id: $id) {{ ... on Card {{
  revisions {{ totalCount nodes {{ {REVISION} }} }} }} }} }}"""
DASHBOARD_REVISIONS = f"""query($id: ID!) {{ dashboard(id: $id) {{ version
  revisions {{ totalCount nodes {{ {REVISION} }} }} }} }}"""
TRANSFORM_REVISIONS = f"""query($id: ID!) {{ transform(id: $id) {{
  revisions {{ nodes {{ {REVISION} }} }} }} }}"""
RESTORE = f"""mutation($i: RestoreRevisionInput!) {{ restoreRevision(input: $i) {{
  revision {{ {REVISION} }}
  node {{ id ... on Card {{ name code }} ... on Dashboard {{ name version }}
    ... on Transform {{ name code scheduleCron }} }} }} }}"""
UPDATE_CARD = """mutation($i: UpdateCardInput!) { updateCard(input: $i) { card { id } } }"""
DELETE_CARD = "mutation($id: ID!) { deleteCard(input: {id: $id}) { deletedId } }"
UPDATE_DASHBOARD = """mutation($i: UpdateDashboardInput!) { updateDashboard(input: $i) {
  dashboard { id version } } }"""
DELETE_DASHBOARD = "mutation($id: ID!) { deleteDashboard(input: {id: $id}) { deletedId } }"
UPDATE_TRANSFORM = """mutation($i: UpdateTransformInput!) { updateTransform(input: $i) {
  transform { id } } }"""
DELETED = f"""query {{ deletedObjects {{ nodes {{ {REVISION} }} }} }}"""
NODE = f"query($id: ID!) {{ node(id: $id) {{ id ... on Revision {{ {REVISION} }} }} }}"
LOGS = """query($f: AuditLogFilter) { auditLogs(filter: $f) { edges { node {
  eventType targetId details user { id } } } } }"""

SAYS = render('return "<p>" + params["word"] + "</p>"')


async def dataset(api: Api, token: str, name: str = "history") -> str:
    uploaded, final = await import_and_wait(
        api, token, csv_bytes([["region", "amount"], ["west", 1]]), name=name
    )
    assert final["status"] == "SUCCEEDED", final
    return str(uploaded["dataset"]["id"])


async def card_revisions(api: Api, token: str, card: str) -> list[dict[str, Any]]:
    data = await api.ok(CARD_REVISIONS, {"id": card}, token=token)
    return data["node"]["revisions"]["nodes"]  # type: ignore[no-any-return]


def changed(revision: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["field"]: (c["before"], c["after"]) for c in revision["changes"]}


async def test_card_changes_make_revisions_and_a_restore_brings_the_old_card_back(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("historian")
    token = owner["token"]
    data = await dataset(api, token)
    card = await create_card(api, token, SAYS, [data], name="first", params={"word": "one"})
    await api.ok(UPDATE_CARD, {"i": {"id": card, "params": {"word": "two"}}}, token=token)
    new_code = render('return "<b>" + params["word"] + "</b>"')
    await api.ok(UPDATE_CARD, {"i": {"id": card, "code": new_code, "name": "third"}}, token=token)

    newest, second, first = await card_revisions(api, token, card)
    assert [r["number"] for r in (first, second, newest)] == [1, 2, 3]
    assert first["changes"] == [] and first["restoredFrom"] is None
    assert first["snapshot"] == {
        "name": "first",
        "description": None,
        "type": "CODE",
        "code": SAYS,
        "datasetIds": [data],
        "params": {"word": "one"},
        "workspaceKey": None,
    }
    assert changed(second) == {"params": ({"word": "one"}, {"word": "two"})}
    assert changed(newest) == {"name": ("first", "third"), "code": (SAYS, new_code)}
    assert all(
        r["author"] == {"id": owner["id"]} and r["objectType"] == "CARD"
        for r in (first, second, newest)
    )
    assert (await run_card(api, token, card))["result"]["html"] == "<b>two</b>"

    # A stale version is refused; the current one restores revision 1 as revision 4.
    stale = await api.fail(RESTORE, {"i": {"id": first["id"], "expectedVersion": 2}}, token=token)
    assert stale.code == "CONFLICT"
    restored = (
        await api.ok(RESTORE, {"i": {"id": first["id"], "expectedVersion": 3}}, token=token)
    )["restoreRevision"]
    assert restored["revision"]["number"] == 4
    assert restored["revision"]["restoredFrom"] == 1
    assert changed(restored["revision"]) == {
        "name": ("third", "first"),
        "code": (new_code, SAYS),
        "params": ({"word": "two"}, {"word": "one"}),
    }
    assert restored["node"] == {"id": card, "name": "first", "code": SAYS}
    assert (await run_card(api, token, card, useCache=False))["result"]["html"] == "<p>one</p>"
    # History is never rewritten: 1-3 are as they were.
    assert [r["number"] for r in await card_revisions(api, token, card)] == [4, 3, 2, 1]

    logs = await api.ok(
        LOGS, {"f": {"targetId": card, "eventType": "REVISION_RESTORED"}}, token=users.admin_token
    )
    (entry,) = [e["node"] for e in logs["auditLogs"]["edges"]]
    assert entry["user"] == {"id": owner["id"]}
    assert entry["details"]["restoredFrom"] == 1 and entry["details"]["revision"] == 4


async def test_strangers_and_readers_neither_list_nor_restore_a_cards_history(
    api: Api, users: Users, worker: Any
) -> None:
    owner, reader, stranger = [await users.create(f"keeper{i}") for i in range(3)]
    data = await dataset(api, owner["token"])
    card = await create_card(api, owner["token"], SAYS, [data], params={"word": "w"})
    dashboard = (await create_dashboard(api, owner["token"], card_ids=[card]))["id"]
    await share(api, owner["token"], dashboard, "USER", reader["id"], "VIEWER")
    (first,) = await card_revisions(api, owner["token"], card)

    for who in (reader, stranger):
        assert (await api.fail(NODE, {"id": first["id"]}, token=who["token"])).code == "NOT_FOUND"
        refused = await api.fail(RESTORE, {"i": {"id": first["id"]}}, token=who["token"])
        assert refused.code == "NOT_FOUND"
    # The reader sees the lent card on the dashboard, but not its history (nor its code).
    lent = await api.post(
        """query($d: ID!) { dashboard(id: $d) { cards { id revisions { totalCount } } } }""",
        {"d": dashboard},
        token=reader["token"],
    )
    assert lent.code == "FORBIDDEN"
    assert (await api.ok(NODE, {"id": first["id"]}, token=owner["token"]))["node"]["number"] == 1


async def test_dashboard_history_is_for_editors_and_checks_what_it_brings_back(
    api: Api, users: Users, worker: Any
) -> None:
    owner, editor, viewer, stranger = [await users.create(f"board{i}") for i in range(4)]
    data = await dataset(api, owner["token"])
    card = await create_card(api, owner["token"], SAYS, [data], params={"word": "w"})
    created = await create_dashboard(api, owner["token"], name="Board", card_ids=[card])
    dashboard = created["id"]
    await share(api, owner["token"], dashboard, "USER", editor["id"], "EDITOR")
    await share(api, owner["token"], dashboard, "USER", viewer["id"], "VIEWER")
    await api.ok(
        UPDATE_DASHBOARD,
        {"i": {"id": dashboard, "name": "Renamed", "layout": {"items": []}}},
        token=editor["token"],
    )
    read = await api.ok(DASHBOARD_REVISIONS, {"id": dashboard}, token=editor["token"])
    newest, first = read["dashboard"]["revisions"]["nodes"]
    assert changed(newest)["name"] == ("Board", "Renamed")
    assert changed(newest)["layout"][0]["items"][0]["cardId"] == card
    assert newest["author"] == {"id": editor["id"]}

    assert (
        await api.fail(DASHBOARD_REVISIONS, {"id": dashboard}, token=viewer["token"])
    ).code == "FORBIDDEN"
    assert (
        await api.fail(RESTORE, {"i": {"id": first["id"]}}, token=viewer["token"])
    ).code == "FORBIDDEN"
    assert (
        await api.fail(RESTORE, {"i": {"id": first["id"]}}, token=stranger["token"])
    ).code == "NOT_FOUND"

    # The editor may not put back a card they cannot place: it is named.
    other = await create_card(api, owner["token"], SAYS, [data], params={"word": "x"})
    await api.ok(
        UPDATE_DASHBOARD,
        {
            "i": {
                "id": dashboard,
                "layout": {"items": [{"cardId": other, "x": 0, "y": 0, "w": 6, "h": 2}]},
            }
        },
        token=owner["token"],
    )
    version = read["dashboard"]["version"] + 1
    refused = await api.fail(
        RESTORE, {"i": {"id": first["id"], "expectedVersion": version}}, token=editor["token"]
    )
    assert refused.code == "BAD_USER_INPUT" and card in refused.error["message"]
    # The owner placed that card, so they may restore it.
    restored = (
        await api.ok(
            RESTORE, {"i": {"id": first["id"], "expectedVersion": version}}, token=owner["token"]
        )
    )["restoreRevision"]
    assert restored["node"] == {"id": dashboard, "name": "Board", "version": version + 1}
    assert restored["revision"]["restoredFrom"] == 1
    cards = await api.ok(
        "query($d: ID!) { dashboard(id: $d) { cards { id } } }",
        {"d": dashboard},
        token=viewer["token"],
    )
    assert cards["dashboard"]["cards"] == [{"id": card}]


async def test_a_deleted_card_is_listed_and_comes_back_with_its_id(
    api: Api, users: Users, worker: Any
) -> None:
    owner, stranger = await users.create("undoer"), await users.create("undo-stranger")
    token = owner["token"]
    data = await dataset(api, token)
    card = await create_card(api, token, SAYS, [data], name="gone", params={"word": "back"})
    dashboard = (await create_dashboard(api, token, card_ids=[card]))["id"]
    await api.ok(UPDATE_CARD, {"i": {"id": card, "name": "gone soon"}}, token=token)
    await api.ok(DELETE_CARD, {"id": card}, token=token)

    deleted = (await api.ok(DELETED, token=token))["deletedObjects"]["nodes"]
    (last,) = [r for r in deleted if r["objectId"] == card]
    assert last["deleted"] is True and last["number"] == 2
    assert last["snapshot"]["name"] == "gone soon"
    assert card not in {
        r["objectId"]
        for r in (await api.ok(DELETED, token=stranger["token"]))["deletedObjects"]["nodes"]
    }
    assert (
        await api.fail(RESTORE, {"i": {"id": last["id"]}}, token=stranger["token"])
    ).code == "NOT_FOUND"

    restored = (await api.ok(RESTORE, {"i": {"id": last["id"]}}, token=token))["restoreRevision"]
    assert restored["node"]["id"] == card
    assert restored["revision"]["number"] == 3 and restored["revision"]["restoredFrom"] == 2
    assert card not in {
        r["objectId"] for r in (await api.ok(DELETED, token=token))["deletedObjects"]["nodes"]
    }
    history = await card_revisions(api, token, card)
    assert [(r["number"], r["deleted"]) for r in history] == [(3, False), (2, False), (1, False)]
    # It runs again, and the dashboard that held it shows it again.
    final = await run_card(api, token, card, dashboardId=dashboard, useCache=False)
    assert final["result"]["html"] == "<p>back</p>"


async def test_a_restore_that_no_longer_fits_names_what_is_missing(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("misfit")
    token = owner["token"]
    first_data, second_data = (
        await dataset(api, token, "kept"),
        await dataset(api, token, "dropped"),
    )
    card = await create_card(api, token, SAYS, [second_data], params={"word": "w"})
    await api.ok(UPDATE_CARD, {"i": {"id": card, "datasetIds": [first_data]}}, token=token)
    await api.ok(
        "mutation($id: ID!) { deleteDataset(input: {id: $id, force: true}) { deletedId } }",
        {"id": second_data},
        token=token,
    )
    *_, first = await card_revisions(api, token, card)
    refused = await api.fail(RESTORE, {"i": {"id": first["id"]}}, token=token)
    assert refused.code == "BAD_USER_INPUT" and second_data in refused.error["message"]
    assert len(await card_revisions(api, token, card)) == 2  # nothing was written


async def test_transform_revisions_follow_edits_and_restore(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("transformer-history")
    token = owner["token"]
    data = await dataset(api, token)
    code = "def transform(inputs, params):\n    return list(inputs.values())[0]\n"
    transform = (await create_transform(api, token, code, [data], name="t1"))["id"]
    await api.ok(
        UPDATE_TRANSFORM,
        {"i": {"id": transform, "scheduleCron": "0 * * * *", "name": "t2"}},
        token=token,
    )
    read = await api.ok(TRANSFORM_REVISIONS, {"id": transform}, token=token)
    newest, first = read["transform"]["revisions"]["nodes"]
    assert changed(newest) == {"name": ("t1", "t2"), "scheduleCron": (None, "0 * * * *")}
    restored = (await api.ok(RESTORE, {"i": {"id": first["id"]}}, token=token))["restoreRevision"]
    assert restored["node"] == {"id": transform, "name": "t1", "code": code, "scheduleCron": None}
    assert restored["revision"]["number"] == 3


def stored_expiries(stack: Stack, object_id: str) -> list[int | None]:
    items = stack.aws("dynamodb").query(
        TableName=f"{stack.env['TILEGRAPH_TABLE_PREFIX']}revisions",
        KeyConditionExpression="object_id = :o",
        ExpressionAttributeValues={":o": {"S": object_id}},
        ConsistentRead=True,
    )["Items"]
    return [int(i["expires_at"]["N"]) if "expires_at" in i else None for i in items]


async def test_a_deleted_objects_history_expires_after_the_retention_and_a_restore_keeps_it(
    api: Api, users: Users, worker: Any, stack: Stack
) -> None:
    owner = await users.create("retention")
    token = owner["token"]
    data = await dataset(api, token)
    card = await create_card(api, token, SAYS, [data], params={"word": "w"})
    await api.ok(UPDATE_CARD, {"i": {"id": card, "name": "renamed"}}, token=token)
    assert stored_expiries(stack, card) == [None, None]
    await api.ok(DELETE_CARD, {"id": card}, token=token)
    in_30_days = time.time() + 30 * 86400
    expiries = stored_expiries(stack, card)
    assert len(expiries) == 2
    assert all(e is not None and abs(e - in_30_days) < 3600 for e in expiries), expiries

    (last,) = [
        r
        for r in (await api.ok(DELETED, token=token))["deletedObjects"]["nodes"]
        if r["objectId"] == card
    ]
    await api.ok(RESTORE, {"i": {"id": last["id"]}}, token=token)
    assert stored_expiries(stack, card) == [None, None, None]

    # Once the retention has passed the history is gone, even before DynamoDB removes it.
    other = await create_card(api, token, SAYS, [data], params={"word": "w"})
    await api.ok(DELETE_CARD, {"id": other}, token=token)
    (gone,) = [
        r
        for r in (await api.ok(DELETED, token=token))["deletedObjects"]["nodes"]
        if r["objectId"] == other
    ]
    stack.aws("dynamodb").update_item(
        TableName=f"{stack.env['TILEGRAPH_TABLE_PREFIX']}revisions",
        Key={"object_id": {"S": other}, "seq": {"S": f"{1:010d}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
    )
    listed = (await api.ok(DELETED, token=token))["deletedObjects"]["nodes"]
    assert other not in {r["objectId"] for r in listed}
    assert (await api.fail(RESTORE, {"i": {"id": gone["id"]}}, token=token)).code == "NOT_FOUND"


async def test_a_restore_brings_the_workspace_key_back_unless_another_object_took_it(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("keyed-history")
    token = owner["token"]
    data = await dataset(api, token)
    card = await create_card(api, token, SAYS, [data], params={"word": "w"})
    await api.ok(UPDATE_CARD, {"i": {"id": card, "workspaceKey": "sales-total"}}, token=token)
    newest, _ = await card_revisions(api, token, card)
    assert changed(newest) == {"workspaceKey": (None, "sales-total")}
    await api.ok(UPDATE_CARD, {"i": {"id": card, "workspaceKey": "renamed"}}, token=token)
    other = await create_card(api, token, SAYS, [data], params={"word": "w"})
    await api.ok(UPDATE_CARD, {"i": {"id": other, "workspaceKey": "sales-total"}}, token=token)
    taken = await api.fail(RESTORE, {"i": {"id": newest["id"]}}, token=token)
    assert taken.code == "CONFLICT" and taken.error["extensions"]["field"] == "workspaceKey"
    await api.ok(UPDATE_CARD, {"i": {"id": other, "workspaceKey": None}}, token=token)
    await api.ok(RESTORE, {"i": {"id": newest["id"]}}, token=token)
    key = await api.ok(
        "query($id: ID!) { node(id: $id) { ... on Card { workspaceKey } } }",
        {"id": card},
        token=token,
    )
    assert key["node"]["workspaceKey"] == "sales-total"
