"""`node(id:)` finds every kind of object for whoever may see it, and nothing for anyone else."""

from __future__ import annotations

from typing import Any

from tests.conftest import Users
from tests.support.cards import create_card, render, run_card
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.transforms import create_transform, run_transform

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"


async def test_node_resolves_each_kind_for_its_owner_only(
    api: Api, users: Users, worker: Any
) -> None:
    owner = await users.create("node-owner")
    viewer = await users.create("node-viewer")
    stranger = await users.create("node-stranger")
    token = owner["token"]
    uploaded, final = await import_and_wait(api, token, csv_bytes([["a"], [1], [2]]))
    assert final["status"] == "SUCCEEDED"
    dataset_id = uploaded["dataset"]["id"]
    card_id = await create_card(api, token, render("return str(len(dataset))"), [dataset_id])
    card_run = await run_card(api, token, card_id)
    transform = await create_transform(api, token, "result = df_0", [dataset_id])
    transform_run = await run_transform(api, token, transform["id"])
    dashboard = await create_dashboard(api, token, card_ids=[card_id])
    share_id = await share(api, token, dashboard["id"], "USER", viewer["id"], "VIEWER")
    view = await api.ok(
        'mutation($id: ID!) { createFilterView(input: {dashboardId: $id, name: "v", '
        "filterState: {}, isShared: true}) { filterView { id } } }",
        {"id": dashboard["id"]},
        token=token,
    )
    policy = await api.ok(
        "mutation($d: ID!, $u: ID!) { createDatasetPolicy(input: {datasetId: $d, "
        "targetType: USER, targetId: $u}) { policy { id } } }",
        {"d": dataset_id, "u": viewer["id"]},
        token=token,
    )
    objects = {
        dataset_id: "Dataset",
        policy["createDatasetPolicy"]["policy"]["id"]: "DatasetPolicy",
        uploaded["import"]["id"]: "DatasetImport",
        card_id: "Card",
        card_run["id"]: "CardExecution",
        transform["id"]: "Transform",
        transform_run["id"]: "TransformExecution",
        dashboard["id"]: "Dashboard",
        share_id: "DashboardShare",
        view["createFilterView"]["filterView"]["id"]: "FilterView",
        owner["id"]: "User",
    }
    for object_id, typename in objects.items():
        found = await api.ok(NODE, {"id": object_id}, token=token)
        assert found["node"] == {"__typename": typename, "id": object_id}
    for object_id, typename in objects.items():
        if typename == "User":
            continue  # users are visible to every signed-in user
        response = await api.fail(NODE, {"id": object_id}, token=stranger["token"])
        assert response.code == "NOT_FOUND", typename
    # A VIEWER sees the dashboard and its shared view, not the owner's own things.
    seen = set()
    for object_id, typename in objects.items():
        response = await api.post(NODE, {"id": object_id}, token=viewer["token"])
        if not response.errors:
            seen.add(typename)
    assert seen == {"Dashboard", "FilterView", "User"}
