"""Dataset policies through GraphQL: their owner manages them, admins set the attributes
they read, and effectiveAccess explains what each reader would see.

Only the dataset's owner manages its policies; an admin who does not own the dataset is
treated like anyone else (NOT_FOUND), since admins manage accounts, not other people's data.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Users
from tests.support.cards import create_card, render
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, new_group, share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.policies import (
    CREATE,
    POLICY_FIELDS,
    SET_ATTRIBUTES,
    SET_DEFAULT,
    create_policy,
    policy_input,
)

ROWS = [
    ["region", "country", "amount", "cost"],
    ["west", "fr", 10, 1],
    ["east", "it", 20, 2],
    ["north", "de", 30, 3],
]
UPDATE = f"""mutation($i: UpdateDatasetPolicyInput!) {{ updateDatasetPolicy(input: $i) {{
  policy {{ {POLICY_FIELDS} }} }} }}"""
DELETE = "mutation($id: ID!) { deleteDatasetPolicy(input: {id: $id}) { deletedId } }"
POLICIES = (
    f"query($id: ID!) {{ dataset(id: $id) {{ defaultAccess policies {{ {POLICY_FIELDS} }} }} }}"
)
ACCESS = """query($id: ID!, $u: ID!) { dataset(id: $id) { effectiveAccess(userId: $u) {
  dataset { id } user { id } policies { id } full anyRows hiddenColumns rowCondition } } }"""
USER_ATTRIBUTES = "query($id: ID!) { node(id: $id) { ... on User { id attributes } } }"
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
LOGS = """query($f: AuditLogFilter) { auditLogs(filter: $f, first: 20) {
  edges { node { eventType targetType targetId details user { id } } } } }"""


async def owned_dataset(api: Api, users: Users) -> tuple[dict[str, str], str]:
    owner = await users.create("policy-owner")
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(ROWS), name="sales")
    assert final["status"] == "SUCCEEDED", final
    return owner, uploaded["dataset"]["id"]


async def access_of(api: Api, token: str, dataset_id: str, user_id: str) -> dict[str, Any]:
    data = await api.ok(ACCESS, {"id": dataset_id, "u": user_id}, token=token)
    return data["dataset"]["effectiveAccess"]  # type: ignore[no-any-return]


async def test_the_owner_creates_updates_and_deletes_policies(
    api: Api, users: Users, worker: Any
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("policy-reader")
    created = await create_policy(
        api,
        owner["token"],
        dataset_id,
        "USER",
        reader["id"],
        rowFilters=[{"column": "region", "values": ["west", "east"]}],
        hiddenColumns=["cost"],
    )
    assert created["id"].startswith("pol_") and created["version"] == 1
    assert created["targetType"] == "USER" and created["user"] == {"id": reader["id"]}
    assert created["group"] is None and created["dataset"] == {"id": dataset_id}
    assert created["rowFilters"] == [
        {"column": "region", "values": ["west", "east"], "userAttribute": None}
    ]
    assert created["hiddenColumns"] == ["cost"]

    listed = (await api.ok(POLICIES, {"id": dataset_id}, token=owner["token"]))["dataset"]
    assert listed["defaultAccess"] == "FULL" and listed["policies"] == [created]

    again = await api.fail(
        CREATE, policy_input(dataset_id, "USER", reader["id"]), token=owner["token"]
    )
    assert again.code == "CONFLICT" and again.error["extensions"]["field"] == "targetId"

    updated = (
        await api.ok(
            UPDATE,
            {
                "i": {
                    "id": created["id"],
                    "rowFilters": [{"column": "country", "userAttribute": "country"}],
                    "expectedVersion": 1,
                }
            },
            token=owner["token"],
        )
    )["updateDatasetPolicy"]["policy"]
    assert updated["version"] == 2 and updated["hiddenColumns"] == ["cost"]
    assert updated["rowFilters"] == [
        {"column": "country", "values": None, "userAttribute": "country"}
    ]
    stale = await api.fail(
        UPDATE,
        {"i": {"id": created["id"], "hiddenColumns": [], "expectedVersion": 1}},
        token=owner["token"],
    )
    assert stale.code == "CONFLICT" and stale.error["extensions"]["field"] == "expectedVersion"
    unchanged = (await api.ok(POLICIES, {"id": dataset_id}, token=owner["token"]))["dataset"]
    assert unchanged["policies"] == [updated]

    deleted = await api.ok(DELETE, {"id": created["id"]}, token=owner["token"])
    assert deleted["deleteDatasetPolicy"]["deletedId"] == created["id"]
    assert (await api.ok(POLICIES, {"id": dataset_id}, token=owner["token"]))["dataset"][
        "policies"
    ] == []
    gone = await api.fail(DELETE, {"id": created["id"]}, token=owner["token"])
    assert gone.code == "NOT_FOUND"
    # The target is free again.
    await create_policy(api, owner["token"], dataset_id, "USER", reader["id"])


async def test_bad_input_names_the_field(
    api: Api, users: Users, worker: Any, admin_token: str
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("policy-reader")
    group_id = await new_group(api, admin_token, [])
    cases: list[tuple[dict[str, Any], str]] = [
        (
            policy_input(
                dataset_id, "USER", reader["id"], rowFilters=[{"column": "nope", "values": ["x"]}]
            ),
            "rowFilters[0].column",
        ),
        (
            policy_input(
                dataset_id,
                "USER",
                reader["id"],
                rowFilters=[
                    {"column": "region", "values": ["x"]},
                    {"column": "region", "values": ["west"], "userAttribute": "r"},
                ],
            ),
            "rowFilters[1]",
        ),
        (
            policy_input(dataset_id, "USER", reader["id"], rowFilters=[{"column": "region"}]),
            "rowFilters[0]",
        ),
        (
            policy_input(dataset_id, "USER", reader["id"], hiddenColumns=["cost", "secret"]),
            "hiddenColumns[1]",
        ),
        (policy_input(dataset_id, "USER", "usr_nobody"), "targetId"),
        (policy_input(dataset_id, "GROUP", "grp_nobody"), "targetId"),
        (policy_input(dataset_id, "GROUP", reader["id"]), "targetId"),
        (policy_input(dataset_id, "USER", owner["id"]), "targetId"),
    ]
    for variables, field in cases:
        refused = await api.fail(CREATE, variables, token=owner["token"])
        assert refused.code == "BAD_USER_INPUT", (variables, refused.body)
        assert refused.error["extensions"]["field"] == field, (variables, refused.body)

    policy = await create_policy(api, owner["token"], dataset_id, "GROUP", group_id)
    for change, field in [
        ({"hiddenColumns": ["secret"]}, "hiddenColumns[0]"),
        (
            {"rowFilters": [{"column": "amount", "values": ["1"], "userAttribute": "a"}]},
            "rowFilters[0]",
        ),
        ({"rowFilters": [{"column": "secret", "values": ["1"]}]}, "rowFilters[0].column"),
    ]:
        refused = await api.fail(
            UPDATE, {"i": {"id": policy["id"], **change}}, token=owner["token"]
        )
        assert refused.code == "BAD_USER_INPUT" and refused.error["extensions"]["field"] == field
    kept = (await api.ok(POLICIES, {"id": dataset_id}, token=owner["token"]))["dataset"]
    assert kept["policies"] == [policy]


async def test_only_the_owner_manages_and_sees_policies(
    api: Api, users: Users, worker: Any, admin_token: str
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    stranger = await users.create("policy-stranger")
    editor = await users.create("policy-editor")
    card_id = await create_card(api, owner["token"], render("return 'x'"), [dataset_id])
    dashboard = await create_dashboard(api, owner["token"], card_ids=[card_id])
    await share(api, owner["token"], dashboard["id"], "USER", editor["id"], "EDITOR")
    policy = await create_policy(
        api, owner["token"], dataset_id, "USER", editor["id"], hiddenColumns=["cost"]
    )

    # The editor reaches the dataset through the dashboard's card, but not its policies.
    through_card = await api.post(
        """query($c: ID!, $d: ID!) { card(id: $c, dashboardId: $d) {
          datasets { id policies { id } } } }""",
        {"c": card_id, "d": dashboard["id"]},
        token=editor["token"],
    )
    assert through_card.code == "FORBIDDEN"
    explained = await api.post(
        """query($c: ID!, $d: ID!, $u: ID!) { card(id: $c, dashboardId: $d) {
          datasets { effectiveAccess(userId: $u) { full } } } }""",
        {"c": card_id, "d": dashboard["id"], "u": editor["id"]},
        token=editor["token"],
    )
    assert explained.code == "FORBIDDEN"
    default_seen = await api.ok(
        "query($c: ID!, $d: ID!) { card(id: $c, dashboardId: $d) { datasets { defaultAccess } } }",
        {"c": card_id, "d": dashboard["id"]},
        token=editor["token"],
    )
    assert default_seen["card"]["datasets"] == [{"defaultAccess": "FULL"}]

    for caller in (stranger["token"], editor["token"], admin_token):
        created = await api.fail(
            CREATE, policy_input(dataset_id, "USER", stranger["id"]), token=caller
        )
        assert created.code == "NOT_FOUND" and created.error["extensions"]["field"] == "datasetId"
        updated = await api.fail(
            UPDATE, {"i": {"id": policy["id"], "hiddenColumns": []}}, token=caller
        )
        assert updated.code == "NOT_FOUND"
        deleted = await api.fail(DELETE, {"id": policy["id"]}, token=caller)
        assert deleted.code == "NOT_FOUND"
        assert (await api.fail(NODE, {"id": policy["id"]}, token=caller)).code == "NOT_FOUND"
        assert (await api.ok(NODES, {"ids": [policy["id"]]}, token=caller))["nodes"] == [None]
        default = await api.fail(SET_DEFAULT, {"id": dataset_id, "d": "NONE"}, token=caller)
        assert default.code == "NOT_FOUND"

    found = await api.ok(NODE, {"id": policy["id"]}, token=owner["token"])
    assert found["node"] == {"__typename": "DatasetPolicy", "id": policy["id"]}
    listed = (await api.ok(POLICIES, {"id": dataset_id}, token=owner["token"]))["dataset"]
    assert [p["id"] for p in listed["policies"]] == [policy["id"]]
    assert listed["policies"][0]["version"] == 1 and listed["defaultAccess"] == "FULL"


async def test_only_admins_set_attributes_and_only_they_and_the_user_read_them(
    api: Api, users: Users, admin_token: str
) -> None:
    person = await users.create("attr-person")
    other = await users.create("attr-other")
    refused = await api.fail(
        SET_ATTRIBUTES, {"u": person["id"], "a": {"country": "fr"}}, token=person["token"]
    )
    assert refused.code == "FORBIDDEN"

    attributes = {"country": "fr", "regions": ["west", "east"]}
    set_ = await api.ok(SET_ATTRIBUTES, {"u": person["id"], "a": attributes}, token=admin_token)
    assert set_["setUserAttributes"]["user"] == {"id": person["id"], "attributes": attributes}

    as_self = await api.ok(USER_ATTRIBUTES, {"id": person["id"]}, token=person["token"])
    assert as_self["node"]["attributes"] == attributes
    me = await api.ok("{ me { attributes } }", token=person["token"])
    assert me["me"]["attributes"] == attributes
    as_admin = await api.ok(USER_ATTRIBUTES, {"id": person["id"]}, token=admin_token)
    assert as_admin["node"]["attributes"] == attributes
    as_other = await api.ok(USER_ATTRIBUTES, {"id": person["id"]}, token=other["token"])
    assert as_other["node"] == {"id": person["id"], "attributes": None}
    fresh = await api.ok(USER_ATTRIBUTES, {"id": other["id"]}, token=other["token"])
    assert fresh["node"]["attributes"] == {}

    for bad, field in [
        (["fr"], "attributes"),
        ({"country": 1}, "attributes.country"),
        ({"regions": ["west", 2]}, "attributes.regions"),
        ({"nested": {"a": "b"}}, "attributes.nested"),
        ({f"k{i}": "v" for i in range(51)}, "attributes"),
        ({"many": ["v"] * 101}, "attributes.many"),
    ]:
        wrong = await api.fail(SET_ATTRIBUTES, {"u": person["id"], "a": bad}, token=admin_token)
        assert wrong.code == "BAD_USER_INPUT" and wrong.error["extensions"]["field"] == field
    unknown = await api.fail(SET_ATTRIBUTES, {"u": "usr_nobody", "a": {}}, token=admin_token)
    assert unknown.code == "NOT_FOUND"
    kept = await api.ok(USER_ATTRIBUTES, {"id": person["id"]}, token=admin_token)
    assert kept["node"]["attributes"] == attributes

    cleared = await api.ok(SET_ATTRIBUTES, {"u": person["id"], "a": {}}, token=admin_token)
    assert cleared["setUserAttributes"]["user"]["attributes"] == {}


async def test_effective_access_for_every_kind_of_reader(
    api: Api, users: Users, worker: Any, admin_token: str
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    token = owner["token"]
    solo, one_group, two_groups, user_and_group, with_attr, without_attr, nobody = [
        await users.create(f"reader{i}") for i in range(7)
    ]
    west = await new_group(
        api, admin_token, [one_group["id"], two_groups["id"], user_and_group["id"]]
    )
    france = await new_group(api, admin_token, [two_groups["id"]])
    attr_group = await new_group(api, admin_token, [with_attr["id"], without_attr["id"]])
    await api.ok(
        SET_ATTRIBUTES, {"u": with_attr["id"], "a": {"country": ["fr", "it"]}}, token=admin_token
    )
    await api.ok(
        SET_ATTRIBUTES, {"u": without_attr["id"], "a": {"region": "west"}}, token=admin_token
    )

    solo_policy = await create_policy(
        api,
        token,
        dataset_id,
        "USER",
        solo["id"],
        rowFilters=[{"column": "region", "values": ["west"]}],
        hiddenColumns=["cost"],
    )
    west_policy = await create_policy(
        api,
        token,
        dataset_id,
        "GROUP",
        west,
        rowFilters=[{"column": "region", "values": ["west"]}],
        hiddenColumns=["amount", "cost"],
    )
    france_policy = await create_policy(
        api,
        token,
        dataset_id,
        "GROUP",
        france,
        rowFilters=[{"column": "country", "values": ["fr"]}],
        hiddenColumns=["cost"],
    )
    user_policy = await create_policy(api, token, dataset_id, "USER", user_and_group["id"])
    attr_policy = await create_policy(
        api,
        token,
        dataset_id,
        "GROUP",
        attr_group,
        rowFilters=[
            {"column": "region", "values": ["west", "east"]},
            {"column": "country", "userAttribute": "country"},
        ],
    )

    as_owner = await access_of(api, token, dataset_id, owner["id"])
    assert as_owner == {
        "dataset": {"id": dataset_id},
        "user": {"id": owner["id"]},
        "policies": [],
        "full": True,
        "anyRows": True,
        "hiddenColumns": [],
        "rowCondition": None,
    }

    as_solo = await access_of(api, token, dataset_id, solo["id"])
    assert as_solo["policies"] == [{"id": solo_policy["id"]}]
    assert (as_solo["full"], as_solo["anyRows"]) == (False, True)
    assert as_solo["hiddenColumns"] == ["cost"] and as_solo["rowCondition"] == "region in (west)"

    as_one = await access_of(api, token, dataset_id, one_group["id"])
    assert as_one["policies"] == [{"id": west_policy["id"]}]
    assert as_one["hiddenColumns"] == ["amount", "cost"]
    assert as_one["rowCondition"] == "region in (west)"

    as_two = await access_of(api, token, dataset_id, two_groups["id"])
    assert {p["id"] for p in as_two["policies"]} == {west_policy["id"], france_policy["id"]}
    assert as_two["hiddenColumns"] == ["cost"]  # hidden only where both hide it
    assert as_two["anyRows"] and set(as_two["rowCondition"].split(" OR ")) == {
        "(region in (west))",
        "(country in (fr))",
    }

    as_user_and_group = await access_of(api, token, dataset_id, user_and_group["id"])
    assert as_user_and_group["policies"] == [{"id": user_policy["id"]}]
    assert as_user_and_group["full"] and as_user_and_group["rowCondition"] is None

    as_with_attr = await access_of(api, token, dataset_id, with_attr["id"])
    assert as_with_attr["policies"] == [{"id": attr_policy["id"]}] and as_with_attr["anyRows"]
    assert as_with_attr["rowCondition"] == "region in (east, west) AND country = user.country"
    as_without_attr = await access_of(api, token, dataset_id, without_attr["id"])
    assert as_without_attr["policies"] == [{"id": attr_policy["id"]}]
    assert not as_without_attr["anyRows"] and not as_without_attr["full"]

    as_nobody = await access_of(api, token, dataset_id, nobody["id"])
    assert as_nobody["policies"] == [] and as_nobody["full"] and as_nobody["anyRows"]
    changed = await api.ok(SET_DEFAULT, {"id": dataset_id, "d": "NONE"}, token=token)
    assert changed["updateDataset"]["dataset"]["defaultAccess"] == "NONE"
    as_nobody = await access_of(api, token, dataset_id, nobody["id"])
    assert as_nobody["policies"] == [] and not as_nobody["full"] and not as_nobody["anyRows"]
    assert as_nobody["hiddenColumns"] == [] and as_nobody["rowCondition"] == "no rows"
    # Policies still decide for the readers they match; the owner still sees everything.
    assert (await access_of(api, token, dataset_id, solo["id"]))["anyRows"]
    assert (await access_of(api, token, dataset_id, owner["id"]))["full"]
    # Leaving defaultAccess out keeps it.
    kept = await api.ok(SET_DEFAULT, {"id": dataset_id, "d": None}, token=token)
    assert kept["updateDataset"]["dataset"]["defaultAccess"] == "NONE"

    unknown = await api.fail(ACCESS, {"id": dataset_id, "u": "usr_nobody"}, token=token)
    assert unknown.code == "NOT_FOUND" and unknown.error["extensions"]["field"] == "userId"


async def test_policy_changes_and_attributes_are_audited_with_before_and_after(
    api: Api, users: Users, worker: Any, admin_token: str
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("audited-reader")
    policy = await create_policy(
        api,
        owner["token"],
        dataset_id,
        "USER",
        reader["id"],
        rowFilters=[{"column": "region", "values": ["west"]}],
    )
    await api.ok(
        UPDATE, {"i": {"id": policy["id"], "hiddenColumns": ["cost"]}}, token=owner["token"]
    )
    await api.ok(DELETE, {"id": policy["id"]}, token=owner["token"])

    logs = await api.ok(LOGS, {"f": {"targetId": policy["id"]}}, token=admin_token)
    events = [e["node"] for e in logs["auditLogs"]["edges"]]
    assert [e["eventType"] for e in events] == [
        "DATASET_POLICY_DELETED",
        "DATASET_POLICY_UPDATED",
        "DATASET_POLICY_CREATED",
    ]
    assert all(e["user"] == {"id": owner["id"]} for e in events)
    assert all(e["targetType"] == "dataset_policy" for e in events)
    first = {
        "targetType": "USER",
        "targetId": reader["id"],
        "rowFilters": [{"column": "region", "values": ["west"]}],
        "hiddenColumns": [],
        "version": 1,
    }
    second = {**first, "hiddenColumns": ["cost"], "version": 2}
    deleted, updated, created = (e["details"] for e in events)
    assert created == {"datasetId": dataset_id, "after": first}
    assert updated == {"datasetId": dataset_id, "before": first, "after": second}
    assert deleted == {"datasetId": dataset_id, "before": second}

    await api.ok(SET_ATTRIBUTES, {"u": reader["id"], "a": {"country": "fr"}}, token=admin_token)
    await api.ok(
        SET_ATTRIBUTES, {"u": reader["id"], "a": {"country": ["fr", "it"]}}, token=admin_token
    )
    changes = await api.ok(
        LOGS,
        {"f": {"targetId": reader["id"], "eventType": "USER_ATTRIBUTES_CHANGED"}},
        token=admin_token,
    )
    details = [e["node"]["details"] for e in changes["auditLogs"]["edges"]]
    assert details == [
        {"before": {"country": "fr"}, "after": {"country": ["fr", "it"]}},
        {"before": {}, "after": {"country": "fr"}},
    ]

    # What readers matching no policy see is audited too; setting it unchanged is not.
    for default in ("NONE", "NONE", "FULL"):
        await api.ok(SET_DEFAULT, {"id": dataset_id, "d": default}, token=owner["token"])
    defaults = await api.ok(
        LOGS,
        {"f": {"targetId": dataset_id, "eventType": "DATASET_DEFAULT_ACCESS_CHANGED"}},
        token=admin_token,
    )
    assert [(e["node"]["user"], e["node"]["details"]) for e in defaults["auditLogs"]["edges"]] == [
        (
            {"id": owner["id"]},
            {"before": {"defaultAccess": "NONE"}, "after": {"defaultAccess": "FULL"}},
        ),
        (
            {"id": owner["id"]},
            {"before": {"defaultAccess": "FULL"}, "after": {"defaultAccess": "NONE"}},
        ),
    ]


async def test_deleting_a_dataset_takes_its_policies(api: Api, users: Users, worker: Any) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    reader = await users.create("policy-reader")
    policy = await create_policy(api, owner["token"], dataset_id, "USER", reader["id"])
    await api.ok(
        "mutation($id: ID!) { deleteDataset(input: {id: $id}) { deletedId } }",
        {"id": dataset_id},
        token=owner["token"],
    )
    assert (await api.fail(NODE, {"id": policy["id"]}, token=owner["token"])).code == "NOT_FOUND"


async def test_deleting_a_group_takes_its_policies(
    api: Api, users: Users, worker: Any, admin_token: str
) -> None:
    owner, dataset_id = await owned_dataset(api, users)
    member = await users.create("policy-member")
    group_id = await new_group(api, admin_token, [member["id"]])
    await create_policy(api, owner["token"], dataset_id, "GROUP", group_id, hiddenColumns=["cost"])
    assert (await access_of(api, owner["token"], dataset_id, member["id"]))["hiddenColumns"] == [
        "cost"
    ]
    await api.ok(
        "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId } }",
        {"id": group_id},
        token=admin_token,
    )
    listed = (await api.ok(POLICIES, {"id": dataset_id}, token=owner["token"]))["dataset"]
    assert listed["policies"] == []
    assert (await access_of(api, owner["token"], dataset_id, member["id"]))["full"]
