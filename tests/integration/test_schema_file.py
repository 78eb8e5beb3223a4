"""The checked-in schema.graphql is what the server prints, and it honours the contract."""

from __future__ import annotations

import re
from pathlib import Path

from tests.contract import contract_problems
from tilegraph.schema.build import print_sdl

ROOT = Path(__file__).resolve().parents[2]

# Contract parts that later issues deliver. The test fails when one of these appears
# (remove it from the list then) and when anything else is missing or differs.
PENDING = {
    "ChatEvent",
    "ChatEventType",
    "ChatMessageInput",
    "Subscription.dashboardChat",
}
_MISSING = re.compile(
    r"^(?:type (\w+) missing|(\w+\.\w+) missing|directive @(\w+) missing|schema (\w+) root differs)$"
)


def _name(problem: str) -> str:
    match = _MISSING.match(problem)
    if match is None:
        return "OTHER: " + problem
    type_name, field, directive, root = match.groups()
    return type_name or field or (f"@{directive}" if directive else f"{root} root")


def test_schema_graphql_is_up_to_date() -> None:
    assert (ROOT / "schema.graphql").read_text() == print_sdl(), (
        "schema.graphql is stale: run `tilegraph schema > schema.graphql`"
    )


def test_printed_schema_honours_the_contract() -> None:
    names = sorted(_name(p) for p in contract_problems(print_sdl()))
    assert names == sorted(PENDING)
