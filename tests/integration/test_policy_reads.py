"""Dataset policies hold for what a dashboard reader reads besides card runs: the chatbot's
summaries and answers, and the filters' options, for every kind of reader (owner, USER
policy, one group, two groups, USER policy plus group, an attribute set or missing, no policy
with defaultAccess FULL or NONE). Summaries are cached per effective access: readers who see
different rows never share one; readers who see the same do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import Users
from tests.support.cards import create_card, render
from tests.support.chat import answer, ask
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, new_group, share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess
from tests.support.policies import SET_ATTRIBUTES, SET_DEFAULT, create_policy
from tests.support.stack import Stack
from tests.unit.chat.sse_server import OpenAIStub, Script

# `salary` is what most readers may not see: its name and values must never reach them.
ROWS = [
    ["region", "country", "amount", "salary"],
    ["west", "fr", 10, "pay-alpha"],
    ["west", "it", 20, "pay-bravo"],
    ["east", "fr", 30, "pay-charlie"],
    ["north", "de", 40, "pay-delta"],
    ["south", "es", 50, "pay-echo"],
]
ALL_REGIONS = ["east", "north", "south", "west"]
ALL_SALARIES = [row[3] for row in ROWS[1:]]
FILTERS = [
    {"type": "CATEGORY", "column": "region", "label": "Region"},
    {"type": "CATEGORY", "column": "salary", "label": "Salary"},
]
# Regions outside the USER policy below (west only).
OTHER_REGIONS = re.compile(r"\b(east|north|south)\b")
FILTER_VALUES = "query($id: ID!) { dashboard(id: $id) { filters { column values } } }"


@dataclass(frozen=True)
class Board:
    """A dataset `sales`, one card on it, and a dashboard with a filter per column above."""

    owner: dict[str, str]
    dataset_id: str
    dashboard_id: str


async def make_board(api: Api, users: Users) -> Board:
    owner = await users.create("reads-owner")
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(ROWS), name="sales")
    assert final["status"] == "SUCCEEDED", final
    dataset_id = uploaded["dataset"]["id"]
    card = await create_card(api, owner["token"], render("return 'x'"), [dataset_id])
    dashboard = await create_dashboard(api, owner["token"], card_ids=[card], filters=FILTERS)
    return Board(owner, dataset_id, dashboard["id"])


async def viewer(api: Api, users: Users, board: Board, name: str) -> dict[str, str]:
    reader = await users.create(name)
    await share(api, board.owner["token"], board.dashboard_id, "USER", reader["id"], "VIEWER")
    return reader


async def rows_told(api: Api, token: str, board: Board) -> int:
    """The row count the chatbot reports for the dataset."""
    reply = answer(await ask(api, token, board.dashboard_id, "How many rows are there?"))
    found = re.fullmatch(r"sales has ([\d,]+) rows\.", reply)
    assert found, reply
    return int(found.group(1).replace(",", ""))


async def options(api: Api, token: str, board: Board) -> dict[str, list[str]]:
    """Each filter's values, by column."""
    data = await api.ok(FILTER_VALUES, {"id": board.dashboard_id}, token=token)
    return {f["column"]: f["values"] for f in data["dashboard"]["filters"]}


@dataclass(frozen=True)
class Expected:
    rows: int
    regions: list[str]
    salaries: list[str]


@pytest.fixture(scope="module")
async def readers(
    api: Api, users: Users, admin_token: str, worker: Any
) -> tuple[Board, dict[str, tuple[dict[str, str], Expected]]]:
    """Every kind of reader of one board, with what each should see."""
    board = await make_board(api, users)
    token = board.owner["token"]
    solo, one_group, two_groups, user_and_group, with_attr, without_attr, nobody = [
        await viewer(api, users, board, f"reads-reader{i}") for i in range(7)
    ]
    west_east = await new_group(
        api, admin_token, [one_group["id"], two_groups["id"], user_and_group["id"]]
    )
    germany = await new_group(api, admin_token, [two_groups["id"]])
    by_country = await new_group(api, admin_token, [with_attr["id"], without_attr["id"]])
    await api.ok(
        SET_ATTRIBUTES, {"u": with_attr["id"], "a": {"country": ["fr", "de"]}}, token=admin_token
    )
    await api.ok(
        SET_ATTRIBUTES, {"u": without_attr["id"], "a": {"region": "west"}}, token=admin_token
    )

    async def limit(target_type: str, target_id: str, **rest: Any) -> None:
        await create_policy(api, token, board.dataset_id, target_type, target_id, **rest)

    await limit(
        "USER",
        solo["id"],
        rowFilters=[{"column": "region", "values": ["west"]}],
        hiddenColumns=["salary"],
    )
    await limit(
        "GROUP",
        west_east,
        rowFilters=[{"column": "region", "values": ["west", "east"]}],
        hiddenColumns=["salary", "amount"],
    )
    await limit(
        "GROUP",
        germany,
        rowFilters=[{"column": "country", "values": ["de"]}],
        hiddenColumns=["salary"],
    )
    await limit(
        "USER",
        user_and_group["id"],
        rowFilters=[{"column": "country", "values": ["it"]}],
    )
    await limit(
        "GROUP",
        by_country,
        rowFilters=[
            {"column": "region", "values": ["west", "east", "north"]},
            {"column": "country", "userAttribute": "country"},
        ],
    )
    return board, {
        "owner": (board.owner, Expected(5, ALL_REGIONS, ALL_SALARIES)),
        "USER policy": (solo, Expected(2, ["west"], [])),
        "one group": (one_group, Expected(3, ["east", "west"], [])),
        # Rows of either group; salary hidden by both, amount by one only.
        "two groups": (two_groups, Expected(4, ["east", "north", "west"], [])),
        "USER policy + group": (user_and_group, Expected(1, ["west"], ["pay-bravo"])),
        "attribute set": (
            with_attr,
            Expected(3, ["east", "north", "west"], ["pay-alpha", "pay-charlie", "pay-delta"]),
        ),
        "attribute missing": (without_attr, Expected(0, [], [])),
        "no policy, default FULL": (nobody, Expected(5, ALL_REGIONS, ALL_SALARIES)),
    }


READERS = [
    "owner",
    "USER policy",
    "one group",
    "two groups",
    "USER policy + group",
    "attribute set",
    "attribute missing",
    "no policy, default FULL",
]


@pytest.mark.parametrize("kind", READERS)
async def test_chat_rows_and_filter_values_follow_the_readers_policies(
    api: Api, readers: tuple[Board, dict[str, tuple[dict[str, str], Expected]]], kind: str
) -> None:
    board, cases = readers
    reader, expected = cases[kind]
    assert await rows_told(api, reader["token"], board) == expected.rows
    assert await options(api, reader["token"], board) == {
        "region": expected.regions,
        "salary": expected.salaries,
    }


async def test_a_column_hidden_by_one_group_only_stays_visible(
    api: Api, readers: tuple[Board, dict[str, tuple[dict[str, str], Expected]]]
) -> None:
    board, cases = readers
    one_group, two_groups = cases["one group"][0], cases["two groups"][0]
    question = "What is the sum of amount?"
    both = answer(await ask(api, two_groups["token"], board.dashboard_id, question))
    assert "100" in both  # west, west, east and north: 10 + 20 + 30 + 40
    hidden = answer(await ask(api, one_group["token"], board.dashboard_id, question))
    assert "amount" not in hidden and "100" not in hidden


async def test_default_access_none_shows_a_reader_without_policy_nothing(
    api: Api, users: Users, worker: Any
) -> None:
    board = await make_board(api, users)
    nobody = await viewer(api, users, board, "reads-nobody")
    assert await rows_told(api, nobody["token"], board) == 5
    await api.ok(SET_DEFAULT, {"id": board.dataset_id, "d": "NONE"}, token=board.owner["token"])
    assert await rows_told(api, nobody["token"], board) == 0
    assert await options(api, nobody["token"], board) == {"region": [], "salary": []}
    # The owner still sees it all.
    assert await rows_told(api, board.owner["token"], board) == 5
    assert (await options(api, board.owner["token"], board))["salary"] == ALL_SALARIES


async def test_a_hidden_columns_name_and_values_never_reach_an_answer(
    api: Api, readers: tuple[Board, dict[str, tuple[dict[str, str], Expected]]]
) -> None:
    board, cases = readers
    solo = cases["USER policy"][0]
    replies = [
        answer(await ask(api, solo["token"], board.dashboard_id, question))
        for question in (
            "Which columns are there?",
            "What are the top values of salary?",
            "Give me an overview",
        )
    ]
    assert "region" in replies[0] and "amount" in replies[0]
    for reply in replies:
        assert "salary" not in reply.lower() and "pay-" not in reply, reply
        assert not OTHER_REGIONS.search(reply), reply  # rows outside the policy


async def test_the_prompt_a_model_gets_holds_only_what_the_reader_sees(
    api: Api,
    inprocess: InProcess,
    readers: tuple[Board, dict[str, tuple[dict[str, str], Expected]]],
) -> None:
    board, cases = readers
    solo = cases["USER policy"][0]
    async with OpenAIStub(Script(tokens=["ok"])) as llm:
        server = await inprocess.start_api(
            {
                "TILEGRAPH_CHAT_PROVIDER": "openai",
                "TILEGRAPH_CHAT_OPENAI_BASE_URL": llm.base_url,
                "TILEGRAPH_CHAT_OPENAI_MODEL": "test-model",
                "TILEGRAPH_CHAT_OPENAI_API_KEY": "sk-test",
            },
        )
        model_api = Api(server.url, server.ws_url)
        try:
            answer(await ask(model_api, solo["token"], board.dashboard_id, "Tell me about it"))
        finally:
            await model_api.close()
    prompt = "\n".join(m["content"] for m in llm.requests[-1].json()["messages"])
    assert "2 rows, 3 columns" in prompt and "west" in prompt
    assert "salary" not in prompt and "pay-" not in prompt
    assert not OTHER_REGIONS.search(prompt)


async def summary_keys(stack: Stack, dataset_id: str) -> list[str]:
    redis = Redis.from_url(stack.cache_redis.url)
    try:
        keys = [
            key.decode() async for key in redis.scan_iter(f"tilegraph:chat:summary:*{dataset_id}*")
        ]
    finally:
        await redis.aclose()
    return sorted(keys)


async def test_summaries_are_kept_per_effective_access(
    api: Api, users: Users, admin_token: str, stack: Stack, worker: Any
) -> None:
    board = await make_board(api, users)
    token = board.owner["token"]
    reader_a, reader_b, like_a = [
        await viewer(api, users, board, f"reads-cache{i}") for i in range(3)
    ]
    west = [{"column": "region", "values": ["west"]}]
    await create_policy(api, token, board.dataset_id, "USER", reader_a["id"], rowFilters=west)
    await create_policy(
        api,
        token,
        board.dataset_id,
        "USER",
        reader_b["id"],
        rowFilters=[{"column": "region", "values": ["south"]}],
    )
    # The same rows as reader A, through a group policy of its own.
    group = await new_group(api, admin_token, [like_a["id"]])
    await create_policy(api, token, board.dataset_id, "GROUP", group, rowFilters=west)

    assert await rows_told(api, reader_a["token"], board) == 2
    assert await rows_told(api, reader_b["token"], board) == 1
    assert await rows_told(api, reader_a["token"], board) == 2
    assert await rows_told(api, token, board) == 5
    assert len(await summary_keys(stack, board.dataset_id)) == 3  # A's, B's, the whole
    assert await rows_told(api, like_a["token"], board) == 2
    assert len(await summary_keys(stack, board.dataset_id)) == 3  # A's is shared


SHAPE = """query($id: ID!) { dashboard(id: $id) { referencedDatasets { dataset {
  rowCount columnCount columns { name } } } } }"""
# The columns each reader sees: a column is hidden when every policy that applies hides it.
SHAPES = {
    "owner": ["region", "country", "amount", "salary"],
    "USER policy": ["region", "country", "amount"],
    "one group": ["region", "country"],
    "two groups": ["region", "country", "amount"],
    "USER policy + group": ["region", "country", "amount", "salary"],
    "attribute set": ["region", "country", "amount", "salary"],
    "attribute missing": ["region", "country", "amount", "salary"],
    "no policy, default FULL": ["region", "country", "amount", "salary"],
}


@pytest.mark.parametrize("kind", READERS)
async def test_the_dataset_a_reader_reaches_shows_only_their_columns_and_row_count(
    api: Api, readers: tuple[Board, dict[str, tuple[dict[str, str], Expected]]], kind: str
) -> None:
    """What a dashboard lists of its datasets names no hidden column and counts only the
    reader's rows, so neither a hidden column's name nor the dataset's size leaks."""
    board, cases = readers
    reader, expected = cases[kind]
    data = await api.ok(SHAPE, {"id": board.dashboard_id}, token=reader["token"])
    (seen,) = [d["dataset"] for d in data["dashboard"]["referencedDatasets"]]
    assert [c["name"] for c in seen["columns"]] == SHAPES[kind]
    assert seen["columnCount"] == len(SHAPES[kind])
    assert seen["rowCount"] == expected.rows
