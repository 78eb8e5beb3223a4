"""Groups and membership, as an admin, through GraphQL."""

from __future__ import annotations

import secrets

from tests.conftest import Users
from tests.support.client import Api

CREATE = "mutation($n: String!) { createGroup(input: {name: $n}) { group { id name } } }"
MEMBERS = """query($id: ID!, $first: Int, $after: String) { group(id: $id) {
  members(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id email } } } } }"""


async def test_group_crud_and_membership(api: Api, users: Users, admin_token: str) -> None:
    name = f"Analysts {secrets.token_hex(3)}"
    group = (await api.ok(CREATE, {"n": name}, token=admin_token))["createGroup"]["group"]
    assert group["name"] == name and group["id"].startswith("grp_")

    duplicate = await api.fail(CREATE, {"n": name.upper()}, token=admin_token)
    assert duplicate.code == "CONFLICT"

    members = [await users.create(f"member{i}") for i in range(3)]
    add = "mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }"
    for member in members:
        await api.ok(add, {"g": group["id"], "u": member["id"]}, token=admin_token)
    again = await api.fail(add, {"g": group["id"], "u": members[0]["id"]}, token=admin_token)
    assert again.code == "CONFLICT"
    unknown = await api.fail(add, {"g": group["id"], "u": "usr_nope"}, token=admin_token)
    assert unknown.code == "BAD_USER_INPUT"

    first = await api.ok(MEMBERS, {"id": group["id"], "first": 2}, token=admin_token)
    page = first["group"]["members"]
    assert page["totalCount"] == 3
    assert page["pageInfo"]["hasNextPage"] is True and len(page["edges"]) == 2
    rest = await api.ok(
        MEMBERS,
        {"id": group["id"], "first": 2, "after": page["pageInfo"]["endCursor"]},
        token=admin_token,
    )
    tail = rest["group"]["members"]
    assert tail["pageInfo"]["hasNextPage"] is False and len(tail["edges"]) == 1
    seen = {e["node"]["id"] for e in page["edges"] + tail["edges"]}
    assert seen == {m["id"] for m in members}

    remove = "mutation($g: ID!, $u: ID!) { removeGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }"
    await api.ok(remove, {"g": group["id"], "u": members[0]["id"]}, token=admin_token)
    after = await api.ok(MEMBERS, {"id": group["id"]}, token=admin_token)
    assert after["group"]["members"]["totalCount"] == 2

    renamed = f"Renamed {secrets.token_hex(3)}"
    update = "mutation($id: ID!, $n: String!) { updateGroup(input: {id: $id, name: $n}) { group { name } } }"
    result = await api.ok(update, {"id": group["id"], "n": renamed}, token=admin_token)
    assert result["updateGroup"]["group"]["name"] == renamed
    # The old name is free again; the new one is taken.
    other = (await api.ok(CREATE, {"n": name}, token=admin_token))["createGroup"]["group"]
    clash = await api.fail(update, {"id": other["id"], "n": renamed}, token=admin_token)
    assert clash.code == "CONFLICT"

    node = await api.ok(
        "query($id: ID!) { node(id: $id) { id ... on Group { name } } }",
        {"id": group["id"]},
        token=admin_token,
    )
    assert node["node"]["name"] == renamed

    deleted = await api.ok(
        "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId } }",
        {"id": group["id"]},
        token=admin_token,
    )
    assert deleted["deleteGroup"]["deletedId"] == group["id"]
    gone = await api.fail(
        "query($id: ID!) { group(id: $id) { id } }", {"id": group["id"]}, token=admin_token
    )
    assert gone.code == "NOT_FOUND"


async def test_groups_list_pages_with_exact_total(api: Api, admin_token: str) -> None:
    for i in range(3):
        await api.ok(CREATE, {"n": f"List {secrets.token_hex(4)} {i}"}, token=admin_token)
    all_groups = await api.ok(
        "{ groups(first: 100) { totalCount edges { node { id } } } }", token=admin_token
    )
    total = all_groups["groups"]["totalCount"]
    assert total == len(all_groups["groups"]["edges"]) >= 3
    ids: list[str] = []
    after = None
    while True:
        page = await api.ok(
            "query($a: String) { groups(first: 2, after: $a) { pageInfo { "
            "hasNextPage endCursor } edges { node { id } } } }",
            {"a": after},
            token=admin_token,
        )
        ids += [e["node"]["id"] for e in page["groups"]["edges"]]
        if not page["groups"]["pageInfo"]["hasNextPage"]:
            break
        after = page["groups"]["pageInfo"]["endCursor"]
    assert len(ids) == len(set(ids)) == total
    bad_first = await api.fail("{ groups(first: 101) { totalCount } }", token=admin_token)
    assert bad_first.code == "BAD_USER_INPUT" and bad_first.error["extensions"]["field"] == "first"
    bad_cursor = await api.fail('{ groups(after: "garbage!") { totalCount } }', token=admin_token)
    assert bad_cursor.code == "BAD_USER_INPUT"
