"""The checked-in schema.graphql is what the server prints, and it honours the contract."""

from __future__ import annotations

from pathlib import Path

from tests.contract import contract_problems
from tilegraph.schema.build import print_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_up_to_date() -> None:
    assert (ROOT / "schema.graphql").read_text() == print_sdl(), (
        "schema.graphql is stale: run `tilegraph schema > schema.graphql`"
    )


def test_printed_schema_honours_the_contract() -> None:
    assert contract_problems(print_sdl()) == []
