"""Dataset policies enforced on card runs: a reader who is not the dataset's owner runs a
card through a shared dashboard (executeCard with dashboardId, executeDashboard) and its
code gets only the rows and columns their policies let them see; cached results are kept
apart per effective access."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Users
from tests.integration.test_dataset_policies import (
    DELETE,
    SET_ATTRIBUTES,
    SET_DEFAULT,
    UPDATE,
    create_policy,
    owned_dataset,
)
from tests.support.cards import create_card, follow_card, render, run_card
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, new_group, share

# What the card's code received: its columns in order and its rows as sorted strings.
SEEN = render(
    'return json.dumps({"columns": list(dataset.columns),'
    ' "rows": sorted(dataset.astype(str).values.tolist())})',
    imports="import json",
)
RUN_DASHBOARD = """mutation($d: ID!) { executeDashboard(input: {id: $d}) {
  executions { id } } }"""
ALL = ["region", "country", "amount", "cost"]
WEST = ["west", "fr", "10", "1"]
EAST = ["east", "it", "20", "2"]
NORTH = ["north", "de", "30", "3"]


def seen(final: dict[str, Any]) -> dict[str, Any]:
    assert final["status"] == "SUCCEEDED", final
    return json.loads(final["result"]["html"])  # type: ignore[no-any-return]


def shown(columns: list[str], *rows: list[str]) -> dict[str, Any]:
    """What a reader seeing `columns` of the rows `rows` (full rows) gets."""
    picked = [ALL.index(c) for c in columns]
    return {"columns": columns, "rows": sorted([row[i] for i in picked] for row in rows)}


async def through_card(api: Api, who: dict[str, str], card: str, dashboard: str) -> Any:
    return await run_card(api, who["token"], card, dashboardId=dashboard)


async def through_dashboard(api: Api, who: dict[str, str], dashboard: str) -> Any:
    data = await api.ok(RUN_DASHBOARD, {"d": dashboard}, token=who["token"])
    (execution,) = data["executeDashboard"]["executions"]
    return (await follow_card(api, who["token"], execution["id"]))[-1]


async def shared_card(
    api: Api, owner: dict[str, str], dataset_id: str, code: str, readers: list[dict[str, str]]
) -> tuple[str, str]:
    """A card on a dashboard its owner shares with each reader as VIEWER."""
    card = await create_card(api, owner["token"], code, [dataset_id])
    dashboard = (await create_dashboard(api, owner["token"], card_ids=[card]))["id"]
    for reader in readers:
        await share(api, owner["token"], dashboard, "USER", reader["id"], "VIEWER")
    return card, dashboard


async def test_each_reader_gets_what_their_policies_show(
    api: Api, users: Users, worker: Any, admin_token: str
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    token = owner["token"]
    readers = [await users.create(f"enforced{i}") for i in range(7)]
    solo, one_group, two_groups, user_and_group, with_attr, without_attr, nobody = readers
    west = await new_group(
        api, admin_token, [one_group["id"], two_groups["id"], user_and_group["id"]]
    )
    italy = await new_group(api, admin_token, [two_groups["id"]])
    attr_group = await new_group(api, admin_token, [with_attr["id"], without_attr["id"]])
    await api.ok(
        SET_ATTRIBUTES, {"u": with_attr["id"], "a": {"country": ["de", "it"]}}, token=admin_token
    )
    await api.ok(SET_ATTRIBUTES, {"u": without_attr["id"], "a": {"x": "y"}}, token=admin_token)
    # Two filters, one on an integer column matched by its text.
    await create_policy(
        api,
        token,
        dataset_id,
        "USER",
        solo["id"],
        rowFilters=[
            {"column": "region", "values": ["west", "east"]},
            {"column": "amount", "values": ["10", "30"]},
        ],
        hiddenColumns=["cost"],
    )
    await create_policy(
        api,
        token,
        dataset_id,
        "GROUP",
        west,
        rowFilters=[{"column": "region", "values": ["west"]}],
        hiddenColumns=["amount", "cost"],
    )
    await create_policy(
        api,
        token,
        dataset_id,
        "GROUP",
        italy,
        rowFilters=[{"column": "country", "values": ["it"]}],
        hiddenColumns=["cost"],
    )
    await create_policy(
        api,
        token,
        dataset_id,
        "USER",
        user_and_group["id"],
        rowFilters=[{"column": "region", "values": ["north"]}],
    )
    await create_policy(
        api,
        token,
        dataset_id,
        "GROUP",
        attr_group,
        rowFilters=[{"column": "country", "userAttribute": "country"}],
    )
    card, dashboard = await shared_card(api, owner, dataset_id, SEEN, readers)

    expected = [
        (owner, shown(ALL, WEST, EAST, NORTH)),
        (solo, shown(["region", "country", "amount"], WEST)),
        (one_group, shown(["region", "country"], WEST)),
        # Rows of either group; only the column both hide is hidden.
        (two_groups, shown(["region", "country", "amount"], WEST, EAST)),
        (user_and_group, shown(ALL, NORTH)),  # the USER policy alone
        (with_attr, shown(ALL, EAST, NORTH)),
        (without_attr, shown(ALL)),  # a missing attribute shows no rows
        (nobody, shown(ALL, WEST, EAST, NORTH)),  # defaultAccess FULL
    ]
    for who, sees in expected:
        assert seen(await through_card(api, who, card, dashboard)) == sees, who["id"]
        assert seen(await through_dashboard(api, who, dashboard)) == sees, who["id"]

    await api.ok(SET_DEFAULT, {"id": dataset_id, "d": "NONE"}, token=token)
    for who, sees in [(nobody, shown(ALL)), (owner, shown(ALL, WEST, EAST, NORTH))]:
        assert seen(await through_card(api, who, card, dashboard)) == sees, who["id"]
        assert seen(await through_dashboard(api, who, dashboard)) == sees, who["id"]


async def test_cached_results_are_kept_apart_by_what_readers_see(
    api: Api, users: Users, worker: Any
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    first, second, alike = [await users.create(f"cached{i}") for i in range(3)]
    policy = await create_policy(
        api,
        owner["token"],
        dataset_id,
        "USER",
        first["id"],
        rowFilters=[{"column": "region", "values": ["west"]}],
    )
    await create_policy(
        api,
        owner["token"],
        dataset_id,
        "USER",
        second["id"],
        rowFilters=[{"column": "region", "values": ["east"]}],
    )
    await create_policy(
        api,
        owner["token"],
        dataset_id,
        "USER",
        alike["id"],
        rowFilters=[{"column": "region", "values": ["west"]}],
    )
    card, dashboard = await shared_card(api, owner, dataset_id, SEEN, [first, second, alike])

    a_first = await through_card(api, first, card, dashboard)
    assert seen(a_first) == shown(ALL, WEST) and a_first["result"]["cached"] is False
    b = await through_card(api, second, card, dashboard)
    assert seen(b) == shown(ALL, EAST) and b["result"]["cached"] is False
    a_again = await through_card(api, first, card, dashboard)
    assert seen(a_again) == shown(ALL, WEST) and a_again["result"]["cached"] is True
    # Another reader with the same access shares the result; the owner does not.
    same = await through_card(api, alike, card, dashboard)
    assert seen(same) == shown(ALL, WEST) and same["result"]["cached"] is True
    as_owner = await through_card(api, owner, card, dashboard)
    assert seen(as_owner) == shown(ALL, WEST, EAST, NORTH)
    assert as_owner["result"]["cached"] is False

    # A changed policy takes effect on the next run, not served from the cache.
    await api.ok(
        UPDATE,
        {
            "i": {
                "id": policy["id"],
                "expectedVersion": policy["version"],
                "rowFilters": [{"column": "region", "values": ["north"]}],
                "hiddenColumns": ["cost"],
            }
        },
        token=owner["token"],
    )
    changed = await through_card(api, first, card, dashboard)
    assert seen(changed) == shown(["region", "country", "amount"], NORTH)
    assert changed["result"]["cached"] is False


async def test_every_policy_change_holds_from_the_readers_next_run(
    api: Api, users: Users, worker: Any, admin_token: str
) -> None:
    """Each run reads the dataset's policies as they stand: a created, changed or deleted
    policy, and a deleted group, change what the very next run of the same reader gets
    (uncached runs, so each one reads the dataset)."""
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("changing")
    card, dashboard = await shared_card(api, owner, dataset_id, SEEN, [reader])

    async def reader_sees() -> dict[str, Any]:
        final = await run_card(api, reader["token"], card, dashboardId=dashboard, useCache=False)
        return seen(final)

    assert await reader_sees() == shown(ALL, WEST, EAST, NORTH)
    policy = await create_policy(
        api,
        owner["token"],
        dataset_id,
        "USER",
        reader["id"],
        rowFilters=[{"column": "region", "values": ["west"]}],
    )
    assert await reader_sees() == shown(ALL, WEST)
    await api.ok(
        UPDATE,
        {"i": {"id": policy["id"], "rowFilters": [{"column": "region", "values": ["east"]}]}},
        token=owner["token"],
    )
    assert await reader_sees() == shown(ALL, EAST)
    await api.ok(DELETE, {"id": policy["id"]}, token=owner["token"])
    assert await reader_sees() == shown(ALL, WEST, EAST, NORTH)

    group = await new_group(api, admin_token, [reader["id"]])
    await create_policy(
        api, owner["token"], dataset_id, "GROUP", group, hiddenColumns=["cost", "amount"]
    )
    assert await reader_sees() == shown(["region", "country"], WEST, EAST, NORTH)
    await api.ok(
        "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId } }",
        {"id": group},
        token=admin_token,
    )
    assert await reader_sees() == shown(ALL, WEST, EAST, NORTH)


async def test_a_hidden_column_fails_the_run_without_its_values(
    api: Api, users: Users, worker: Any
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("hidden-reader")
    await create_policy(
        api, owner["token"], dataset_id, "USER", reader["id"], hiddenColumns=["cost"]
    )
    # It says it uses only `region` (so later runs are projected) but reads `cost`.
    code = render(
        'return HTMLResult(html=str(dataset[["region", "cost"]].values.tolist()),'
        ' used_columns=["region"])'
    )
    card, dashboard = await shared_card(api, owner, dataset_id, code, [reader])
    assert (await run_card(api, owner["token"], card))["status"] == "SUCCEEDED"

    for final in (
        await through_card(api, reader, card, dashboard),
        await through_dashboard(api, reader, dashboard),
    ):
        assert final["status"] == "FAILED" and final["result"] is None
        assert final["error"]["code"] == "RUNTIME_ERROR"
        assert final["error"]["message"] == "Column 'cost' is not available to you"


async def test_a_readers_run_teaches_the_card_nothing(api: Api, users: Users, worker: Any) -> None:
    """Columns a reader's run used must not narrow what the owner's runs read."""
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("teaching-reader")
    await create_policy(
        api,
        owner["token"],
        dataset_id,
        "USER",
        reader["id"],
        rowFilters=[{"column": "region", "values": ["west"]}],
        hiddenColumns=["cost"],
    )
    code = render(
        "return HTMLResult(html=json.dumps(list(dataset.columns)),"
        " used_columns=list(dataset.columns))",
        imports="import json",
    )
    card, dashboard = await shared_card(api, owner, dataset_id, code, [reader])
    as_reader = await through_card(api, reader, card, dashboard)
    assert json.loads(as_reader["result"]["html"]) == ["region", "country", "amount"]
    as_owner = await run_card(api, owner["token"], card, useCache=False)
    assert json.loads(as_owner["result"]["html"]) == ALL


async def test_a_readers_result_names_no_hidden_column(api: Api, users: Users, worker: Any) -> None:
    """The columns a card's code says it used or filters on are the owner's words: a reader's
    result lists only those the reader may see."""
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("naming-reader")
    await create_policy(
        api, owner["token"], dataset_id, "USER", reader["id"], hiddenColumns=["cost"]
    )
    code = render(
        "return HTMLResult(html='ok', used_columns=['region', 'cost'],"
        " filter_applicable=['cost', 'region'])"
    )
    card, dashboard = await shared_card(api, owner, dataset_id, code, [reader])
    mine = await run_card(api, owner["token"], card)
    assert mine["result"]["usedColumns"] == ["region", "cost"]
    for final in (
        await through_card(api, reader, card, dashboard),
        await through_dashboard(api, reader, dashboard),
    ):
        assert final["status"] == "SUCCEEDED", final
        assert final["result"]["usedColumns"] == ["region"]
        assert final["result"]["filterApplicable"] == ["region"]
