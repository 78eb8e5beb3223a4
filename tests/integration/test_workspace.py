"""Workspace as code: `tilegraph export DIR` and `tilegraph apply DIR`, run as the command
line against a running API, and the `workspaceKey` they match objects by."""

from __future__ import annotations

import asyncio
import io
import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import USER_PASSWORD, Users
from tests.support.client import Api
from tests.support.dashboards import share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess
from tests.support.stack import Stack
from tilegraph.local.api_client import GraphQLClient
from tilegraph.local.workspace import carry_out, plan_apply
from tilegraph.local.workspace_files import read_workspace

SALES = csv_bytes([["region", "amount"], ["N", 1], ["S", 2], ["W", 3]])
REGIONS = csv_bytes([["region", "manager"], ["N", "Ann"], ["S", "Bo"]])
RENDER = "def render(dataset, filters, params):\n    return str(len(dataset)) * params['n']\n"

CREATE_CARD = (
    "mutation($i: CreateCardInput!) { createCard(input: $i) { card { id workspaceKey } } }"
)
UPDATE_CARD = (
    "mutation($i: UpdateCardInput!) { updateCard(input: $i) { card { id workspaceKey } } }"
)
CREATE_TRANSFORM = "mutation($i: CreateTransformInput!) { createTransform(input: $i) { transform { id workspaceKey } } }"
CREATE_DASHBOARD = "mutation($i: CreateDashboardInput!) { createDashboard(input: $i) { dashboard { id version workspaceKey } } }"
UPDATE_DASHBOARD = "mutation($i: UpdateDashboardInput!) { updateDashboard(input: $i) { dashboard { id version workspaceKey } } }"
CREATE_VIEW = (
    "mutation($i: CreateFilterViewInput!) { createFilterView(input: $i) { filterView { id } } }"
)
OWNED = """{ cards { nodes { id name code workspaceKey } } transforms { nodes { id name workspaceKey } }
  dashboards { nodes { id name workspaceKey } } }"""


async def _datasets(api: Api, token: str) -> dict[str, str]:
    ids = {}
    for name, content in (("Sales", SALES), ("Regions", REGIONS)):
        uploaded, final = await import_and_wait(api, token, content, name=name)
        assert final["status"] == "SUCCEEDED", final
        ids[name] = uploaded["dataset"]["id"]
    return ids


async def build_workspace(api: Api, token: str) -> dict[str, Any]:
    """Datasets, two code cards of one name with params, a text card, a scheduled
    transform, and a dashboard with a layout, filters and two filter views."""
    datasets = await _datasets(api, token)

    async def card(name: str, **fields: Any) -> str:
        data = await api.ok(CREATE_CARD, {"i": {"name": name, **fields}}, token=token)
        return str(data["createCard"]["card"]["id"])

    revenue = await card(
        "Revenue",
        code=RENDER,
        datasetIds=[datasets["Sales"], datasets["Regions"]],
        params={"n": 2, "colours": {"b": "blue", "a": "amber"}},
        description="Revenue by region.\nSecond line: what it shows.",
    )
    revenue_2 = await card("Revenue", code=RENDER, datasetIds=[datasets["Sales"]], params={"n": 1})
    note = await card("Read me", type="TEXT", code="<p>Figures are in €.</p>", datasetIds=[])
    await api.ok(
        CREATE_TRANSFORM,
        {
            "i": {
                "name": "Clean sales",
                "inputDatasetIds": [datasets["Sales"]],
                "code": "result = df_0[df_0['amount'] > params['min']]",
                "scheduleCron": "0 6 * * *",
                "scheduleEnabled": True,
                "params": {"min": 1},
            }
        },
        token=token,
    )
    items = [
        {"cardId": revenue, "x": 0, "y": 0, "w": 6, "h": 4},
        {"cardId": revenue_2, "x": 6, "y": 0, "w": 6, "h": 4},
        {"cardId": note, "x": 0, "y": 4, "w": 12, "h": 1},
    ]
    filters = [
        {
            "id": "region",
            "type": "CATEGORY",
            "column": "region",
            "label": "Region",
            "multiSelect": True,
            "options": ["N", "S", "W"],
        },
        {"id": "amount", "type": "NUMBER_RANGE", "column": "amount", "label": "Amount"},
    ]
    data = await api.ok(
        CREATE_DASHBOARD,
        {
            "i": {
                "name": "Sales overview",
                "description": "Weekly review",
                "layout": {"columns": 12, "rowHeight": 90, "items": items},
                "filters": filters,
            }
        },
        token=token,
    )
    dashboard = data["createDashboard"]["dashboard"]["id"]
    for name, state, shared, default in (
        ("West", {"region": ["W"], "amount": {"start": "1", "end": "5"}}, True, False),
        ("North only", {"region": ["N"]}, False, True),
    ):
        await api.ok(
            CREATE_VIEW,
            {
                "i": {
                    "dashboardId": dashboard,
                    "name": name,
                    "filterState": state,
                    "isShared": shared,
                    "isDefault": default,
                }
            },
            token=token,
        )
    return {"datasets": datasets, "dashboard": dashboard, "cards": [revenue, revenue_2, note]}


def files_of(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


class Cli:
    """`tilegraph export|apply` as a separate process against one API, as one user."""

    def __init__(self, stack: Stack, server: str, token: str) -> None:
        self.stack, self.server, self.token = stack, server, token

    async def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            self.stack.run_cli,
            *args,
            "--server",
            self.server,
            env={"TILEGRAPH_TOKEN": self.token},
            timeout=120,
        )

    async def ok(self, *args: str) -> str:
        done = await self(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture
async def fresh(inprocess: InProcess) -> AsyncIterator[Api]:
    """A second deployment on tables, a bucket and a queue of its own: a server that has
    never seen the workspace (with its own worker, for the dataset imports)."""
    tag = secrets.token_hex(3)
    env = {
        "TILEGRAPH_TABLE_PREFIX": f"f{tag}_",
        "TILEGRAPH_BUCKET": f"tilegraph-fresh-{tag}",
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:fresh:{tag}",
    }
    server = await inprocess.start_api(env)
    await inprocess.start_worker(env)
    await server.services.users.ensure_admin("admin@fresh.example", "Admin", USER_PASSWORD)
    client = Api(server.url, server.ws_url, server.transport)
    try:
        yield client
    finally:
        await client.close()


async def _fresh_user(fresh: Api) -> str:
    admin = await fresh.login("admin@fresh.example", USER_PASSWORD)
    email = f"ws-{secrets.token_hex(4)}@tests.example"
    await fresh.ok(
        "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
        {"i": {"email": email, "name": "ws", "password": USER_PASSWORD, "role": "USER"}},
        token=admin,
    )
    return await fresh.login(email, USER_PASSWORD)


async def test_export_then_apply_on_a_fresh_server_then_export_gives_the_same_files(
    stack: Stack, api: Api, users: Users, worker: Any, fresh: Api, tmp_path: Path
) -> None:
    owner = await users.create("workspace")
    await build_workspace(api, owner["token"])
    here = Cli(stack, api.base_url, owner["token"])
    first = tmp_path / "a"
    out = await here.ok("export", str(first))
    # Objects without a key get one from their name, de-duplicated oldest first, stored on
    # the object so that the next apply matches them.
    assert "card 'Revenue': set its workspace key to 'revenue'" in out
    assert "card 'Revenue': set its workspace key to 'revenue-2'" in out
    owned = await api.ok(OWNED, token=owner["token"])
    assert sorted(c["workspaceKey"] for c in owned["cards"]["nodes"]) == [
        "read-me",
        "revenue",
        "revenue-2",
    ]
    assert [d["workspaceKey"] for d in owned["dashboards"]["nodes"]] == ["sales-overview"]
    files = files_of(first)
    assert sorted(files) == [
        "cards/read-me.html",
        "cards/read-me.yaml",
        "cards/revenue-2.py",
        "cards/revenue-2.yaml",
        "cards/revenue.py",
        "cards/revenue.yaml",
        "dashboards/sales-overview.yaml",
        "transforms/clean-sales.py",
        "transforms/clean-sales.yaml",
    ]
    assert files["cards/revenue.py"] == RENDER.encode()
    assert files["cards/revenue.yaml"].decode() == (
        "key: revenue\n"
        "name: Revenue\n"
        "description: |-\n"
        "  Revenue by region.\n"
        "  Second line: what it shows.\n"
        "type: CODE\n"
        "datasets:\n"
        "- Sales\n"
        "- Regions\n"
        "params:\n"
        "  colours:\n"
        "    a: amber\n"
        "    b: blue\n"
        "  n: 2\n"
    )
    dashboard = files["dashboards/sales-overview.yaml"].decode()
    assert "card: revenue-2" in dashboard and "name: North only" in dashboard
    assert "dash_" not in dashboard and "card_" not in dashboard and "version" not in dashboard
    again = await here.ok("export", str(first))
    assert "set its workspace key" not in again and "(no file changed)" in again

    # The same user's datasets, by name, on a server that has nothing else.
    stranger = await _fresh_user(fresh)
    await _datasets(fresh, stranger)
    there = Cli(stack, fresh.base_url, stranger)
    applied = await there.ok("apply", str(first))
    assert (
        "card revenue: create" in applied and "filter view sales-overview/West: create" in applied
    )
    assert "Applied 7 change(s)." in applied  # 3 cards, a transform, a dashboard, 2 views
    second = tmp_path / "b"
    exported = await there.ok("export", str(second))
    assert "set its workspace key" not in exported
    assert files_of(second) == files

    # Applying the same directory again changes nothing.
    unchanged = await there.ok("apply", str(first))
    assert "Plan: 7 unchanged" in unchanged, unchanged
    assert "create" not in unchanged and "update" not in unchanged


async def test_dry_run_plans_without_writing_and_prune_alone_deletes(
    stack: Stack, api: Api, users: Users, worker: Any, tmp_path: Path
) -> None:
    owner = await users.create("workspace")
    built = await build_workspace(api, owner["token"])
    cli = Cli(stack, api.base_url, owner["token"])
    directory = tmp_path / "ws"
    await cli.ok("export", str(directory))
    exported = files_of(directory)

    (directory / "cards/revenue.py").write_text(RENDER.replace("* params['n']", "* 3"))
    dashboard_file = directory / "dashboards/sales-overview.yaml"
    dashboard_file.write_text(
        dashboard_file.read_text()
        .replace("name: Sales overview", "name: Sales review")
        .replace("    amount:\n      end: '5'\n      start: '1'\n", "")
    )
    (directory / "cards/new-one.yaml").write_text(
        "key: new-one\nname: New one\ntype: CODE\ndatasets:\n- Regions\n"
    )
    (directory / "cards/new-one.py").write_text(RENDER)
    second_card = directory / "cards/revenue-2.yaml"
    second_card.write_text(second_card.read_text().replace("- Sales\n", "- Regions\n- Sales\n"))
    transform = directory / "transforms/clean-sales.yaml"
    transform.write_text(transform.read_text().replace("- Sales\n", "- Sales\n- Regions\n"))
    (directory / "transforms/clean-sales.py").write_text("result = df_1")
    edited = files_of(directory)

    planned = await cli.ok("apply", str(directory), "--dry-run")
    assert "card new-one: create" in planned
    assert "card revenue: update (code)" in planned
    assert "card revenue-2: update (datasets)" in planned
    assert "transform clean-sales: update (code, inputs)" in planned
    assert "dashboard sales-overview: update (name)" in planned
    assert "filter view sales-overview/West: update (filterState)" in planned
    assert "Dry run: nothing was changed." in planned
    check = tmp_path / "check"
    await cli.ok("export", str(check))
    assert files_of(check) == exported  # nothing on the server changed
    assert files_of(directory) == edited  # nor in the directory

    applied = await cli.ok("apply", str(directory))
    assert "Applied 6 change(s)." in applied, applied
    owned = await api.ok(OWNED, token=owner["token"])
    assert [d["name"] for d in owned["dashboards"]["nodes"]] == ["Sales review"]
    assert owned["dashboards"]["nodes"][0]["id"] == built["dashboard"]
    after = tmp_path / "after"
    await cli.ok("export", str(after))
    assert files_of(after) == edited

    # A transform whose files are removed is left on the server, unless --prune.
    (directory / "transforms/clean-sales.yaml").unlink()
    (directory / "transforms/clean-sales.py").unlink()
    kept = await cli.ok("apply", str(directory))
    assert "transform clean-sales: left (use --prune to delete)" in kept
    assert "Plan: 7 unchanged, 1 left" in kept, kept
    owned = await api.ok(OWNED, token=owner["token"])
    assert [t["workspaceKey"] for t in owned["transforms"]["nodes"]] == ["clean-sales"]

    pruned = await cli.ok("apply", str(directory), "--prune")
    assert "transform clean-sales: delete" in pruned and "Applied 1 change(s)." in pruned
    owned = await api.ok(OWNED, token=owner["token"])
    assert owned["transforms"]["nodes"] == []
    assert len(owned["cards"]["nodes"]) == 4


async def test_a_missing_dataset_is_named_and_nothing_is_applied(
    stack: Stack, api: Api, users: Users, worker: Any, tmp_path: Path
) -> None:
    owner = await users.create("workspace")
    await build_workspace(api, owner["token"])
    cli = Cli(stack, api.base_url, owner["token"])
    directory = tmp_path / "ws"
    # Signing in with an email and the password (as `tilegraph import` does) works too.
    by_email = await asyncio.to_thread(
        stack.run_cli,
        *("export", str(directory), "--server", api.base_url, "--email", owner["email"]),
        env={"TILEGRAPH_PASSWORD": owner["password"]},
    )
    assert by_email.returncode == 0, by_email.stderr
    card = directory / "cards/revenue-2.yaml"
    card.write_text(card.read_text().replace("- Sales\n", "- Sales 2024\n- Targets\n"))
    note = directory / "cards/read-me.yaml"
    note.write_text(note.read_text().replace("name: Read me", "name: Read me first"))

    for args in (("apply", str(directory)), ("apply", str(directory), "--dry-run")):
        refused = await cli(*args)
        assert refused.returncode == 1
        assert "These datasets are missing" in refused.stderr
        assert "'Sales 2024', 'Targets'" in refused.stderr
    owned = await api.ok(OWNED, token=owner["token"])
    assert "Read me" in [c["name"] for c in owned["cards"]["nodes"]]


async def test_a_dashboard_changed_after_the_plan_is_reported_as_a_conflict(
    stack: Stack, api: Api, users: Users, worker: Any, tmp_path: Path
) -> None:
    owner = await users.create("workspace")
    built = await build_workspace(api, owner["token"])
    directory = tmp_path / "ws"
    await Cli(stack, api.base_url, owner["token"]).ok("export", str(directory))
    dashboard_file = directory / "dashboards/sales-overview.yaml"
    dashboard_file.write_text(dashboard_file.read_text().replace("rowHeight: 90", "rowHeight: 120"))

    with GraphQLClient(api.base_url, owner["token"]) as client:
        workspace = read_workspace(directory)
        plan = await asyncio.to_thread(plan_apply, client, workspace, prune=False)
        assert [s.describe() for s in plan.changes] == [
            "dashboard sales-overview: update (layout.rowHeight)"
        ]
        # Someone renames the dashboard between the plan and its application.
        await api.ok(
            UPDATE_DASHBOARD,
            {"i": {"id": built["dashboard"], "name": "Renamed meanwhile"}},
            token=owner["token"],
        )
        out = io.StringIO()
        assert await asyncio.to_thread(carry_out, plan, out) == 1
    report = out.getvalue()
    assert "dashboard sales-overview: update failed: CONFLICT:" in report, report
    assert "run apply again" in report
    owned = await api.ok(OWNED, token=owner["token"])
    assert [d["name"] for d in owned["dashboards"]["nodes"]] == ["Renamed meanwhile"]


async def test_a_card_changed_after_the_plan_is_reported_as_a_conflict(
    stack: Stack, api: Api, users: Users, worker: Any, tmp_path: Path
) -> None:
    owner = await users.create("workspace")
    built = await build_workspace(api, owner["token"])
    directory = tmp_path / "ws"
    await Cli(stack, api.base_url, owner["token"]).ok("export", str(directory))
    note_file = directory / "cards/read-me.html"
    note_file.write_text("<p>Figures are in $.</p>")

    with GraphQLClient(api.base_url, owner["token"]) as client:
        plan = await asyncio.to_thread(plan_apply, client, read_workspace(directory), prune=False)
        assert [s.describe() for s in plan.changes] == ["card read-me: update (code)"]
        await api.ok(
            UPDATE_CARD,
            {"i": {"id": built["cards"][2], "name": "Renamed meanwhile"}},
            token=owner["token"],
        )
        out = io.StringIO()
        assert await asyncio.to_thread(carry_out, plan, out) == 1
    assert "card read-me: update failed: CONFLICT:" in out.getvalue(), out.getvalue()
    owned = await api.ok(OWNED, token=owner["token"])
    (note,) = [c for c in owned["cards"]["nodes"] if c["id"] == built["cards"][2]]
    assert note["name"] == "Renamed meanwhile" and note["code"] == "<p>Figures are in €.</p>"


async def test_cards_of_other_users_on_a_dashboard_stay_where_they_are(
    stack: Stack, api: Api, users: Users, worker: Any, tmp_path: Path
) -> None:
    """An EDITOR's own card on the owner's dashboard is not the owner's to write down: it
    is left out of the files, and an apply that changes the layout keeps it."""
    owner, editor = await users.create("workspace"), await users.create("editor")
    built = await build_workspace(api, owner["token"])
    await share(api, owner["token"], built["dashboard"], "USER", editor["id"], "EDITOR")
    theirs = await _datasets(api, editor["token"])
    data = await api.ok(
        CREATE_CARD,
        {"i": {"name": "Editor's", "code": RENDER, "datasetIds": [theirs["Sales"]]}},
        token=editor["token"],
    )
    editors_card = data["createCard"]["card"]["id"]
    layout = "{ columns rowHeight items { card { id } x y w h } }"
    current = await api.ok(
        f"query($id: ID!) {{ dashboard(id: $id) {{ version layout {layout} }} }}",
        {"id": built["dashboard"]},
        token=editor["token"],
    )
    items = [
        {"cardId": i["card"]["id"], **{k: i[k] for k in "xywh"}}
        for i in current["dashboard"]["layout"]["items"]
    ]
    await api.ok(
        UPDATE_DASHBOARD,
        {
            "i": {
                "id": built["dashboard"],
                "layout": {
                    "rowHeight": 90,
                    "items": [*items, {"cardId": editors_card, "x": 0, "y": 9, "w": 3, "h": 3}],
                },
            }
        },
        token=editor["token"],
    )
    cli = Cli(stack, api.base_url, owner["token"])
    directory = tmp_path / "ws"
    out = await cli.ok("export", str(directory))
    assert "dashboard sales-overview: 1 card(s) of other users are not part of" in out
    dashboard_file = directory / "dashboards/sales-overview.yaml"
    text = dashboard_file.read_text()
    assert text.count("- card: ") == 3
    dashboard_file.write_text(
        text.replace(
            "  - card: read-me\n    x: 0\n    y: 4", "  - card: read-me\n    x: 0\n    y: 5"
        )
    )
    applied = await cli.ok("apply", str(directory))
    assert "dashboard sales-overview: update (layout.items)" in applied
    after = await api.ok(
        f"query($id: ID!) {{ dashboard(id: $id) {{ layout {layout} }} }}",
        {"id": built["dashboard"]},
        token=owner["token"],
    )
    placed = {i["card"]["id"]: (i["x"], i["y"]) for i in after["dashboard"]["layout"]["items"]}
    assert placed[editors_card] == (0, 9) and placed[built["cards"][2]] == (0, 5)


async def test_workspace_keys_are_checked_and_unique_per_owner_and_kind(
    api: Api, users: Users, worker: Any
) -> None:
    owner, other = await users.create("keys"), await users.create("keys")
    datasets = await _datasets(api, owner["token"])
    card = {"name": "C", "code": RENDER, "datasetIds": [datasets["Sales"]]}

    first = await api.ok(CREATE_CARD, {"i": {**card, "workspaceKey": "k"}}, token=owner["token"])
    assert first["createCard"]["card"]["workspaceKey"] == "k"
    for bad in ("", "Has Caps", "a/b", "x" * 101):
        refused = await api.fail(
            CREATE_CARD, {"i": {**card, "workspaceKey": bad}}, token=owner["token"]
        )
        assert refused.code == "BAD_USER_INPUT" and refused.error["extensions"]["field"] == (
            "workspaceKey"
        )
    taken = await api.fail(CREATE_CARD, {"i": {**card, "workspaceKey": "k"}}, token=owner["token"])
    assert taken.code == "CONFLICT" and taken.error["extensions"]["field"] == "workspaceKey"
    second = await api.ok(CREATE_CARD, {"i": card}, token=owner["token"])
    second_id = second["createCard"]["card"]["id"]
    moved = await api.fail(
        UPDATE_CARD, {"i": {"id": second_id, "workspaceKey": "k"}}, token=owner["token"]
    )
    assert moved.code == "CONFLICT"
    # The same key on another kind of object, or on another owner's card, is fine.
    dashboard = await api.ok(
        CREATE_DASHBOARD, {"i": {"name": "D", "workspaceKey": "k"}}, token=owner["token"]
    )
    assert dashboard["createDashboard"]["dashboard"]["workspaceKey"] == "k"
    mine = await _datasets(api, other["token"])
    theirs = await api.ok(
        CREATE_CARD,
        {"i": {**card, "datasetIds": [mine["Sales"]], "workspaceKey": "k"}},
        token=other["token"],
    )
    assert theirs["createCard"]["card"]["workspaceKey"] == "k"
    # Setting a card's own key again is no conflict; null clears it.
    first_id = first["createCard"]["card"]["id"]
    same = await api.ok(
        UPDATE_CARD, {"i": {"id": first_id, "workspaceKey": "k"}}, token=owner["token"]
    )
    assert same["updateCard"]["card"]["workspaceKey"] == "k"
    cleared = await api.ok(
        UPDATE_CARD, {"i": {"id": first_id, "workspaceKey": None}}, token=owner["token"]
    )
    assert cleared["updateCard"]["card"]["workspaceKey"] is None
    now_free = await api.ok(
        UPDATE_CARD, {"i": {"id": second_id, "workspaceKey": "k"}}, token=owner["token"]
    )
    assert now_free["updateCard"]["card"]["workspaceKey"] == "k"
    # A dashboard's EDITOR may set its key, unique among the dashboard owner's dashboards.
    shared = await api.ok(CREATE_DASHBOARD, {"i": {"name": "Shared"}}, token=owner["token"])
    shared_id = shared["createDashboard"]["dashboard"]["id"]
    await share(api, owner["token"], shared_id, "USER", other["id"], "EDITOR")
    set_by_editor = await api.ok(
        UPDATE_DASHBOARD, {"i": {"id": shared_id, "workspaceKey": "team"}}, token=other["token"]
    )
    assert set_by_editor["updateDashboard"]["dashboard"]["workspaceKey"] == "team"
    clash = await api.fail(
        CREATE_DASHBOARD, {"i": {"name": "D2", "workspaceKey": "team"}}, token=owner["token"]
    )
    assert clash.code == "CONFLICT" and clash.error["extensions"]["field"] == "workspaceKey"
    mine_too = await api.ok(
        CREATE_DASHBOARD, {"i": {"name": "D3", "workspaceKey": "team"}}, token=other["token"]
    )
    assert mine_too["createDashboard"]["dashboard"]["workspaceKey"] == "team"
    transform = {"name": "T", "inputDatasetIds": [datasets["Sales"]], "code": "result = df_0"}
    await api.ok(CREATE_TRANSFORM, {"i": {**transform, "workspaceKey": "t"}}, token=owner["token"])
    again = await api.fail(
        CREATE_TRANSFORM, {"i": {**transform, "workspaceKey": "t"}}, token=owner["token"]
    )
    assert again.code == "CONFLICT" and again.error["extensions"]["field"] == "workspaceKey"
