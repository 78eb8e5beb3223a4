"""The checked-in schema.graphql is what the server prints, and it honours the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract import BASE, VENDORED, adopted, contract_problems, shared_path
from tilegraph.schema.build import print_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_up_to_date() -> None:
    assert (ROOT / "schema.graphql").read_text() == print_sdl(), (
        "schema.graphql is stale: run `tilegraph schema > schema.graphql`"
    )


def test_printed_schema_honours_the_contract() -> None:
    assert contract_problems(print_sdl()) == []


@pytest.mark.parametrize("name", adopted())
def test_the_vendored_contract_is_the_shared_one(name: str) -> None:
    """Where the shared contract is reachable, the repository's copy must match it."""
    vendored = (VENDORED / name).read_text()
    if shared_path(name).exists():
        assert vendored == shared_path(name).read_text(), f"update contract/{name}"
    if name == BASE:
        assert "type Query" in vendored and "directive @requiresPermission" in vendored
    else:  # an addition extends the base contract or adds types of its own
        assert "extend type" in vendored or "\nenum " in vendored


def test_the_executions_addition_is_adopted() -> None:
    assert "executions.graphql" in adopted()


def test_the_error_codes_are_printed_with_service_unavailable() -> None:
    """The fixed list of `extensions.code` values, SERVICE_UNAVAILABLE (outages) included."""
    assert "outages.graphql" in adopted()
    assert "  SERVICE_UNAVAILABLE\n" in print_sdl()


def test_the_compat_addition_is_adopted() -> None:
    """Transform params (and the null-token inputs) from the compatibility addition."""
    assert "compat.graphql" in adopted()
    printed = print_sdl()
    assert "Passed to `transform(inputs, params)`" in printed
