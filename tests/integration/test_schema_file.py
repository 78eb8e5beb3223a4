"""The checked-in schema.graphql is what the server prints, and it honours the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    specified_directives,
    specified_scalar_types,
)

from tests.contract import BASE, VENDORED, adopted, contract_problems, shared_path
from tilegraph.schema.build import print_sdl

ROOT = Path(__file__).resolve().parents[2]


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Every type, field, argument, input field, enum value and custom directive (with its
    arguments) that has no description, by coordinate (`Type.field(arg:)`, `@directive`).
    GraphiQL's docs pane shows these descriptions as the API reference. Introspection types
    and the built-in scalars and directives are the GraphQL spec's, not ours."""
    missing: list[str] = []

    def check(coordinate: str, description: str | None) -> None:
        if not (description and description.strip()):
            missing.append(coordinate)

    for name, type_ in sorted(schema.type_map.items()):
        if name.startswith("__") or name in specified_scalar_types:
            continue
        check(name, type_.description)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                check(f"{name}.{field_name}", field.description)
                for arg_name, arg in field.args.items():
                    check(f"{name}.{field_name}({arg_name}:)", arg.description)
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, input_field in type_.fields.items():
                check(f"{name}.{field_name}", input_field.description)
        elif isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                check(f"{name}.{value_name}", value.description)
    builtin = {d.name for d in specified_directives}
    for directive in schema.directives:
        if directive.name in builtin:
            continue
        check(f"@{directive.name}", directive.description)
        for arg_name, arg in directive.args.items():
            check(f"@{directive.name}({arg_name}:)", arg.description)
    return missing


def test_schema_graphql_is_up_to_date() -> None:
    assert (ROOT / "schema.graphql").read_text() == print_sdl(), (
        "schema.graphql is stale: run `tilegraph schema > schema.graphql`"
    )


def test_every_element_of_the_schema_is_described() -> None:
    """The schema documents itself: nothing a client can see goes without a description."""
    assert undescribed(build_schema(print_sdl())) == []


def test_an_undescribed_element_is_named_by_its_coordinate() -> None:
    described = '"d" directive @x("d" a: Int) on FIELD_DEFINITION\n"d" scalar S\n'
    sdl = described + (
        '"d" enum E { "d" ONE TWO }\n'
        '"d" input I { "d" a: Int b: Int }\n'
        '"d" interface N { id: ID! }\n'
        'type Query implements N { "d" id: ID! "d" f("d" a: Int, b: Int): E @x(a: 1) '
        '"d" i(x: I): S u: U }\n'
        "union U = Query\n"
        "directive @y(a: Int) on FIELD_DEFINITION\n"
    )
    assert undescribed(build_schema(sdl)) == [
        "E.TWO",
        "I.b",
        "N.id",
        "Query",
        "Query.f(b:)",
        "Query.i(x:)",
        "Query.u",
        "U",
        "@y",
        "@y(a:)",
    ]


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


def test_the_dataset_policies_addition_is_adopted() -> None:
    """Row and column security on datasets: policies, defaults and user attributes (the
    contract check above holds their types, arguments, defaults and directives)."""
    assert "dataset-policies.graphql" in adopted()
    assert "effectiveAccess(" in print_sdl()
