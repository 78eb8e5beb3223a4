"""The checked-in schema.graphql is what the server prints, and it honours the contract."""

from __future__ import annotations

from pathlib import Path

from tests.contract import SHARED_CONTRACT, VENDORED_CONTRACT, contract_problems
from tilegraph.schema.build import print_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_up_to_date() -> None:
    assert (ROOT / "schema.graphql").read_text() == print_sdl(), (
        "schema.graphql is stale: run `tilegraph schema > schema.graphql`"
    )


def test_printed_schema_honours_the_contract() -> None:
    assert contract_problems(print_sdl()) == []


def test_the_vendored_contract_is_the_shared_one() -> None:
    """Where the shared contract is reachable, the repository's copy must match it."""
    vendored = VENDORED_CONTRACT.read_text()
    if SHARED_CONTRACT.exists():
        assert vendored == SHARED_CONTRACT.read_text(), "update contract/schema.graphql"
    assert "type Query" in vendored and "directive @requiresPermission" in vendored
